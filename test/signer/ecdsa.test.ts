import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import fc from "fast-check";
import { recoverAddress, toHex } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { describe, expect, it } from "vitest";
import {
  SECP256K1_HALF_N,
  SECP256K1_N,
  addressFromPublicKey,
  bigIntToHex32,
  normalizeS,
  parseEcPoint,
  preparePublicKey,
  recoverYParity,
  recoverYParityJs,
  secp256k1Backend,
} from "../../src/signer/ecdsa.js";

const n = SECP256K1_N;
const toBytes32 = (v: bigint) => Uint8Array.from(Buffer.from(v.toString(16).padStart(64, "0"), "hex"));
const secretKeyArb = fc.bigInt({ min: 1n, max: n - 1n }).map(toBytes32);
const digestArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

/** Signs like an HSM would: no low-s normalisation, and we also keep noble's recovery bit for reference. */
function rawSign(digest: Uint8Array, sk: Uint8Array) {
  const sig = secp256k1.Signature.fromBytes(secp256k1.sign(digest, sk, { prehash: false, lowS: false, format: "recovered" }), "recovered");
  return { r: sig.r, s: sig.s, recovery: sig.recovery! };
}

describe("normalizeS", () => {
  it("maps every s into the lower half and keeps the signature class", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: n - 1n }), (s) => {
        const low = normalizeS(s);
        expect(low).toBeGreaterThan(0n);
        expect(low <= SECP256K1_HALF_N).toBe(true);
        expect(low === s || low === n - s).toBe(true);
        expect(normalizeS(low)).toBe(low); // idempotent
        if (s <= SECP256K1_HALF_N) expect(low).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });

  it("handles the boundaries and rejects out-of-range values", () => {
    expect(normalizeS(SECP256K1_HALF_N)).toBe(SECP256K1_HALF_N);
    expect(normalizeS(SECP256K1_HALF_N + 1n)).toBe(n - SECP256K1_HALF_N - 1n);
    expect(normalizeS(n - 1n)).toBe(1n);
    expect(() => normalizeS(0n)).toThrow();
    expect(() => normalizeS(n)).toThrow();
    expect(() => normalizeS(-1n)).toThrow();
  });
});

describe("recoverYParity", () => {
  it("uses libsecp256k1 on this platform (the prebuilt binding loads)", () => {
    expect(process.platform === "linux" && process.arch === "x64" ? secp256k1Backend : "libsecp256k1").toBe("libsecp256k1");
  });

  it("the native and the pure-JS paths give the same parity, and both refuse a signature by another key", () => {
    fc.assert(
      fc.property(secretKeyArb, secretKeyArb, digestArb, fc.boolean(), (sk, other, digest, lowS) => {
        const pub = secp256k1.getPublicKey(sk, false);
        const { r, s } = rawSign(digest, sk);
        const sig = lowS ? normalizeS(s) : s;
        const key = preparePublicKey(pub);
        expect(recoverYParity(digest, r, sig, pub)).toBe(recoverYParityJs(digest, r, sig, key));
        if (Buffer.compare(Buffer.from(other), Buffer.from(sk)) !== 0) {
          const otherPub = secp256k1.getPublicKey(other, false);
          expect(() => recoverYParity(digest, r, sig, otherPub)).toThrow(/does not verify/);
          expect(() => recoverYParityJs(digest, r, sig, preparePublicKey(otherPub))).toThrow(/does not verify/);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("matches noble's recovery bit after low-s normalisation (random keys and digests)", () => {
    fc.assert(
      fc.property(secretKeyArb, digestArb, (sk, digest) => {
        const pub = secp256k1.getPublicKey(sk, false);
        const { r, s, recovery } = rawSign(digest, sk);
        const low = normalizeS(s);
        // Replacing s by n − s negates R, so the parity flips exactly when s was high.
        const expected = low === s ? recovery : recovery ^ 1;
        expect(recoverYParity(digest, r, low, pub)).toBe(expected & 1);
        // Also for the un-normalised s (the function works for either half).
        expect(recoverYParity(digest, r, s, pub)).toBe(recovery & 1);
      }),
      { numRuns: 500 },
    );
  });

  it("agrees with viem's recoverAddress (hex inputs)", async () => {
    await fc.assert(
      fc.asyncProperty(secretKeyArb, digestArb, async (sk, digest) => {
        const pub = secp256k1.getPublicKey(sk, false);
        const { r, s } = rawSign(digest, sk);
        const low = normalizeS(s);
        const yParity = recoverYParity(toHex(digest), r, low, toHex(pub));
        const addr = await recoverAddress({
          hash: toHex(digest),
          signature: { r: bigIntToHex32(r), s: bigIntToHex32(low), yParity },
        });
        expect(addr).toBe(privateKeyToAddress(toHex(sk)));
      }),
      { numRuns: 100 },
    );
  });

  it("throws when the signature does not verify", () => {
    fc.assert(
      fc.property(secretKeyArb, secretKeyArb, digestArb, (sk, otherSk, digest) => {
        fc.pre(bytesToHex(sk) !== bytesToHex(otherSk));
        const { r, s } = rawSign(digest, sk);
        const otherPub = secp256k1.getPublicKey(otherSk, false);
        expect(() => recoverYParity(digest, r, s, otherPub)).toThrow(/does not verify/);
        const tampered = Uint8Array.from(digest);
        tampered[0] ^= 1;
        expect(() => recoverYParity(tampered, r, s, secp256k1.getPublicKey(sk, false))).toThrow(/does not verify/);
      }),
      { numRuns: 100 },
    );
  });

  it("rejects out-of-range r/s and bad digests", () => {
    const sk = toBytes32(12345n);
    const pub = secp256k1.getPublicKey(sk, false);
    const digest = new Uint8Array(32).fill(9);
    const { r, s } = rawSign(digest, sk);
    expect(() => recoverYParity(digest, 0n, s, pub)).toThrow();
    expect(() => recoverYParity(digest, r, n, pub)).toThrow();
    expect(() => recoverYParity(digest.subarray(1), r, s, pub)).toThrow(/32 bytes/);
  });
});

describe("addressFromPublicKey / parseEcPoint", () => {
  it("derives the same address as viem from the secret key", () => {
    fc.assert(
      fc.property(secretKeyArb, (sk) => {
        const pub = secp256k1.getPublicKey(sk, false);
        expect(addressFromPublicKey(pub)).toBe(privateKeyToAddress(toHex(sk)).toLowerCase());
      }),
      { numRuns: 200 },
    );
  });

  it("accepts DER-wrapped (04 41 04||X||Y) and raw 65-byte points", () => {
    const pub = secp256k1.getPublicKey(toBytes32(777n), false);
    const der = Uint8Array.from([0x04, 0x41, ...pub]);
    expect(bytesToHex(parseEcPoint(der))).toBe(bytesToHex(pub));
    expect(bytesToHex(parseEcPoint(pub))).toBe(bytesToHex(pub));
    const longForm = Uint8Array.from([0x04, 0x81, 0x41, ...pub]);
    expect(bytesToHex(parseEcPoint(longForm))).toBe(bytesToHex(pub));
  });

  it("rejects compressed, truncated and off-curve points", () => {
    const pub = secp256k1.getPublicKey(toBytes32(777n), false);
    expect(() => parseEcPoint(secp256k1.getPublicKey(toBytes32(777n), true))).toThrow();
    expect(() => parseEcPoint(pub.subarray(0, 64))).toThrow();
    const offCurve = Uint8Array.from(pub);
    offCurve[64] ^= 1;
    expect(() => parseEcPoint(offCurve)).toThrow();
    expect(() => addressFromPublicKey(pub.subarray(1))).toThrow();
  });
});
