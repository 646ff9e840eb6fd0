/**
 * Pkcs11Signer: secp256k1 keys generated and kept inside a PKCS#11 token (SoftHSM2 by default).
 *
 * Design notes (the "why"):
 * - graphene/pkcs11js calls are synchronous and block the event loop, except the callback forms,
 *   which run on libuv's thread pool. Signing (the hot path) and key generation use callbacks.
 * - A PKCS#11 session must not run two operations at once, so sessions live in a small pool with
 *   a FIFO wait queue. Login is per application+token: the first session's C_Login logs all in.
 * - The module is initialised with CKF_OS_LOCKING_OK. Without it (NULL/zero init args) SoftHSM
 *   turns its internal mutexes off, which is unsafe once C_Sign runs on several worker threads.
 * - CKM_ECDSA returns raw r||s without a recovery id: we normalise to low-s (EIP-2) and compute
 *   yParity by verifying against the cached public key (src/signer/ecdsa.ts).
 * - Recovery from HSM session loss: session-level errors replace the session (open + login) and
 *   the operation is retried; private key handles are re-looked-up, because SoftHSM hands out new
 *   object handles after a logout (observed: old handles → CKR_OBJECT_HANDLE_INVALID).
 */
import { createHash } from "node:crypto";
import {
  KeyGenMechanism,
  KeyType,
  MechanismEnum,
  Module,
  NamedCurve,
  ObjectClass,
  Session,
  SessionFlag,
  Slot,
  TokenFlag,
  UserType,
} from "graphene-pk11";
import type { IKeyPair, ITemplate } from "graphene-pk11";
import {
  getAddress,
  keccak256,
  serializeTransaction,
  toHex,
  type Hex,
  type SerializeTransactionFn,
  type TransactionSerializable,
} from "viem";
import {
  addressFromPublicKey,
  bigIntToHex32,
  bytesToBigInt,
  normalizeS,
  parseEcPoint,
  preparePublicKey,
  recoverYParity,
  type PreparedPublicKey,
} from "./ecdsa.js";
import { HsmError, type DigestSignature, type Signer, type SignerHealth, type SigningKeyInfo } from "./signer.js";

/** pkcs11js instance type, taken from graphene so we need no direct dependency on pkcs11js. */
type Pkcs11Lib = Session["lib"];

const CKF_OS_LOCKING_OK = 0x2; // PKCS#11 C_Initialize flag: library may use OS locking
const CKS_RW_USER_FUNCTIONS = 3; // session state once the normal user is logged in (R/W session)
const CKS_RO_USER_FUNCTIONS = 1;

const SECP256K1_PARAMS: Buffer = NamedCurve.getByName("secp256k1").value; // DER OID 1.3.132.0.10
const MAX_ATTEMPTS = 3; // first try + up to two recoveries (replace session, then re-find key handle)
const MAX_PATH_LENGTH = 256;

export interface Pkcs11SignerOptions {
  /** Path of the PKCS#11 module (.so). */
  modulePath: string;
  /** Token label; the slot is found by label (SoftHSM moves tokens to new slot ids). */
  tokenLabel: string;
  /** Normal user PIN. Kept in memory only to re-login after session loss. */
  pin: string;
  /**
   * Number of sessions = maximum concurrent HSM operations. Note the async calls share libuv's
   * thread pool (UV_THREADPOOL_SIZE, default 4) with fs/dns/zlib, so more than 4 rarely helps.
   */
  poolSize?: number;
}

/* ------------------------------------------------------------------------------------------------
 * Module sharing: one dlopen + C_Initialize per module path per process. Two signers (or a test
 * poking at the same token) must not finalize the library under each other's feet.
 * ---------------------------------------------------------------------------------------------- */

interface SharedModule {
  module: Module;
  refs: number;
}
const sharedModules = new Map<string, SharedModule>();

function acquireModule(modulePath: string): Module {
  let shared = sharedModules.get(modulePath);
  if (!shared) {
    const module = Module.load(modulePath, "pkcs11");
    try {
      // graphene ignores CKR_CRYPTOKI_ALREADY_INITIALIZED (e.g. someone else loaded it first).
      module.initialize({ flags: CKF_OS_LOCKING_OK });
    } catch (err) {
      try {
        module.close();
      } catch {
        /* ignore */
      }
      throw err;
    }
    shared = { module, refs: 0 };
    sharedModules.set(modulePath, shared);
  }
  shared.refs++;
  return shared.module;
}

function releaseModule(modulePath: string): void {
  const shared = sharedModules.get(modulePath);
  if (!shared) return;
  if (--shared.refs > 0) return;
  sharedModules.delete(modulePath);
  try {
    shared.module.finalize();
  } catch {
    /* already finalized */
  }
  try {
    shared.module.close();
  } catch {
    /* ignore */
  }
}

/* ------------------------------------------------------------------------------------------------
 * Error classification
 * ---------------------------------------------------------------------------------------------- */

/** The session is gone or unusable: replace it (open + login) and retry. */
const SESSION_LOSS = new Set([
  "CKR_SESSION_HANDLE_INVALID",
  "CKR_SESSION_CLOSED",
  "CKR_DEVICE_ERROR",
  "CKR_DEVICE_REMOVED",
  "CKR_DEVICE_MEMORY",
  "CKR_TOKEN_NOT_PRESENT",
  "CKR_TOKEN_NOT_RECOGNIZED",
  "CKR_USER_NOT_LOGGED_IN",
  "CKR_CRYPTOKI_NOT_INITIALIZED",
  "CKR_SLOT_ID_INVALID",
  "CKR_OPERATION_ACTIVE", // a previous operation was left half-done on this session
]);
/** The cached object handle went stale (e.g. after a logout): re-find the key and retry. */
const HANDLE_STALE = new Set(["CKR_OBJECT_HANDLE_INVALID", "CKR_KEY_HANDLE_INVALID"]);
/** May go away by itself; worth a retry on a fresh session but not proof the HSM is down. */
const TRANSIENT_HSM_ERROR = new Set(["CKR_GENERAL_ERROR", "CKR_FUNCTION_FAILED", "CKR_HOST_MEMORY"]);

function ckrOf(err: unknown): string | undefined {
  const msg = err instanceof Error ? err.message : typeof err === "string" ? err : "";
  return /CKR_[A-Z0-9_]+/.exec(msg)?.[0];
}

interface Classified {
  ckr: string | undefined;
  replaceSession: boolean;
  staleHandle: boolean;
  retry: boolean;
}

function classify(err: unknown): Classified {
  const ckr = ckrOf(err);
  if (ckr && SESSION_LOSS.has(ckr)) return { ckr, replaceSession: true, staleHandle: true, retry: true };
  if (ckr && HANDLE_STALE.has(ckr)) return { ckr, replaceSession: false, staleHandle: true, retry: true };
  if (ckr && TRANSIENT_HSM_ERROR.has(ckr)) return { ckr, replaceSession: true, staleHandle: false, retry: true };
  // Unknown failure in the middle of an operation: a fresh session is cheap and can't be left with
  // half an operation active; don't retry (it may be a genuine bad-input error).
  return { ckr, replaceSession: true, staleHandle: false, retry: false };
}

function toHsmError(err: unknown, what: string): HsmError {
  if (err instanceof HsmError) return err;
  const ckr = ckrOf(err);
  if (ckr && SESSION_LOSS.has(ckr)) {
    return new HsmError("hsm_unavailable", `${what}: HSM unavailable (${ckr})`, { transient: true, ckr, cause: err });
  }
  if (ckr && TRANSIENT_HSM_ERROR.has(ckr)) {
    return new HsmError("hsm_error", `${what}: HSM error (${ckr})`, { transient: true, ckr, cause: err });
  }
  // Only the CKR name, never the raw message: keep anything unexpected out of logs/responses.
  return new HsmError("hsm_error", `${what}: HSM error (${ckr ?? "unexpected error"})`, { ckr, cause: err });
}

/* ------------------------------------------------------------------------------------------------
 * Session pool
 * ---------------------------------------------------------------------------------------------- */

interface PooledSession {
  /** null after the session was dropped; reopened lazily on next acquire. */
  session: Session | null;
}

class SessionPool {
  private readonly idle: PooledSession[] = [];
  private readonly waiters: Array<{ resolve: (p: PooledSession) => void; reject: (e: Error) => void }> = [];
  /** Slots handed out (including ones passed straight from a releaser to a waiter). */
  private busy = 0;
  private closed = false;
  private drained: (() => void) | null = null;

  constructor(
    size: number,
    private readonly open: () => Session,
    private readonly closeSession: (s: Session) => void,
  ) {
    for (let i = 0; i < size; i++) this.idle.push({ session: null });
  }

  /** Resolves with a session nobody else is using; waits in FIFO order when all are busy. */
  async acquire(): Promise<{ slot: PooledSession; session: Session }> {
    if (this.closed) throw new HsmError("hsm_unavailable", "signer is closed");
    let slot = this.idle.pop();
    if (slot) this.busy++;
    // A releaser hands its slot to the first waiter directly and keeps it counted as busy, so
    // close() can never finish while a waiter is about to use a session.
    else slot = await new Promise<PooledSession>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!slot.session) {
      try {
        slot.session = this.open();
      } catch (err) {
        this.release(slot, false);
        throw toHsmError(err, "opening HSM session");
      }
    }
    return { slot, session: slot.session };
  }

  /**
   * Returns a session to the pool. `replace`: the session is suspect; a new one is opened *before*
   * the old one is closed, so the application never drops to zero sessions (which would log it out
   * and invalidate every private-key handle).
   */
  release(slot: PooledSession, replace: boolean): void {
    if (replace && slot.session) {
      const old = slot.session;
      slot.session = null;
      if (!this.closed) {
        try {
          slot.session = this.open();
        } catch {
          /* HSM unreachable: leave null, the next acquire retries the open */
        }
      }
      this.closeSession(old);
    }
    if (this.closed) {
      if (slot.session) this.closeSession(slot.session);
      slot.session = null;
      if (--this.busy === 0) this.drained?.();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.resolve(slot); // ownership passes on; busy unchanged
    } else {
      this.busy--;
      this.idle.push(slot);
    }
  }

  /** Stops handing out sessions, waits for in-flight operations, then closes every session. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new HsmError("hsm_unavailable", "signer is closed"));
    if (this.busy > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    for (const slot of this.idle.splice(0)) {
      if (slot.session) this.closeSession(slot.session);
      slot.session = null;
    }
  }
}

/* ------------------------------------------------------------------------------------------------
 * Signer
 * ---------------------------------------------------------------------------------------------- */

interface CachedKey {
  info: SigningKeyInfo;
  prepared: PreparedPublicKey;
}

/** Stable CKA_ID for a path: first 16 bytes of sha256(path). Lets other PKCS#11 tools pair the keys. */
export function keyIdForPath(path: string): Buffer {
  return createHash("sha256").update(path, "utf8").digest().subarray(0, 16);
}

function validatePath(path: string): void {
  if (typeof path !== "string" || path.length === 0 || path.length > MAX_PATH_LENGTH || /[\u0000-\u001f\u007f]/.test(path)) {
    throw new TypeError(`invalid key path (1..${MAX_PATH_LENGTH} printable characters)`);
  }
}

export class Pkcs11Signer implements Signer {
  private readonly pool: SessionPool;
  /** Public data per path: valid as long as the key exists. */
  private readonly keys = new Map<string, CachedKey>();
  /** Private-key object handles per path: valid for this login (SoftHSM reissues them after logout). */
  private readonly handles = new Map<string, Buffer>();
  private readonly lookups = new Map<string, Promise<CachedKey | null>>();
  private readonly creating = new Map<string, Promise<SigningKeyInfo>>();
  private closed = false;

  private constructor(
    private readonly module: Module,
    private readonly modulePath: string,
    private slot: Slot,
    private readonly tokenLabel: string,
    private readonly pin: string,
    poolSize: number,
  ) {
    this.pool = new SessionPool(
      poolSize,
      () => this.openSession(),
      (s) => {
        try {
          s.close();
        } catch {
          /* already gone */
        }
      },
    );
  }

  /** Loads the module, finds the token by label, opens the session pool and logs in. */
  static async open(opts: Pkcs11SignerOptions): Promise<Pkcs11Signer> {
    const poolSize = opts.poolSize ?? 4;
    if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 64) throw new TypeError("poolSize must be 1..64");
    let module: Module;
    try {
      module = acquireModule(opts.modulePath);
    } catch (err) {
      throw new HsmError("hsm_unavailable", `cannot load PKCS#11 module ${opts.modulePath}: ${ckrOf(err) ?? (err as Error).message}`, {
        transient: false,
        cause: err,
      });
    }
    try {
      const slot = findSlotByLabel(module, opts.tokenLabel);
      const signer = new Pkcs11Signer(module, opts.modulePath, slot, opts.tokenLabel, opts.pin, poolSize);
      // Open (and log in) every session now: a wrong PIN or missing token fails at startup, not at
      // the first signature.
      const opened: Array<Awaited<ReturnType<SessionPool["acquire"]>>> = [];
      try {
        for (let i = 0; i < poolSize; i++) opened.push(await signer.pool.acquire());
      } finally {
        for (const o of opened) signer.pool.release(o.slot, false);
      }
      return signer;
    } catch (err) {
      releaseModule(opts.modulePath);
      throw err instanceof HsmError ? err : toHsmError(err, "opening HSM signer");
    }
  }

  /* ---------------------------------------- sessions ----------------------------------------- */

  /** Opens a R/W session and makes sure the user is logged in (synchronous, ~µs on SoftHSM). */
  private openSession(): Session {
    let session: Session;
    try {
      session = this.slot.open(SessionFlag.RW_SESSION | SessionFlag.SERIAL_SESSION);
    } catch (err) {
      const ckr = ckrOf(err);
      if (ckr === "CKR_CRYPTOKI_NOT_INITIALIZED") this.module.initialize({ flags: CKF_OS_LOCKING_OK });
      else if (ckr !== "CKR_SLOT_ID_INVALID" && ckr !== "CKR_TOKEN_NOT_PRESENT" && ckr !== "CKR_DEVICE_REMOVED") throw err;
      // The token may have come back in another slot: find it by label again.
      this.slot = findSlotByLabel(this.module, this.tokenLabel);
      session = this.slot.open(SessionFlag.RW_SESSION | SessionFlag.SERIAL_SESSION);
    }
    try {
      this.login(session);
    } catch (err) {
      try {
        session.close();
      } catch {
        /* ignore */
      }
      throw err;
    }
    return session;
  }

  /** C_Login as the normal user; "already logged in" is success (login state is per application). */
  private login(session: Session): void {
    try {
      session.login(this.pin, UserType.USER);
    } catch (err) {
      const ckr = ckrOf(err);
      if (ckr === "CKR_USER_ALREADY_LOGGED_IN") return;
      if (ckr === "CKR_PIN_INCORRECT" || ckr === "CKR_PIN_LOCKED" || ckr === "CKR_PIN_EXPIRED" || ckr === "CKR_PIN_INVALID") {
        throw new HsmError("hsm_error", `HSM login failed (${ckr})`, { transient: false, ckr });
      }
      throw toHsmError(err, "HSM login");
    }
  }

  private isLoggedIn(session: Session): boolean {
    const { state } = session.lib.C_GetSessionInfo(session.handle);
    return state === CKS_RW_USER_FUNCTIONS || state === CKS_RO_USER_FUNCTIONS;
  }

  /**
   * Runs `op` on a pooled session, replacing the session and retrying on session loss.
   * `idempotent: false` (key generation) replaces a broken session but never re-runs the op.
   */
  private async withSession<T>(what: string, op: (session: Session) => Promise<T>, idempotent = true): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const { slot, session } = await this.pool.acquire();
      let replace = false;
      try {
        return await op(session);
      } catch (err) {
        if (err instanceof HsmError && err.ckr === undefined) throw err; // our own (key_not_found, …)
        const c = classify(err);
        replace = c.replaceSession;
        if (c.staleHandle) this.handles.clear();
        if (!(idempotent && c.retry && attempt < MAX_ATTEMPTS && !this.closed)) throw toHsmError(err, what);
      } finally {
        this.pool.release(slot, replace);
      }
    }
  }

  /* ---------------------------------------- keys ----------------------------------------- */

  async createKey(path: string): Promise<SigningKeyInfo> {
    validatePath(path);
    // One creation per path at a time in this process, so the exists-check and C_GenerateKeyPair
    // can't interleave. (Across processes sharing a token, the check is best effort.)
    for (let pending = this.creating.get(path); pending; pending = this.creating.get(path)) {
      if (
        await pending.then(
          () => true,
          () => false,
        )
      )
        throw new HsmError("key_exists", `key already exists: ${path}`);
    }
    const p = this.createKeyUnlocked(path);
    this.creating.set(path, p);
    try {
      return await p;
    } finally {
      this.creating.delete(path);
    }
  }

  private async createKeyUnlocked(path: string): Promise<SigningKeyInfo> {
    if (await this.getKey(path)) throw new HsmError("key_exists", `key already exists: ${path}`);
    const id = keyIdForPath(path);
    const publicTemplate: ITemplate = {
      keyType: KeyType.EC,
      token: true,
      private: false,
      verify: true,
      label: path,
      id,
      paramsEC: SECP256K1_PARAMS,
    };
    const privateTemplate: ITemplate = {
      keyType: KeyType.EC,
      token: true,
      private: true,
      sensitive: true, // CKA_VALUE can never be read…
      extractable: false, // …nor wrapped out of the token
      sign: true,
      derive: false,
      label: path,
      id,
    };
    return this.withSession(
      `creating key ${path}`,
      async (session) => {
        // Callback form: key generation runs on the thread pool, not the event loop.
        const pair = await new Promise<IKeyPair>((resolve, reject) =>
          session.generateKeyPair(KeyGenMechanism.EC, publicTemplate, privateTemplate, (err, keys) =>
            err || !keys ? reject(err ?? new Error("C_GenerateKeyPair returned no keys")) : resolve(keys),
          ),
        );
        const point = pair.publicKey.getAttribute({ pointEC: null }).pointEC as Buffer;
        const cached = this.cacheKey(path, point);
        this.handles.set(path, pair.privateKey.handle);
        return cached.info;
      },
      false,
    );
  }

  async getKey(path: string): Promise<SigningKeyInfo | null> {
    validatePath(path);
    return (await this.lookup(path))?.info ?? null;
  }

  /** Cached public data for `path`; concurrent misses share one HSM lookup. */
  private async lookup(path: string): Promise<CachedKey | null> {
    const cached = this.keys.get(path);
    if (cached) return cached;
    let pending = this.lookups.get(path);
    if (!pending) {
      pending = this.withSession(`looking up key ${path}`, async (session) => {
        const found = this.findKeyObjects(session, path);
        if (!found) return null;
        this.handles.set(path, found.privateHandle);
        return this.cacheKey(path, found.point);
      }).finally(() => this.lookups.delete(path));
      this.lookups.set(path, pending);
    }
    return pending;
  }

  /**
   * Finds the key pair labelled `path`: the private key's handle and the public CKA_EC_POINT.
   * Private objects are invisible when not logged in, so a miss re-checks the login first.
   */
  private findKeyObjects(session: Session, path: string): { privateHandle: Buffer; point: Buffer } | null {
    let priv = session.find({ class: ObjectClass.PRIVATE_KEY, keyType: KeyType.EC, label: path });
    if (priv.length === 0 && !this.isLoggedIn(session)) {
      this.login(session);
      priv = session.find({ class: ObjectClass.PRIVATE_KEY, keyType: KeyType.EC, label: path });
    }
    if (priv.length === 0) return null;
    const pub = session.find({ class: ObjectClass.PUBLIC_KEY, keyType: KeyType.EC, label: path });
    if (pub.length === 0) {
      throw new HsmError("hsm_error", `key ${path} has a private key but no public key object in the token`);
    }
    const attrs = pub.items(0).getAttribute({ pointEC: null, paramsEC: null });
    if (!isSecp256k1(attrs)) {
      throw new HsmError("hsm_error", `key ${path} is not a secp256k1 key`);
    }
    return { privateHandle: priv.items(0).handle, point: attrs.pointEC as Buffer };
  }

  private cacheKey(path: string, ecPoint: Uint8Array): CachedKey {
    const raw = parseEcPoint(ecPoint);
    const entry: CachedKey = {
      info: { path, address: getAddress(addressFromPublicKey(raw)), publicKey: toHex(raw) },
      prepared: preparePublicKey(raw, { eager: true }),
    };
    this.keys.set(path, entry);
    return entry;
  }

  async listKeys(): Promise<SigningKeyInfo[]> {
    const entries = await this.withSession("listing keys", async (session) => {
      if (!this.isLoggedIn(session)) this.login(session);
      const privateLabels = new Set<string>();
      for (const obj of session.find({ class: ObjectClass.PRIVATE_KEY, keyType: KeyType.EC })) {
        const label = obj.getAttribute({ label: null }).label;
        if (typeof label === "string") privateLabels.add(label);
      }
      const out: Array<{ path: string; point: Buffer }> = [];
      for (const obj of session.find({ class: ObjectClass.PUBLIC_KEY, keyType: KeyType.EC })) {
        const a = obj.getAttribute({ label: null, pointEC: null, paramsEC: null });
        if (typeof a.label !== "string" || !privateLabels.has(a.label)) continue;
        if (!isSecp256k1(a)) continue;
        out.push({ path: a.label, point: a.pointEC as Buffer });
      }
      return out;
    });
    const seen = new Set<string>();
    const result: SigningKeyInfo[] = [];
    for (const { path, point } of entries) {
      if (seen.has(path)) continue; // duplicate labels: the first object wins, as in lookups
      seen.add(path);
      result.push((this.keys.get(path) ?? this.cacheKey(path, point)).info);
    }
    return result.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /* ---------------------------------------- signing ----------------------------------------- */

  async signDigest(path: string, digest: Hex): Promise<DigestSignature> {
    validatePath(path);
    if (typeof digest !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(digest)) {
      throw new TypeError("digest must be a 0x-prefixed 32-byte hex string");
    }
    const digestBytes = Buffer.from(digest.slice(2), "hex");
    const key = await this.lookup(path);
    if (!key) throw new HsmError("key_not_found", `key not found: ${path}`);

    const raw = await this.withSession(`signing with ${path}`, async (session) => {
      let handle = this.handles.get(path);
      if (!handle) {
        // Handle dropped after a session loss / logout: find the private key again.
        const found = this.findKeyObjects(session, path);
        if (!found) {
          this.keys.delete(path);
          throw new HsmError("key_not_found", `key not found: ${path}`);
        }
        handle = found.privateHandle;
        this.handles.set(path, handle);
      }
      const lib: Pkcs11Lib = session.lib;
      lib.C_SignInit(session.handle, { mechanism: MechanismEnum.ECDSA }, handle);
      // Async C_Sign: runs on libuv's thread pool so the event loop keeps serving requests.
      return await new Promise<Buffer>((resolve, reject) =>
        lib.C_Sign(session.handle, digestBytes, Buffer.alloc(128), (err, sig) => (err ? reject(err) : resolve(sig))),
      );
    });

    if (raw.length !== 64) throw new HsmError("hsm_error", `unexpected ECDSA signature length ${raw.length}`);
    const r = bytesToBigInt(raw.subarray(0, 32));
    const s = normalizeS(bytesToBigInt(raw.subarray(32)));
    let yParity: 0 | 1;
    try {
      // Verifies the HSM's signature against the cached public key and yields the parity of R.
      yParity = recoverYParity(digestBytes, r, s, key.prepared);
    } catch (err) {
      throw new HsmError("hsm_error", `HSM signature for ${path} does not verify`, { cause: err });
    }
    return { r: bigIntToHex32(r), s: bigIntToHex32(s), yParity };
  }

  async signTransaction(
    path: string,
    tx: TransactionSerializable,
    serializer: SerializeTransactionFn = serializeTransaction as SerializeTransactionFn,
  ): Promise<Hex> {
    // As viem's own signTransaction: blob sidecars are not part of the signed payload.
    const signable = tx.type === "eip4844" ? { ...tx, sidecars: false } : tx;
    const digest = keccak256(await serializer(signable as TransactionSerializable));
    const { r, s, yParity } = await this.signDigest(path, digest);
    // `v` is required: viem's legacy serializer derives EIP-155 v (chainId·2 + 35 + yParity) from
    // v = 27/28, it does not look at yParity. Typed transactions use yParity.
    return (await serializer(tx, { r, s, v: yParity ? 28n : 27n, yParity })) as Hex;
  }

  /* ---------------------------------------- lifecycle ----------------------------------------- */

  async health(): Promise<SignerHealth> {
    if (this.closed) return { status: "unavailable", detail: "signer is closed" };
    try {
      const ok = await Promise.race([
        this.withSession("health check", async (session) => {
          if (!this.isLoggedIn(session)) this.login(session);
          const token = this.slot.getToken();
          if (token.flags & TokenFlag.USER_PIN_LOCKED) throw new HsmError("hsm_error", "user PIN is locked");
          return true;
        }),
        new Promise<false>((resolve) => setTimeout(resolve, 5_000, false).unref()),
      ]);
      return ok ? { status: "ok" } : { status: "unavailable", detail: "HSM session pool busy for 5 s" };
    } catch (err) {
      return { status: "unavailable", detail: err instanceof HsmError ? err.message : toHsmError(err, "health check").message };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close();
    this.keys.clear();
    this.handles.clear();
    releaseModule(this.modulePath);
  }
}

/**
 * CKA_EC_PARAMS is secp256k1? graphene maps the attribute back under its first registered name,
 * `paramsECDSA`, even when it was requested as `paramsEC`.
 */
function isSecp256k1(attrs: ITemplate): boolean {
  const params = attrs.paramsECDSA ?? attrs.paramsEC;
  return !!params && Buffer.from(params).equals(SECP256K1_PARAMS);
}

/** Finds the slot holding an initialised token with this label (never by index: SoftHSM renumbers). */
function findSlotByLabel(module: Module, label: string): Slot {
  const slots = module.getSlots(true);
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.items(i);
    const token = slot.getToken();
    if (token.flags & TokenFlag.TOKEN_INITIALIZED && token.label === label) return slot;
  }
  throw new HsmError(
    "hsm_unavailable",
    `no initialised PKCS#11 token labelled "${label}"` +
      // SoftHSM reads SOFTHSM2_CONF and scans its tokens at C_Initialize: a token created later (or
      // in another folder) stays invisible while any signer in this process keeps the module open.
      (/softhsm/i.test(module.libFile ?? "")
        ? " (SoftHSM sees only tokens that existed under SOFTHSM2_CONF when the module was initialised)"
        : ""),
    { transient: false },
  );
}
