// The tracker's common case in bulk: rows sent once, never seen in a block before, whose receipt is
// now final (at the chain's `confirmations`). Under load that is nearly every row of a pass, and doing
// them one by one (a lease transaction, attempt rows, an audit event each) would cost more than the
// submissions did. Here: the receipts of all candidates in one JSON-RPC batch (the transport batches
// calls made together), then one statement for every final one that writes exactly what
// receipts.ts:recordMined writes for it (row final, its original attempt recorded as mined, one
// `transaction.confirmed` event), fenced by the lease and by "no attempt recorded yet" (anything with
// a history, a replacement or an earlier block goes the one-by-one way). Returns the ids it settled;
// the rest of the pass follows the others as before.
import type { Hex } from "viem";
import { auditInsertSql, auditRecordset } from "../db/audit.js";
import type { TxRow } from "../db/transactions.js";
import { confirmedEvent, type Receipt } from "./receipts.js";
import type { ChainView, StepContext } from "./types.js";

export async function settleFinalReceipts(
  sc: StepContext,
  rows: TxRow[],
  view: ChainView,
  suspects: Map<string, number>,
): Promise<Set<string>> {
  const candidates = rows.filter((r) => r.status === "broadcast" && r.block_number === null && r.tx_hash !== null && !suspects.has(r.id));
  if (candidates.length === 0) return new Set();
  const receipts = await Promise.all(
    candidates.map((r) =>
      (sc.client.request({ method: "eth_getTransactionReceipt", params: [r.tx_hash as Hex] }) as Promise<Receipt | null>).catch(() => null),
    ),
  );
  const minConfirmations = Math.max(1, sc.chain.confirmations);
  const final: Array<{ row: TxRow; r: Receipt; confirmations: number }> = [];
  candidates.forEach((row, i) => {
    const r = receipts[i];
    if (!r) return;
    const block = BigInt(r.blockNumber);
    const confirmations = view.head >= block ? Number(view.head - block + 1n) : 1;
    if (confirmations >= minConfirmations) final.push({ row, r, confirmations });
  });
  if (final.length === 0) return new Set();

  const mined = final.map(({ row, r, confirmations }) => ({
    id: row.id,
    block_number: BigInt(r.blockNumber).toString(),
    block_hash: r.blockHash,
    confirmations,
    success: r.status === "0x1",
  }));
  const events = final.map(({ row, r, confirmations }) =>
    confirmedEvent(row, row.tx_hash, r, confirmations, r.status === "0x1" ? "confirmed" : "reverted", "original"),
  );
  const { rows: settled } = await sc.deps.pool.query<{ id: string }>(
    `WITH mined AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS m(id uuid, block_number bigint, block_hash text, confirmations integer, success boolean)
     ), updated AS (
       UPDATE transactions t
          SET chain_status = CASE WHEN m.success THEN 'confirmed' ELSE 'reverted' END, block_number = m.block_number,
              block_hash = m.block_hash, confirmations = m.confirmations, replaced_by = NULL,
              error_message = CASE WHEN m.success THEN NULL ELSE 'Reverted on chain' END, updated_at = now()
         FROM mined m
        WHERE t.id = m.id AND t.lease_owner = $2 AND t.status = 'broadcast' AND t.block_number IS NULL
          AND NOT EXISTS (SELECT 1 FROM transaction_attempts a WHERE a.tx_id = t.id)
       RETURNING t.*
     ), attempts AS (
       INSERT INTO transaction_attempts (tx_id, kind, tx_hash, signed_tx, to_address, value_wei, gas_limit, gas_price,
           max_fee_per_gas, max_priority_fee_per_gas, status, send_count, last_sent_at)
       SELECT id, 'original', tx_hash, signed_tx, to_address, value_wei, gas_limit, gas_price, max_fee_per_gas,
              max_priority_fee_per_gas, 'mined', broadcast_attempts, last_broadcast_at
         FROM updated
       ON CONFLICT (tx_hash) DO NOTHING
     ), audit AS (
       ${auditInsertSql("$3", "WHERE a.resource_id IN (SELECT id::text FROM updated)")}
     )
     SELECT id FROM updated`,
    [JSON.stringify(mined), sc.owner, auditRecordset(events)],
  );
  const ids = new Set(settled.map((r) => r.id));
  for (const { row, r } of final) {
    if (!ids.has(row.id)) continue;
    suspects.delete(`reorg:${row.id}`);
    sc.deps.log.info(
      { tx_id: row.id, chain: row.chain, tx_hash: row.tx_hash, chain_status: r.status === "0x1" ? "confirmed" : "reverted", attempts: 1 },
      "transaction final on chain",
    );
  }
  return ids;
}
