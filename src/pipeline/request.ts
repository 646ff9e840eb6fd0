// The requests the pipeline takes, already parsed: the routes (src/http/intents.ts) check the data size
// cap, validate the body against its wire schema and hand over these shapes.

/** A transaction request as the pipeline uses it: amounts as bigint, addresses lower-case. */
export interface Intent {
  to: `0x${string}`;
  valueWei: bigint;
  chain: string;
  data?: `0x${string}`;
  signingKeyPath?: string;
  nonce?: number;
  gasLimit?: bigint;
  gasPrice?: bigint;
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
  simulateFirst: boolean;
  /** EIP-2718 type when the caller chose one (0, 1, 2 or 4). */
  txType?: 0 | 1 | 2 | 4;
  accessList?: Array<{ address: `0x${string}`; storageKeys: `0x${string}`[] }>;
  /** EIP-7702 authorizations to sign with the transaction's key (delegate lower-case). */
  authorizations?: Array<{ delegate: `0x${string}`; chainId?: number }>;
}

/** One call of a simulation request (…/simulate, …/simulate-bundle). */
export type SimulationIntent = Pick<Intent, "chain" | "to" | "valueWei" | "data" | "signingKeyPath" | "gasLimit">;

/** A signing intent (POST /v1/agents/{id}/sign), in the wire's names. */
export interface SignRequest {
  intent_type: "personal_sign" | "typed_data" | "eip712_digest" | "transaction";
  chain: string;
  signing_key_path?: string;
  message?: string;
  typed_data?: unknown;
  hash?: string;
  sign_only?: boolean;
  /**
   * intent_type "transaction": its transaction fields as a request of their own (`body`, as the
   * submit pipeline's idempotency fingerprint takes it) and parsed.
   */
  transaction?: { body: Record<string, unknown>; intent: Intent };
}

/** The largest message a personal_sign intent may carry, in bytes. */
export const MAX_MESSAGE_BYTES = 16 * 1024;
