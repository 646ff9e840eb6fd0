/**
 * Pure secp256k1/ECDSA helpers for turning a raw HSM signature (CKM_ECDSA gives r||s, no recovery id)
 * into an Ethereum signature: low-s normalisation, yParity recovery, address derivation and
 * CKA_EC_POINT parsing.
 */
import { createRequire } from "node:module";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";

const Point = secp256k1.Point;
type SecpPoint = InstanceType<typeof Point>;

/** Curve order n. */
export const SECP256K1_N: bigint = Point.Fn.ORDER;
/** n / 2: Ethereum (EIP-2) rejects signatures with s above this. */
export const SECP256K1_HALF_N: bigint = SECP256K1_N >> 1n;

/** Low-s normalisation (EIP-2): s > n/2 → n − s. (r, n − s) is the same signature with R negated. */
export function normalizeS(s: bigint): bigint {
  if (s <= 0n || s >= SECP256K1_N) throw new Error("signature s out of range");
  return s > SECP256K1_HALF_N ? SECP256K1_N - s : s;
}

/**
 * A parsed public key, for repeated verification. After a few uses it gets precompute tables
 * (window 8, as noble uses for G), which make Q·u2 several times faster: measured ~0.55–0.75 ms per
 * recoverYParity with tables vs ~2.5 ms without (window 6: ~1 ms). Building them blocks for
 * ~100–160 ms and holds ~1–1.6 MB per key, so one-off keys skip it and the cache is bounded (a
 * signing service has a handful of hot keys).
 */
export interface PreparedPublicKey {
  readonly point: SecpPoint;
  /** Uncompressed 65-byte encoding, compared against native recoveries. */
  readonly uncompressed: Uint8Array;
  /** recoverYParity calls so far; tables are built at PRECOMPUTE_AFTER. */
  uses: number;
}

const PRECOMPUTE_AFTER = 3;
const MAX_PREPARED = 64;
const prepared = new Map<string, PreparedPublicKey>();

/**
 * Parses an uncompressed (65-byte, 0x04…) or compressed public key (validated: on the curve, not
 * infinity). Cached per key. `eager`: build the precompute tables now (for keys known to be hot).
 */
export function preparePublicKey(publicKey: Uint8Array | string | PreparedPublicKey, opts: { eager?: boolean } = {}): PreparedPublicKey {
  let p: PreparedPublicKey | undefined;
  if (typeof publicKey === "object" && "point" in publicKey) {
    p = publicKey;
  } else {
    const hex = typeof publicKey === "string" ? strip0x(publicKey).toLowerCase() : bytesToHex(publicKey);
    p = prepared.get(hex);
    if (!p) {
      const point = Point.fromHex(hex);
      p = { point, uncompressed: point.toBytes(false), uses: 0 };
      if (prepared.size >= MAX_PREPARED) prepared.delete(prepared.keys().next().value as string);
      prepared.set(hex, p);
    }
  }
  if (opts.eager && p.uses < PRECOMPUTE_AFTER) {
    p.point.precompute(8, false);
    p.uses = PRECOMPUTE_AFTER;
  }
  return p;
}

/**
 * Verifies (r, s) over `digest` against the known public key and returns the recovery parity of R.
 *
 * R = G·(z/s) + Q·(r/s). This both verifies the signature (R.x mod n must equal r) and yields
 * yParity = R.y & 1, at the cost of one ECDSA verification instead of up to two public-key
 * recoveries. `s` must be the value that goes into the transaction (i.e. already low-s normalised):
 * normalising s negates R, so the parity must be computed for the final s.
 *
 * Throws if the signature does not verify.
 */
/**
 * libsecp256k1, through the prebuilt binding of the `secp256k1` package: a public-key recovery takes
 * ~0.07 ms, against ~0.6–0.8 ms for the pure-JS verification below, and this runs once per signature
 * on the event loop. Where the binding cannot load (no prebuilt binary for the platform), the pure-JS
 * path is used; both verify the signature and give the same answer (test/signer/ecdsa.test.ts holds
 * them to it).
 */
interface NativeSecp256k1 {
  ecdsaRecover(sig: Uint8Array, recid: number, msg32: Uint8Array, compressed?: boolean): Uint8Array;
}
const native: NativeSecp256k1 | undefined = (() => {
  try {
    return createRequire(import.meta.url)("secp256k1/bindings.js") as NativeSecp256k1;
  } catch {
    return undefined;
  }
})();

/** Which implementation recoverYParity uses on this machine. */
export const secp256k1Backend: "libsecp256k1" | "noble" = native ? "libsecp256k1" : "noble";

export function recoverYParity(
  digest: Uint8Array | string,
  r: bigint,
  s: bigint,
  publicKey: Uint8Array | string | PreparedPublicKey,
): 0 | 1 {
  const n = SECP256K1_N;
  if (r <= 0n || r >= n || s <= 0n || s >= n) throw new Error("signature r/s out of range");
  const digestBytes = typeof digest === "string" ? hexToBytes(strip0x(digest)) : digest;
  if (digestBytes.length !== 32) throw new Error("digest must be 32 bytes");
  const key = preparePublicKey(publicKey);
  return native ? recoverYParityNative(native, digestBytes, r, s, key) : recoverYParityJs(digestBytes, r, s, key);
}

/** The pure-JS path of recoverYParity (exported so tests can hold both paths to the same answers). */
export function recoverYParityJs(digestBytes: Uint8Array, r: bigint, s: bigint, key: PreparedPublicKey): 0 | 1 {
  if (key.uses < PRECOMPUTE_AFTER && ++key.uses === PRECOMPUTE_AFTER) key.point.precompute(8, false);
  const Q = key.point;
  const Fn = Point.Fn;
  const z = Fn.create(bytesToBigInt(digestBytes)); // 32-byte digest = bit length of n: only a mod-n reduction
  const sInv = Fn.inv(s);
  const u1 = Fn.mul(z, sInv);
  const u2 = Fn.mul(r, sInv);
  // With tables for both G (noble's default) and Q, two table-driven multiplications beat the
  // joint Strauss–Shamir walk (mulAddUnsafe), which cannot use them; without tables for Q, the
  // joint walk is the faster one.
  const R = key.uses >= PRECOMPUTE_AFTER ? Point.BASE.multiplyUnsafe(u1).add(Q.multiplyUnsafe(u2)) : Point.BASE.mulAddUnsafe(u1, Q, u2);
  if (R.is0()) throw new Error("invalid signature: R is the point at infinity");
  const { x, y } = R.toAffine();
  if (Fn.create(x) !== r) throw new Error("invalid signature: does not verify against the public key");
  return (y & 1n) === 1n ? 1 : 0;
}

/** The recovery id whose recovered key is ours: that is both the verification and the parity of R. */
function recoverYParityNative(lib: NativeSecp256k1, digest: Uint8Array, r: bigint, s: bigint, key: PreparedPublicKey): 0 | 1 {
  const sig = new Uint8Array(64);
  sig.set(hexToBytes(r.toString(16).padStart(64, "0")), 0);
  sig.set(hexToBytes(s.toString(16).padStart(64, "0")), 32);
  for (const v of [0, 1] as const) {
    let recovered: Uint8Array;
    try {
      recovered = lib.ecdsaRecover(sig, v, digest, false);
    } catch {
      continue; // no point for this recovery id
    }
    if (equalBytes(recovered, key.uncompressed)) return v;
  }
  throw new Error("invalid signature: does not verify against the public key");
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Ethereum address (lower-case 0x hex, not checksummed) from a 65-byte uncompressed public key. */
export function addressFromPublicKey(uncompressed65: Uint8Array): `0x${string}` {
  if (uncompressed65.length !== 65 || uncompressed65[0] !== 0x04) {
    throw new Error("expected a 65-byte uncompressed public key (0x04||X||Y)");
  }
  const hash = keccak_256(uncompressed65.subarray(1));
  return `0x${bytesToHex(hash.subarray(12))}`;
}

/**
 * Parses CKA_EC_POINT into a 65-byte uncompressed point. PKCS#11 v2.40 says the value is the DER
 * encoding of an OCTET STRING (`04 41 04||X||Y`); some HSMs return the raw point, so accept both.
 * The point is checked to be on secp256k1.
 */
export function parseEcPoint(derBytes: Uint8Array): Uint8Array {
  let raw: Uint8Array;
  if (derBytes.length === 67 && derBytes[0] === 0x04 && derBytes[1] === 0x41 && derBytes[2] === 0x04) {
    raw = derBytes.subarray(2);
  } else if (derBytes.length === 65 && derBytes[0] === 0x04) {
    raw = derBytes;
  } else if (derBytes.length === 68 && derBytes[0] === 0x04 && derBytes[1] === 0x81 && derBytes[2] === 0x41) {
    raw = derBytes.subarray(3); // long-form length, allowed by BER
  } else {
    throw new Error(`unsupported CKA_EC_POINT encoding (${derBytes.length} bytes)`);
  }
  Point.fromBytes(raw); // throws when not on the curve
  return Uint8Array.from(raw);
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt("0x" + bytesToHex(bytes));
}

export function bigIntToHex32(v: bigint): `0x${string}` {
  return `0x${v.toString(16).padStart(64, "0")}`;
}

function strip0x(h: string): string {
  return h.startsWith("0x") || h.startsWith("0X") ? h.slice(2) : h;
}
