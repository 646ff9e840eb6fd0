// Step 1b: a receipt that disappeared. The block that held the transaction left the canonical chain
// (a reorg); nodes do not always return such transactions to their mempool. The row goes back to
// `unconfirmed` with no block, its mined attempt back to `sent`, and the same pass goes on to the
// mempool check, which resends the stored signature if the node no longer has it. (A receipt found in
// another block than the one recorded is handled where receipts are recorded: receipts.ts.)
// Writes: the transactions row, the attempt, a `transaction.reorged` audit event; fenced by the lease.
import type { TxRow } from "../db/transactions.js";
import { withLease } from "../db/leases.js";
import { auditTransaction } from "./audit.js";
import type { StepContext } from "./types.js";

export async function recordReorg(sc: StepContext, row: TxRow, reason: string): Promise<void> {
  await withLease(sc.deps.pool, row.id, sc.owner, async (tx) => {
    await tx.query(
      `UPDATE transactions
          SET chain_status = 'unconfirmed', block_number = NULL, block_hash = NULL, confirmations = 0,
              replaced_by = NULL, updated_at = now()
        WHERE id = $1`,
      [row.id],
    );
    await tx.query("UPDATE transaction_attempts SET status = 'sent', updated_at = now() WHERE tx_id = $1 AND status = 'mined'", [row.id]);
    await auditTransaction(tx, "transaction.reorged", row.id, {
      chain: row.chain,
      chain_id: Number(row.chain_id),
      tx_hash: row.tx_hash,
      nonce: Number(row.nonce),
      reason,
      old_block_number: Number(row.block_number),
      old_block_hash: row.block_hash,
    });
  });
  sc.deps.log.warn({ tx_id: row.id, chain: row.chain, block_number: row.block_number }, "transaction reorged out; following it again");
}
