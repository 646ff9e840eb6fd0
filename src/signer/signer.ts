/**
 * The signing interface the rest of the service uses. Implementations keep private keys out of
 * process memory (Pkcs11Signer: keys live in a PKCS#11 token and never leave it).
 */
import type { Address, Hex, SerializeTransactionFn, TransactionSerializable } from "viem";

export interface SigningKeyInfo {
  /** Key path, e.g. "treasury/hot-1"; stored as the key's CKA_LABEL. */
  path: string;
  /** EIP-55 checksummed address. */
  address: Address;
  /** Uncompressed SEC1 public key, 0x04||X||Y (65 bytes). */
  publicKey: Hex;
}

export interface DigestSignature {
  r: Hex;
  /** Always low-s (s ≤ n/2, EIP-2). */
  s: Hex;
  yParity: 0 | 1;
}

export interface SignerHealth {
  status: "ok" | "unavailable";
  detail?: string;
}

export interface Signer {
  /** Generates a new key pair inside the HSM. Throws HsmError 'key_exists' if the path is taken. */
  createKey(path: string): Promise<SigningKeyInfo>;
  /** Looks a key up by path; positive results are cached in memory. */
  getKey(path: string): Promise<SigningKeyInfo | null>;
  listKeys(): Promise<SigningKeyInfo[]>;
  /** Signs a 32-byte digest (no hashing by the HSM). Returns a low-s signature with its recovery parity. */
  signDigest(path: string, digest: Hex): Promise<DigestSignature>;
  /**
   * Signs a transaction: keccak256(serializer(tx)) → HSM → serializer(tx, signature).
   * `serializer` defaults to viem's serializeTransaction (chains such as OP-stack pass their own).
   */
  signTransaction(path: string, tx: TransactionSerializable, serializer?: SerializeTransactionFn): Promise<Hex>;
  health(): Promise<SignerHealth>;
  close(): Promise<void>;
}

export type HsmErrorCode = "hsm_unavailable" | "key_not_found" | "key_exists" | "hsm_error";

/**
 * Typed signer error. Messages name the key path and the PKCS#11 return code (CKR_…) at most:
 * never a PIN, never key material.
 */
export class HsmError extends Error {
  override readonly name = "HsmError";
  readonly code: HsmErrorCode;
  /** true when retrying later may succeed (session lost, device busy/unreachable). */
  readonly transient: boolean;
  /** The PKCS#11 return value name, when the error came from the HSM (e.g. "CKR_DEVICE_ERROR"). */
  readonly ckr?: string;

  constructor(code: HsmErrorCode, message: string, opts: { transient?: boolean; ckr?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.transient = opts.transient ?? false;
    if (opts.ckr !== undefined) this.ckr = opts.ckr;
  }
}
