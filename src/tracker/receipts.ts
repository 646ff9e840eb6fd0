// Step 1 of following a transaction: receipts and confirmations. Takes a claimed row, its attempts and
// the pass's chain view. Asks the node for the receipt of every attempt that could be in a block
// (only one can be, they share a nonce) and records what it finds, fenced by the row's lease:
//   - a receipt: block, confirmations (head − block + 1); at the chain's `confirmations` the row is
//     final: `confirmed`, `reverted` (failed receipt) or `replaced` (an operator's cancel mined);
//   - the receipt it had recorded is gone (on two passes in a row): a reorg (see reorg.ts), the row is
//     unconfirmed again;
//   - no receipt, but the address's mined nonce count is past this nonce on two passes in a row:
//     a transaction none of our attempts took the nonce; the row is `dropped`.
// Writes: the transactions row, attempt statuses, audit events (confirmed, reorged, dropped).
import type { Hex } from "viem";
import { appendAudit, type AuditEvent } from "../db/audit.js";
import { auditDropped, auditTransaction } from "./audit.js";
import type { TxRow } from "../db/transactions.js";
import { minableAttempts, type AttemptRow } from "../db/attempts.js";
import { withLease } from "../db/leases.js";
import { recordReorg } from "./reorg.js";
import { TRACKER_ACTOR, type ChainView, type StepContext } from "./types.js";

export type ReceiptCheck =
  | { kind: "pending"; latestCount: bigint }
  | { kind: "reorged"; latestCount: bigint }
  | { kind: "mined" }
  /** A reorg, or a nonce used by someone else, seen once: confirmed on the next pass before acting. */
  | { kind: "suspect" }
  | { kind: "nonce_taken" };

export interface Receipt {
  blockNumber: Hex;
  blockHash: Hex;
  status: Hex;
  gasUsed: Hex;
}

/** What every event about a mined row says: the row, and the signature that is (or was) in a block. */
function eventBase(row: TxRow, txHash: string | null) {
  return {
    chain: row.chain,
    chain_id: Number(row.chain_id),
    from: row.from_address,
    to: row.to_address,
    value_wei: row.value_wei,
    nonce: Number(row.nonce),
    tx_hash: txHash,
  };
}

/** The `transaction.confirmed` event of a row final on chain (also written in bulk: bulk.ts). */
export function confirmedEvent(
  row: TxRow,
  txHash: string | null,
  r: Receipt,
  confirmations: number,
  chainStatus: string,
  attemptKind: string,
): AuditEvent {
  const success = r.status === "0x1";
  return {
    action: "transaction.confirmed",
    actor: TRACKER_ACTOR,
    resourceType: "transaction",
    resourceId: row.id,
    details: {
      ...eventBase(row, txHash),
      chain_status: chainStatus,
      receipt_status: success ? "success" : "reverted",
      block_number: Number(BigInt(r.blockNumber)),
      block_hash: r.blockHash,
      confirmations,
      gas_used: BigInt(r.gasUsed).toString(),
      attempt_kind: attemptKind,
    },
  };
}

export async function checkReceipts(
  sc: StepContext,
  row: TxRow,
  attempts: AttemptRow[],
  view: ChainView,
  suspects: Map<string, number>,
): Promise<ReceiptCheck> {
  const nonce = BigInt(row.nonce!);
  // Read before the receipts: a count past our nonce with none of our receipts then really means
  // someone else's transaction (ours would have a receipt by the time we ask).
  const latestCount = await view.latestCount(row.from_address);
  const candidates = minableAttempts(attempts);
  const receipts = await Promise.all(
    candidates.map(
      (a) => sc.client.request({ method: "eth_getTransactionReceipt", params: [a.tx_hash as Hex] }) as Promise<Receipt | null>,
    ),
  );
  const i = receipts.findIndex((r) => r !== null);
  if (i >= 0) {
    suspects.delete(row.id);
    suspects.delete(`reorg:${row.id}`);
    await recordMined(sc, row, attempts, candidates[i], receipts[i]!, view);
    return { kind: "mined" };
  }
  if (row.block_number !== null) {
    // Seen on two passes in a row before it counts: one lagging node behind a failover is not a reorg.
    const key = `reorg:${row.id}`;
    const seen = (suspects.get(key) ?? 0) + 1;
    if (seen < 2) {
      suspects.set(key, seen);
      return { kind: "suspect" };
    }
    suspects.delete(key);
    await recordReorg(sc, row, "its receipt is no longer on the canonical chain");
    return { kind: "reorged", latestCount };
  }
  if (latestCount > nonce) {
    const seen = (suspects.get(row.id) ?? 0) + 1;
    if (seen < 2) {
      suspects.set(row.id, seen);
      return { kind: "suspect" };
    }
    suspects.delete(row.id);
    await recordNonceTaken(sc, row);
    return { kind: "nonce_taken" };
  }
  suspects.delete(row.id);
  return { kind: "pending", latestCount };
}

async function recordMined(
  sc: StepContext,
  row: TxRow,
  attempts: AttemptRow[],
  mined: AttemptRow,
  r: Receipt,
  view: ChainView,
): Promise<void> {
  const block = BigInt(r.blockNumber);
  const confirmations = view.head >= block ? Number(view.head - block + 1n) : 1;
  const final = confirmations >= Math.max(1, sc.chain.confirmations);
  const success = r.status === "0x1";
  const cancelled = mined.kind === "cancel";
  const moved = row.block_hash !== null && row.block_hash !== r.blockHash;
  const unchanged =
    !final &&
    !moved &&
    row.block_hash === r.blockHash &&
    row.confirmations === confirmations &&
    row.status === "broadcast" &&
    mined.status === "mined" &&
    (cancelled || row.tx_hash === mined.tx_hash);
  if (unchanged) return;

  const chainStatus = !final ? "unconfirmed" : cancelled ? "replaced" : success ? "confirmed" : "reverted";
  await withLease(sc.deps.pool, row.id, sc.owner, async (tx) => {
    // The row shows the mined signature (a speed-up's, or the original's if it won the race), except
    // for a cancel: the row keeps the transaction it asked for, and `replaced_by` names the cancel.
    await tx.query(
      `UPDATE transactions
          SET status = 'broadcast', chain_status = $2, block_number = $3, block_hash = $4, confirmations = $5,
              replaced_by = $6,
              tx_hash = CASE WHEN $7 THEN $8 ELSE tx_hash END,
              signed_tx = CASE WHEN $7 THEN $9 ELSE signed_tx END,
              gas_price = CASE WHEN $7 THEN $10::numeric ELSE gas_price END,
              max_fee_per_gas = CASE WHEN $7 THEN $11::numeric ELSE max_fee_per_gas END,
              max_priority_fee_per_gas = CASE WHEN $7 THEN $12::numeric ELSE max_priority_fee_per_gas END,
              counts_toward_limits = CASE WHEN $13 THEN false ELSE counts_toward_limits END,
              error_message = $14, updated_at = now()
        WHERE id = $1`,
      [
        row.id,
        chainStatus,
        block.toString(),
        r.blockHash,
        confirmations,
        cancelled ? mined.tx_hash : null,
        !cancelled,
        mined.tx_hash,
        mined.signed_tx,
        mined.gas_price,
        mined.max_fee_per_gas,
        mined.max_priority_fee_per_gas,
        cancelled && final,
        final && !success && !cancelled ? "Reverted on chain" : null,
      ],
    );
    if (mined.status !== "mined") {
      await tx.query("UPDATE transaction_attempts SET status = 'mined', updated_at = now() WHERE id = $1", [mined.id]);
      // Older attempts were replaced by the one that mined; newer ones can no longer be mined.
      await tx.query(
        `UPDATE transaction_attempts
            SET status = CASE WHEN id < $2 THEN 'replaced' ELSE 'dropped' END, replaced_by = $3, updated_at = now()
          WHERE tx_id = $1 AND id <> $2 AND status IN ('signed', 'sent', 'mined')`,
        [row.id, mined.id, mined.tx_hash],
      );
    }
    const base = eventBase(row, mined.tx_hash);
    if (row.status === "signed") {
      // A send whose answer was lost reached a node after all: the broadcast is known from its receipt.
      await auditTransaction(tx, "transaction.broadcast", row.id, { ...base, seen: "mined" });
    }
    if (moved) {
      await auditTransaction(tx, "transaction.reorged", row.id, {
        ...base,
        reason: "mined again in another block",
        old_block_number: Number(row.block_number),
        old_block_hash: row.block_hash,
        block_number: Number(block),
        block_hash: r.blockHash,
      });
    }
    if (final) {
      await appendAudit(tx, confirmedEvent(row, mined.tx_hash, r, confirmations, chainStatus, mined.kind));
    }
  });
  if (final)
    sc.deps.log.info(
      { tx_id: row.id, chain: row.chain, tx_hash: mined.tx_hash, chain_status: chainStatus, attempts: attempts.length },
      "transaction final on chain",
    );
}

/** The nonce was mined by a transaction that is none of this row's attempts: this row can never be mined. */
async function recordNonceTaken(sc: StepContext, row: TxRow): Promise<void> {
  const message = `Nonce ${row.nonce} was used on chain by another transaction`;
  await withLease(sc.deps.pool, row.id, sc.owner, async (tx) => {
    await tx.query("UPDATE transactions SET chain_status = 'dropped', error_message = $2, updated_at = now() WHERE id = $1", [
      row.id,
      message,
    ]);
    await tx.query(
      "UPDATE transaction_attempts SET status = 'dropped', updated_at = now() WHERE tx_id = $1 AND status IN ('signed', 'sent', 'mined')",
      [row.id],
    );
    await auditDropped(tx, row, row.tx_hash, message);
  });
  sc.deps.log.warn({ tx_id: row.id, chain: row.chain, nonce: row.nonce }, message);
}
