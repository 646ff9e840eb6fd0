// The lifecycle of one claimed transaction in one pass, in order; each step is its own module:
//   1. receipts.ts   mined? count confirmations, final at the chain's `confirmations`; a vanished
//                    receipt is a reorg (reorg.ts); a nonce taken by someone else drops the row.
//   2. rebroadcast.ts  not mined: does a node have it? If not (or never acknowledged), resend it.
//   3. replace.ts    refused as too cheap, or next in line and unmined for STUCK_AFTER_SECONDS:
//                    replace it with higher fees, signed again in the HSM.
// Gap repair (gaps.ts) works per address, after the rows of a pass.
import { getTransaction, type TxRow } from "../db/transactions.js";
import { ServiceError } from "../errors.js";
import { currentAttempt, ensureAttempts, listAttempts, type AttemptRow } from "../db/attempts.js";
import { withLease } from "../db/leases.js";
import { checkReceipts } from "./receipts.js";
import { rebroadcast } from "./rebroadcast.js";
import { replaceTransaction } from "./replace.js";
import { TRACKER_ACTOR, type ChainView, type StepContext } from "./types.js";

export async function followTransaction(sc: StepContext, row: TxRow, view: ChainView, suspects: Map<string, number>): Promise<void> {
  let attempts = await ensureAttempts(sc.deps.pool, row);
  const check = await checkReceipts(sc, row, attempts, view, suspects);
  if (check.kind === "mined" || check.kind === "nonce_taken" || check.kind === "suspect") return;
  if (check.kind === "reorged") {
    row = (await getTransaction(sc.deps.pool, row.id))!;
    attempts = await listAttempts(sc.deps.pool, row.id);
  }

  const sent = await rebroadcast(sc, row, attempts);
  if (sent === "underpriced") {
    await bump(sc, row, "the node refuses it as underpriced");
  } else if (sent === "in_mempool" && isStuck(sc, row, attempts, check.latestCount)) {
    await bump(sc, row, `not mined within ${sc.opts.stuckAfterMs / 1000} s of its last signature`);
  }
}

/** Sent, next in line for its address (the chain has mined every nonce below), and unmined for too long. */
function isStuck(sc: StepContext, row: TxRow, attempts: AttemptRow[], latestCount: bigint): boolean {
  const current = currentAttempt(attempts);
  return (
    row.status === "broadcast" &&
    current?.status === "sent" &&
    BigInt(row.nonce!) === latestCount &&
    Date.now() - current.created_at.getTime() >= sc.opts.stuckAfterMs
  );
}

async function bump(sc: StepContext, row: TxRow, reason: string): Promise<void> {
  try {
    const r = await replaceTransaction(sc, row, "bump", { actor: TRACKER_ACTOR, reason });
    sc.deps.log.info({ tx_id: row.id, chain: row.chain, tx_hash: r.attempt.tx_hash, result: r.result }, "fee bump sent");
  } catch (err) {
    if (!(err instanceof ServiceError) || (err.code !== "fee_cap_reached" && err.code !== "fee_limit_reached")) throw err;
    // Nothing more can be done within the configured cap or the agent's fee limits: say so on the row, once.
    const note = `Stuck: ${err.detail}`;
    if (row.error_message !== note) {
      await withLease(sc.deps.pool, row.id, sc.owner, (tx) =>
        tx.query("UPDATE transactions SET error_message = $2, updated_at = now() WHERE id = $1", [row.id, note]),
      );
    }
    sc.deps.log.warn({ tx_id: row.id, chain: row.chain }, note);
  }
}
