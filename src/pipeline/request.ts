// The transaction request as the pipeline uses it, parsed from its wire shape (src/http/schemas/transactions.ts).
import { parseMajor } from "../units.js";
import type { TransactionRequest } from "../http/schemas/transactions.js";

/** The request as the pipeline uses it: amounts as bigint, addresses lower-case. */
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

export function toIntent(r: TransactionRequest): Intent {
  return {
    to: r.to.toLowerCase() as `0x${string}`,
    valueWei: parseMajor(r.value)!,
    chain: r.chain,
    data: r.data && r.data !== "0x" ? (r.data.toLowerCase() as `0x${string}`) : undefined,
    signingKeyPath: r.signing_key_path,
    nonce: r.nonce,
    gasLimit: r.gas_limit !== undefined ? BigInt(r.gas_limit) : undefined,
    gasPrice: r.gas_price !== undefined ? BigInt(r.gas_price) : undefined,
    maxFeePerGas: r.max_fee_per_gas !== undefined ? BigInt(r.max_fee_per_gas) : undefined,
    maxPriorityFeePerGas: r.max_priority_fee_per_gas !== undefined ? BigInt(r.max_priority_fee_per_gas) : undefined,
    simulateFirst: r.simulate_first ?? false,
    txType: (r.tx_type ?? (r.authorization_list ? 4 : undefined)) as Intent["txType"],
    accessList: r.access_list?.map((e) => ({
      address: e.address.toLowerCase() as `0x${string}`,
      storageKeys: e.storage_keys.map((k) => k.toLowerCase() as `0x${string}`),
    })),
    authorizations: r.authorization_list?.map((a) => ({ delegate: a.address.toLowerCase() as `0x${string}`, chainId: a.chain_id })),
  };
}
