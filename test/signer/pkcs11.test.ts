// Pkcs11Signer against a real SoftHSM2 token in a fresh temp folder. SOFTHSM2_CONF is per process;
// vitest runs each test file in its own forked process, so this file owns its token.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { Module, ObjectClass, SessionFlag, UserType, type PrivateKey, type Slot } from "graphene-pk11";
import {
  keccak256,
  parseTransaction,
  recoverAddress,
  recoverTransactionAddress,
  serializeTransaction,
  toHex,
  verifyMessage,
  verifyTypedData,
  type Hex,
  type SerializeTransactionFn,
  type TransactionSerializable,
} from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureSoftHsmToken, type SoftHsmToken } from "../../src/hsm/softhsm.js";
import { hsmAccount } from "../../src/signer/account.js";
import { SECP256K1_HALF_N } from "../../src/signer/ecdsa.js";
import { Pkcs11Signer, keyIdForPath } from "../../src/signer/pkcs11.js";
import { HsmError, type SigningKeyInfo } from "../../src/signer/signer.js";

const KEY = "test/hot-1";
let dir: string;
let token: SoftHsmToken;
let otherToken: SoftHsmToken;
let signer: Pkcs11Signer;
let key: SigningKeyInfo;

beforeAll(async () => {
  dir = fs.mkdtempSync(os.tmpdir() + "/hsm-");
  token = await ensureSoftHsmToken({ dir, label: "signer-test" });
  // A second token, created before the module is loaded (SoftHSM scans tokens at C_Initialize).
  otherToken = await ensureSoftHsmToken({ dir, label: "other-token", pin: "other-pin-1234" });
  signer = await Pkcs11Signer.open({ ...token, poolSize: 4 });
  key = await signer.createKey(KEY);
});

afterAll(async () => {
  await signer?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A graphene view of the same token, as an operator tool would have (same process, same module). */
function withTestSession<T>(fn: (slot: Slot, session: ReturnType<Slot["open"]>) => T): T {
  const mod = Module.load(token.modulePath, "softhsm-test");
  // Already initialised by the signer (graphene ignores CKR_CRYPTOKI_ALREADY_INITIALIZED); if not,
  // OS locking must be on: without it SoftHSM disables its mutexes (see src/signer/pkcs11.ts).
  mod.initialize({ flags: 2 /* CKF_OS_LOCKING_OK */ });
  const slots = mod.getSlots(true);
  let slot: Slot | undefined;
  for (let i = 0; i < slots.length; i++) if (slots.items(i).getToken().label === token.tokenLabel) slot = slots.items(i);
  if (!slot) throw new Error("token not found");
  const session = slot.open(SessionFlag.RW_SESSION | SessionFlag.SERIAL_SESSION);
  try {
    session.login(token.pin, UserType.USER);
  } catch (e) {
    if (!/CKR_USER_ALREADY_LOGGED_IN/.test((e as Error).message)) throw e;
  }
  // Never finalize here: that would pull the module out from under the signer.
  return fn(slot, session);
}

describe("ensureSoftHsmToken", () => {
  it("writes config and PIN files with tight permissions and is idempotent", async () => {
    expect(process.env.SOFTHSM2_CONF).toBe(path.join(dir, "softhsm2.conf"));
    const conf = fs.readFileSync(token.confPath, "utf8");
    expect(conf).toContain(`directories.tokendir = ${path.join(dir, "tokens")}`);
    expect(conf).toContain("objectstore.backend = file");
    expect(conf).toContain("log.level = ERROR");
    expect(fs.statSync(path.join(dir, "pin")).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, "so-pin")).mode & 0o777).toBe(0o600);
    expect(token.pin).toMatch(/^[0-9a-f]{32}$/);
    const again = await ensureSoftHsmToken({ dir, label: "signer-test" });
    expect(again.pin).toBe(token.pin);
    expect(again.tokenLabel).toBe("signer-test");
  });

  it("rejects labels PKCS#11 cannot hold", async () => {
    await expect(ensureSoftHsmToken({ dir, label: "x".repeat(33) })).rejects.toThrow(/label/);
    await expect(ensureSoftHsmToken({ dir, label: " padded" })).rejects.toThrow(/label/);
  });
});

// ---------------------------------------------------------------------------------------------
// Property test: random transactions of types 0, 1 and 2 signed in SoftHSM.
// ---------------------------------------------------------------------------------------------

const addressArb = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => toHex(b));
const dataArb = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 200 }).map((b) => toHex(b)),
);
const chainIdArb = fc.oneof(fc.constantFrom(1, 8453, 31337), fc.integer({ min: 1, max: 2 ** 32 }));
const baseArb = fc.record({
  to: fc.oneof({ arbitrary: addressArb, weight: 9 }, { arbitrary: fc.constant(null), weight: 1 }), // null: contract creation
  value: fc.bigInt({ min: 0n, max: 2n ** 128n }),
  data: dataArb,
  nonce: fc.integer({ min: 0, max: 2 ** 32 }),
  gas: fc.bigInt({ min: 21_000n, max: 60_000_000n }),
  chainId: chainIdArb,
});
const feeArb = fc.bigInt({ min: 0n, max: 10n ** 15n });
const accessListArb = fc.array(
  fc.record({
    address: addressArb,
    storageKeys: fc.array(
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => toHex(b)),
      { maxLength: 3 },
    ),
  }),
  { maxLength: 3 },
);

const txArbs: Record<string, fc.Arbitrary<TransactionSerializable>> = {
  legacy: fc.tuple(baseArb, feeArb).map(([b, gasPrice]) => ({ ...b, type: "legacy", gasPrice }) as TransactionSerializable),
  eip2930: fc
    .tuple(baseArb, feeArb, accessListArb)
    .map(([b, gasPrice, accessList]) => ({ ...b, type: "eip2930", gasPrice, accessList }) as TransactionSerializable),
  eip1559: fc.tuple(baseArb, feeArb, feeArb, accessListArb).map(([b, f1, f2, accessList]) => {
    const [maxPriorityFeePerGas, maxFeePerGas] = f1 <= f2 ? [f1, f2] : [f2, f1];
    return { ...b, type: "eip1559", maxFeePerGas, maxPriorityFeePerGas, accessList } as TransactionSerializable;
  }),
};

describe("signTransaction (property, SoftHSM)", () => {
  for (const [type, arb] of Object.entries(txArbs)) {
    it(`type ${type}: low-s, recovers to the key's address, fields survive (350 runs)`, async () => {
      await fc.assert(
        fc.asyncProperty(arb, async (tx) => {
          const raw = await signer.signTransaction(KEY, tx);
          const parsed = parseTransaction(raw);
          expect(parsed.type).toBe(type);
          expect(BigInt(parsed.s!) <= SECP256K1_HALF_N).toBe(true);
          expect(await recoverTransactionAddress({ serializedTransaction: raw as never })).toBe(key.address);
          expect(parsed.chainId).toBe(tx.chainId);
          expect(parsed.nonce ?? 0).toBe(tx.nonce);
          expect((parsed.to ?? null)?.toLowerCase() ?? null).toBe(tx.to ?? null);
          expect(parsed.value ?? 0n).toBe(tx.value);
          if (type === "legacy") {
            // EIP-155: v = chainId·2 + 35 + yParity
            expect(parsed.v).toBe(BigInt(tx.chainId!) * 2n + 35n + BigInt(parsed.yParity!));
          }
        }),
        { numRuns: 350 },
      );
    });
  }

  it("pre-EIP-155 legacy (no chainId) gets v = 27/28", async () => {
    for (let nonce = 0; nonce < 10; nonce++) {
      const raw = await signer.signTransaction(KEY, { type: "legacy", nonce, gasPrice: 1n, gas: 21000n, to: key.address, value: 1n });
      const parsed = parseTransaction(raw);
      expect([27n, 28n]).toContain(parsed.v);
      expect(await recoverTransactionAddress({ serializedTransaction: raw as never })).toBe(key.address);
    }
  });

  it("uses the caller's serializer for both the hash and the final encoding", async () => {
    let calls = 0;
    const serializer: SerializeTransactionFn = (tx, sig) => {
      calls++;
      return serializeTransaction(tx, sig);
    };
    const raw = await signer.signTransaction(
      KEY,
      { chainId: 10, nonce: 1, to: key.address, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n, gas: 21000n },
      serializer,
    );
    expect(calls).toBe(2);
    expect(await recoverTransactionAddress({ serializedTransaction: raw as never })).toBe(key.address);
  });
});

describe("signDigest", () => {
  it("returns low-s signatures whose yParity recovers the address", async () => {
    for (let i = 0; i < 50; i++) {
      const digest = keccak256(toHex(`digest-${i}`));
      const sig = await signer.signDigest(KEY, digest);
      expect(BigInt(sig.s) <= SECP256K1_HALF_N).toBe(true);
      expect(await recoverAddress({ hash: digest, signature: sig })).toBe(key.address);
    }
  });

  it("rejects malformed digests without touching the HSM", async () => {
    await expect(signer.signDigest(KEY, "0x1234" as Hex)).rejects.toThrow(TypeError);
  });
});

describe("key protection in the token", () => {
  it("private key is sensitive, non-extractable, and CKA_VALUE cannot be read", () => {
    withTestSession((_slot, session) => {
      const found = session.find({ class: ObjectClass.PRIVATE_KEY, label: KEY });
      expect(found.length).toBe(1);
      const priv = found.items(0).toType<PrivateKey>();
      const attrs = priv.getAttribute({
        sensitive: null,
        extractable: null,
        alwaysSensitive: null,
        neverExtractable: null,
        token: null,
        private: null,
        sign: null,
        id: null,
      });
      expect(attrs.sensitive).toBe(true);
      expect(attrs.extractable).toBe(false);
      expect(attrs.alwaysSensitive).toBe(true);
      expect(attrs.neverExtractable).toBe(true);
      expect(attrs.token).toBe(true);
      expect(attrs.private).toBe(true);
      expect(attrs.sign).toBe(true);
      expect(Buffer.from(attrs.id!).equals(keyIdForPath(KEY))).toBe(true);
      expect(() => priv.getAttribute({ value: null })).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
      session.close();
    });
  });
});

describe("session pool", () => {
  it("50 concurrent signatures through a pool of 4 all verify", async () => {
    const txs = Array.from({ length: 50 }, (_, nonce) => ({
      chainId: 8453,
      nonce,
      to: key.address,
      value: BigInt(nonce),
      gas: 21_000n,
      maxFeePerGas: 10n,
      maxPriorityFeePerGas: 1n,
    }));
    const raws = await Promise.all(txs.map((tx) => signer.signTransaction(KEY, tx)));
    expect(new Set(raws).size).toBe(50);
    for (const [i, raw] of raws.entries()) {
      const parsed = parseTransaction(raw);
      expect(parsed.nonce).toBe(i);
      expect(await recoverTransactionAddress({ serializedTransaction: raw as never })).toBe(key.address);
    }
  });

  it("a pool of 1 serialises 20 concurrent callers", async () => {
    const one = await Pkcs11Signer.open({ ...token, poolSize: 1 });
    try {
      const digests = Array.from({ length: 20 }, (_, i) => keccak256(toHex(`one-${i}`)));
      const sigs = await Promise.all(digests.map((d) => one.signDigest(KEY, d)));
      for (const [i, sig] of sigs.entries()) {
        expect(await recoverAddress({ hash: digests[i], signature: sig })).toBe(key.address);
      }
    } finally {
      await one.close();
    }
    // Closing the second signer must not finalize the module the first one still uses.
    expect((await signer.signDigest(KEY, keccak256("0x01"))).r).toMatch(/^0x[0-9a-f]{64}$/);
  });

  it("does not block the event loop while the HSM signs", async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await Promise.all(Array.from({ length: 200 }, (_, i) => signer.signDigest(KEY, keccak256(toHex(`tick-${i}`)))));
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(5);
  });
});

describe("keys", () => {
  it("createKey on an existing path fails with key_exists", async () => {
    const err = await signer.createKey(KEY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HsmError);
    expect((err as HsmError).code).toBe("key_exists");
    expect((err as HsmError).transient).toBe(false);
  });

  it("concurrent createKey on one path: exactly one wins", async () => {
    const results = await Promise.allSettled([signer.createKey("test/race"), signer.createKey("test/race"), signer.createKey("test/race")]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect((r.reason as HsmError).code).toBe("key_exists");
    const objs = withTestSession((_s, session) => {
      const n = session.find({ class: ObjectClass.PRIVATE_KEY, label: "test/race" }).length;
      session.close();
      return n;
    });
    expect(objs).toBe(1);
  });

  it("unknown keys: getKey → null, signDigest → key_not_found", async () => {
    expect(await signer.getKey("does/not/exist")).toBeNull();
    const err = await signer.signDigest("does/not/exist", keccak256("0x")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HsmError);
    expect((err as HsmError).code).toBe("key_not_found");
  });

  it("invalid paths are rejected", async () => {
    await expect(signer.createKey("")).rejects.toThrow(TypeError);
    await expect(signer.getKey("a\nb")).rejects.toThrow(TypeError);
  });

  it("listKeys returns every key, sorted, and a fresh signer finds keys made by another", async () => {
    const b = await signer.createKey("test/b-key");
    const a = await signer.createKey("test/a-key");
    const list = await signer.listKeys();
    const paths = list.map((k) => k.path);
    expect(paths).toEqual([...paths].sort());
    expect(paths).toEqual(expect.arrayContaining([KEY, "test/a-key", "test/b-key", "test/race"]));
    expect(list.find((k) => k.path === "test/a-key")).toEqual(a);

    const fresh = await Pkcs11Signer.open({ ...token, poolSize: 2 });
    try {
      expect(await fresh.getKey("test/b-key")).toEqual(b);
      expect(await fresh.getKey(KEY)).toEqual(key);
      expect(a.address).not.toBe(b.address);
    } finally {
      await fresh.close();
    }
  });
});

describe("errors and recovery", () => {
  it("a wrong PIN fails at open with hsm_error and the PIN is not in the message", async () => {
    const wrong = "definitely-wrong-pin-9876";
    const err = await Pkcs11Signer.open({ ...otherToken, pin: wrong }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HsmError);
    expect((err as HsmError).code).toBe("hsm_error");
    expect((err as HsmError).message).toContain("CKR_PIN_INCORRECT");
    expect((err as HsmError).message).not.toContain(wrong);
    expect(String((err as HsmError).stack)).not.toContain(wrong);
    // …and the right PIN works on that token.
    const ok = await Pkcs11Signer.open(otherToken);
    expect(await ok.listKeys()).toEqual([]);
    await ok.close();
  });

  it("an unknown token label is hsm_unavailable", async () => {
    const err = await Pkcs11Signer.open({ ...token, tokenLabel: "no-such-token" }).catch((e: unknown) => e);
    expect((err as HsmError).code).toBe("hsm_unavailable");
  });

  it("recovers after every session of the application is closed (HSM session loss)", async () => {
    // C_CloseAllSessions on the slot: closes the signer's pooled sessions and logs the
    // application out, which in SoftHSM also invalidates cached private-key handles.
    withTestSession((slot) => slot.closeAll());
    const digest = keccak256("0xdead");
    const sig = await signer.signDigest(KEY, digest);
    expect(await recoverAddress({ hash: digest, signature: sig })).toBe(key.address);
    // Every pooled session was dead; concurrent callers heal the rest.
    withTestSession((slot) => slot.closeAll());
    const digests = Array.from({ length: 20 }, (_, i) => keccak256(toHex(`heal-${i}`)));
    const sigs = await Promise.all(digests.map((d) => signer.signDigest(KEY, d)));
    for (const [i, s] of sigs.entries()) expect(await recoverAddress({ hash: digests[i], signature: s })).toBe(key.address);
    expect(await signer.health()).toEqual({ status: "ok" });
    withTestSession((slot) => slot.closeAll());
    expect(await signer.health()).toEqual({ status: "ok" });
    expect((await signer.listKeys()).length).toBeGreaterThan(0);
  });

  it("after close: health unavailable, operations fail with hsm_unavailable", async () => {
    const s2 = await Pkcs11Signer.open({ ...token, poolSize: 1 });
    expect(await s2.health()).toEqual({ status: "ok" });
    await s2.close();
    await s2.close(); // idempotent
    expect((await s2.health()).status).toBe("unavailable");
    const err = await s2.signDigest(KEY, keccak256("0x")).catch((e: unknown) => e);
    expect((err as HsmError).code).toBe("hsm_unavailable");
  });
});

describe("viem account adapter", () => {
  it("signMessage / signTypedData verify against the key's address", async () => {
    const account = hsmAccount(signer, key);
    expect(account.address).toBe(key.address);
    expect(account.publicKey).toBe(key.publicKey);
    const signature = await account.signMessage({ message: "hello from the HSM" });
    expect(await verifyMessage({ address: key.address, message: "hello from the HSM", signature })).toBe(true);

    const typedData = {
      domain: { name: "Intents", version: "1", chainId: 8453, verifyingContract: "0x000000000000000000000000000000000000dEaD" },
      types: {
        Order: [
          { name: "owner", type: "address" },
          { name: "amount", type: "uint256" },
        ],
      },
      primaryType: "Order",
      message: { owner: key.address, amount: 42n },
    } as const;
    const tdSig = await account.signTypedData(typedData);
    expect(await verifyTypedData({ address: key.address, signature: tdSig, ...typedData })).toBe(true);

    const raw = await account.signTransaction({ chainId: 1, nonce: 0, to: key.address, gasPrice: 1n, gas: 21000n });
    expect(await recoverTransactionAddress({ serializedTransaction: raw as never })).toBe(key.address);
  });
});
