// The transaction rows and signed transactions the service builds, in one place: the submit pipeline's
// group commit, a failed simulation's record (./simulate.ts) and the tracker's gap fills
// (tracker/gaps.ts) write the same columns the same way. Pure: no I/O.
import { randomUUID } from "node:crypto";
import { keccak256, type Hex, type SignedAuthorizationList, type TransactionSerializable } from "viem";
import type { Chain } from "../chains/registry.js";
import type { NewTx } from "../db/transactions.js";
import { feeColumns, feeFields, type Fees } from "./fees.js";
import type { Intent } from "./request.js";

/** A signed transaction's row: status `signed` (to broadcast) or `sign_only` (handed back unsent). */
export function signedRow(r: {
  agentId: string;
  chain: Chain;
  from: string;
  intent: Pick<Intent, "to" | "valueWei" | "data">;
  nonce: bigint;
  gas: bigint;
  fees: Fees;
  keyPath: string;
  status: "signed" | "sign_only";
  signedTx: Hex;
  simulation?: { simulationId: string; status: string };
  countsTowardLimits?: boolean;
}): NewTx {
  return {
    id: randomUUID(),
    agent_id: r.agentId,
    chain: r.chain.name,
    chain_id: r.chain.chain_id,
    from_address: r.from,
    to_address: r.intent.to,
    value_wei: r.intent.valueWei,
    data: r.intent.data ?? null,
    nonce: r.nonce,
    gas_limit: r.gas,
    ...feeColumns(r.fees),
    signing_key_path: r.keyPath,
    status: r.status,
    tx_hash: keccak256(r.signedTx),
    signed_tx: r.signedTx,
    error_message: null,
    simulation_id: r.simulation?.simulationId ?? null,
    simulation_status: r.simulation?.status ?? null,
    signed_at: new Date(),
    ...(r.countsTowardLimits === false ? { counts_toward_limits: false } : {}),
  };
}

/**
 * The fee columns of a request that was never signed (no fees were resolved): the caller's own fields,
 * typed by which of them it sent.
 */
export function requestedFeeColumns(
  intent: Pick<Intent, "gasPrice" | "maxFeePerGas" | "maxPriorityFeePerGas">,
): Pick<NewTx, "tx_type" | "gas_price" | "max_fee_per_gas" | "max_priority_fee_per_gas"> {
  return {
    tx_type: intent.gasPrice !== undefined ? "legacy" : intent.maxFeePerGas !== undefined ? "eip1559" : null,
    gas_price: intent.gasPrice ?? null,
    max_fee_per_gas: intent.maxFeePerGas ?? null,
    max_priority_fee_per_gas: intent.maxPriorityFeePerGas ?? null,
  };
}

/** The transaction to sign for an intent at a nonce, with the resolved gas and fees. */
export function buildTransaction(
  chain: Chain,
  intent: Pick<Intent, "to" | "valueWei" | "data" | "txType" | "accessList">,
  nonce: bigint,
  gas: bigint,
  fees: Fees,
  authorizationList?: SignedAuthorizationList,
): TransactionSerializable {
  const tx = {
    chainId: chain.chain_id,
    nonce: Number(nonce),
    to: intent.to,
    value: intent.valueWei,
    data: intent.data,
    gas,
    ...feeFields(fees),
  };
  // Types 1 and 4 (and an access list on type 2) are chosen by the request; fees decide 0 and 2.
  if (authorizationList) return { ...tx, type: "eip7702", authorizationList, accessList: intent.accessList } as TransactionSerializable;
  if (intent.txType === 1) return { ...tx, type: "eip2930", accessList: intent.accessList ?? [] } as TransactionSerializable;
  if (intent.accessList) return { ...tx, accessList: intent.accessList } as TransactionSerializable;
  return tx;
}

/** The audit details of a signed row (`transaction.submit` / `transaction.sign`). */
export function auditDetails(row: NewTx, intent?: Intent, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...(intent?.txType !== undefined ? { tx_type: intent.txType } : {}),
    ...(intent?.accessList ? { access_list_entries: intent.accessList.length } : {}),
    // What a type-4 transaction hands over: the key's whole account, to these delegates.
    ...(intent?.authorizations
      ? {
          authorizations: intent.authorizations.map((a, i) => ({
            delegate: a.delegate,
            chain_id: a.chainId ?? row.chain_id,
            nonce: row.nonce === null ? null : Number(row.nonce) + 1 + i,
          })),
        }
      : {}),
    chain: row.chain,
    chain_id: row.chain_id,
    from: row.from_address,
    to: row.to_address,
    value_wei: row.value_wei.toString(),
    nonce: row.nonce === null ? null : Number(row.nonce),
    tx_hash: row.tx_hash,
    signing_key_path: row.signing_key_path,
    status: row.status,
    ...extra,
  };
}
