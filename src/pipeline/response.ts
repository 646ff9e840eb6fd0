// Maps a transaction row to its wire shape. The pipeline builds it (a stored idempotent answer is
// replayed byte for byte), the routes send it.
import { checksumAddress } from "viem";
import type { TxRow } from "../db/transactions.js";
import { formatMajor } from "../units.js";

// The wire shape of a transaction (TransactionResponse of the reference OpenAPI, plus the lifecycle
// fields README.md documents). Fields without a value are left out rather than sent as null, as the
// reference types them as plain strings; `signed_tx` is included only when asked for.
export interface TransactionResponse {
  id: string;
  agent_id: string;
  chain: string;
  chain_id: number;
  from: string;
  to: string;
  value: string;
  value_wei: string;
  nonce?: number;
  gas_limit?: number;
  gas_price?: string;
  max_fee_per_gas?: string;
  max_priority_fee_per_gas?: string;
  status: TxRow["status"];
  tx_hash?: string;
  signed_tx?: string | null;
  error_message?: string;
  created_at: string;
  signed_at?: string;
  simulation_id?: string;
  simulation_status?: string;
  chain_status?: string;
  block_number?: number;
  confirmations: number;
  replaced_by?: string;
  signing_key_path: string;
}

export function toTransactionResponse(row: TxRow, opts: { includeSignedTx: boolean }): TransactionResponse {
  const out: TransactionResponse = {
    id: row.id,
    agent_id: row.agent_id,
    chain: row.chain,
    chain_id: Number(row.chain_id),
    from: checksumAddress(row.from_address as `0x${string}`),
    to: checksumAddress(row.to_address as `0x${string}`),
    value: formatMajor(BigInt(row.value_wei)),
    value_wei: row.value_wei,
    status: row.status,
    created_at: row.created_at.toISOString(),
    confirmations: row.confirmations,
    signing_key_path: row.signing_key_path,
  };
  if (row.nonce !== null) out.nonce = Number(row.nonce);
  if (row.gas_limit !== null) out.gas_limit = Number(row.gas_limit);
  if (row.gas_price !== null) out.gas_price = row.gas_price;
  if (row.max_fee_per_gas !== null) out.max_fee_per_gas = row.max_fee_per_gas;
  if (row.max_priority_fee_per_gas !== null) out.max_priority_fee_per_gas = row.max_priority_fee_per_gas;
  if (row.tx_hash !== null) out.tx_hash = row.tx_hash;
  // A node refused it: its bytes are never handed out (the refusal may be temporary, and the row no
  // longer counts toward the agent's limits unless they were handed out before; db/agents.ts).
  if (opts.includeSignedTx && row.status !== "failed") out.signed_tx = row.signed_tx;
  if (row.error_message !== null) out.error_message = row.error_message;
  if (row.signed_at !== null) out.signed_at = row.signed_at.toISOString();
  if (row.simulation_id !== null) out.simulation_id = row.simulation_id;
  if (row.simulation_status !== null) out.simulation_status = row.simulation_status;
  if (row.chain_status !== null) out.chain_status = row.chain_status;
  if (row.block_number !== null) out.block_number = Number(row.block_number);
  if (row.replaced_by !== null) out.replaced_by = row.replaced_by;
  return out;
}
