// Step 2 of following a transaction: make sure a node has it. Takes a claimed, unmined row and its
// attempts. The current attempt (the newest a node may still take) is sent again, byte for byte, when
//   - no node ever acknowledged it (`signed`: a crash between COMMIT and the send, an RPC timeout), or
//   - the node no longer knows its hash and it is not mined (dropped from the mempool, reorged out),
// at most once per `resendAfterMs`. Never signs anything: a resend is the stored signature. A node
// that takes it as new had lost it (audited `transaction.dropped`, not final); one that already knows
// it only answered a lagging lookup (counted, not audited).
// The node's answer decides what happens next:
//   accepted / already known → the attempt is `sent` (and the row `broadcast`);
//   fee below the base fee or the pool's minimum, or (except on a row's first send) "replacement
//   underpriced" → the caller replaces it with higher fees (the rule: needsHigherFees in broadcast.ts);
//   nonce too low → nothing now: the next pass's receipts tell ours-mined from someone-else's;
//   any other rejection → the row is `dropped` and its nonce released for reuse (for a row never
//   acknowledged, the submit pipeline's own record: `failed`, nonce released);
//   unknown (timeout, unreachable) → counted; tried again later.
// Writes: attempt and row status, counters, audit (broadcast, dropped); fenced by the row's lease.
import type { Hex } from "viem";
import { auditDropped, auditTransaction } from "./audit.js";
import type { TxRow } from "../db/transactions.js";
import { needsHigherFees, recordBroadcastOutcome, sendSigned } from "../pipeline/broadcast.js";
import { releaseNonce } from "../pipeline/nonce.js";
import type { Principal } from "../auth/principal.js";
import { currentAttempt, markAttemptFailed, markAttemptSent, markAttemptTried, type AttemptRow } from "../db/attempts.js";
import { withLease } from "../db/leases.js";
import { TRACKER_ACTOR, type StepContext } from "./types.js";

export type ResendResult = "in_mempool" | "waiting" | "sent" | "underpriced" | "nonce_used" | "unknown" | "dropped" | "failed" | "none";

export async function rebroadcast(sc: StepContext, row: TxRow, attempts: AttemptRow[]): Promise<ResendResult> {
  const current = currentAttempt(attempts);
  if (!current) return "none";
  const since = current.last_sent_at ? Date.now() - current.last_sent_at.getTime() : Infinity;
  if (current.status === "sent") {
    const known = await sc.client.request({ method: "eth_getTransactionByHash", params: [current.tx_hash as Hex] });
    if (known) return "in_mempool";
    if (since < sc.opts.resendAfterMs) return "waiting";
    return sendAttempt(sc, row, current, { rebroadcast: true, missing: true });
  }
  if (since < sc.opts.resendAfterMs) return "waiting";
  return sendAttempt(sc, row, current, { rebroadcast: true });
}

/** Sends one stored attempt and records the answer (see the header). */
export async function sendAttempt(
  sc: StepContext,
  row: TxRow,
  attempt: AttemptRow,
  meta: { rebroadcast: boolean; missing?: boolean; requestId?: string; actor?: Principal | typeof TRACKER_ACTOR },
): Promise<ResendResult> {
  const outcome = await sendSigned(sc.deps, sc.chain, attempt.signed_tx, attempt.tx_hash);
  const actor = meta.actor ?? TRACKER_ACTOR;
  const firstSend = row.status === "signed" && attempt.kind === "original" && attempt.tx_hash === row.tx_hash;
  if ((outcome.kind === "rejected" || outcome.kind === "nonce_used") && needsHigherFees(outcome, firstSend)) {
    // A fresh replacement refused as too cheap is spent (the next bump starts above it); a resent
    // signature that became too cheap stays current until its replacement is taken.
    if (!meta.rebroadcast && attempt.kind !== "original") await markAttemptFailed(sc.deps.pool, attempt.tx_hash, outcome.message);
    else await markAttemptTried(sc.deps.pool, attempt.tx_hash, outcome.message);
    return "underpriced";
  }
  // The first send of a row no node has acknowledged: recorded exactly as the submit pipeline does.
  if (firstSend) {
    await recordBroadcastOutcome(sc.deps, row, outcome, { actor: TRACKER_ACTOR, requestId: meta.requestId });
    if (outcome.kind === "accepted" || outcome.kind === "already_known") return "sent";
    return outcome.kind === "unknown" ? "unknown" : "failed";
  }
  switch (outcome.kind) {
    case "accepted":
    case "already_known": {
      // Audited only when something happened: a first acknowledgement, or a node that had lost the
      // transaction took it again (a node that "already knows" it only answered a lagging lookup).
      const lost = meta.missing === true && outcome.kind === "accepted";
      if (lost) {
        await auditTransaction(sc.deps.pool, "transaction.dropped", row.id, {
          chain: row.chain,
          tx_hash: attempt.tx_hash,
          nonce: Number(row.nonce),
          reason: "missing from the node's mempool and not mined; the stored signature was sent again",
          final: false,
        });
        sc.deps.log.info(
          { tx_id: row.id, chain: row.chain, tx_hash: attempt.tx_hash },
          "transaction was missing from the mempool; sent again",
        );
      }
      await promoteAttempt(sc, row, attempt, {
        rebroadcast: meta.rebroadcast,
        actor,
        requestId: meta.requestId,
        audit: lost || attempt.status !== "sent",
      });
      return "sent";
    }
    case "nonce_used":
      // The nonce is mined: by one of our attempts (the receipts step will say) or by someone else.
      if (!meta.rebroadcast && attempt.kind !== "original") await markAttemptFailed(sc.deps.pool, attempt.tx_hash, outcome.message);
      else await markAttemptTried(sc.deps.pool, attempt.tx_hash, outcome.message);
      return "nonce_used";
    case "unknown":
      await markAttemptTried(sc.deps.pool, attempt.tx_hash, outcome.message);
      return "unknown";
    case "rejected":
      if (attempt.kind !== "original" && !meta.rebroadcast) {
        // A fresh replacement refused: the earlier attempt still stands.
        await markAttemptFailed(sc.deps.pool, attempt.tx_hash, outcome.message);
        return "failed";
      }
      await dropTransaction(sc, row, attempt, outcome.message);
      return "dropped";
  }
}

/**
 * A node took `attempt`: it becomes the current one. Older live attempts are `replaced` by it and,
 * unless it is a cancel, the row shows its hash, signature and fees (the transaction keeps its id).
 */
export async function promoteAttempt(
  sc: StepContext,
  row: TxRow,
  attempt: AttemptRow,
  meta: { rebroadcast: boolean; actor: Principal | typeof TRACKER_ACTOR; requestId?: string; audit: boolean },
): Promise<void> {
  const adopt = attempt.kind !== "cancel";
  await withLease(sc.deps.pool, row.id, sc.owner, async (tx) => {
    await markAttemptSent(tx, attempt.tx_hash);
    await tx.query(
      `UPDATE transaction_attempts SET status = 'replaced', replaced_by = $3, updated_at = now()
        WHERE tx_id = $1 AND id < $2 AND status IN ('signed', 'sent')`,
      [row.id, attempt.id, attempt.tx_hash],
    );
    await tx.query(
      `UPDATE transactions
          SET status = 'broadcast', chain_status = coalesce(chain_status, 'unconfirmed'),
              broadcast_attempts = broadcast_attempts + 1, last_broadcast_at = now(), error_message = NULL,
              tx_hash = CASE WHEN $2 THEN $3 ELSE tx_hash END,
              signed_tx = CASE WHEN $2 THEN $4 ELSE signed_tx END,
              gas_limit = CASE WHEN $2 THEN $5::bigint ELSE gas_limit END,
              gas_price = CASE WHEN $2 THEN $6::numeric ELSE gas_price END,
              max_fee_per_gas = CASE WHEN $2 THEN $7::numeric ELSE max_fee_per_gas END,
              max_priority_fee_per_gas = CASE WHEN $2 THEN $8::numeric ELSE max_priority_fee_per_gas END,
              updated_at = now()
        WHERE id = $1`,
      [
        row.id,
        adopt,
        attempt.tx_hash,
        attempt.signed_tx,
        attempt.gas_limit,
        attempt.gas_price,
        attempt.max_fee_per_gas,
        attempt.max_priority_fee_per_gas,
      ],
    );
    if (meta.audit) {
      await auditTransaction(
        tx,
        "transaction.broadcast",
        row.id,
        {
          chain: row.chain,
          tx_hash: attempt.tx_hash,
          nonce: Number(row.nonce),
          attempt_kind: attempt.kind,
          rebroadcast: meta.rebroadcast,
        },
        { actor: meta.actor, requestId: meta.requestId },
      );
    }
  });
}

/** The network refuses the transaction for good: `dropped`, its nonce released for the next submission or the gap filler. */
async function dropTransaction(sc: StepContext, row: TxRow, attempt: AttemptRow, message: string): Promise<void> {
  await withLease(sc.deps.pool, row.id, sc.owner, async (tx) => {
    await tx.query("UPDATE transactions SET chain_status = 'dropped', error_message = $2, updated_at = now() WHERE id = $1", [
      row.id,
      `Dropped: the node refused it: ${message}`,
    ]);
    await markAttemptFailed(tx, attempt.tx_hash, message);
    await tx.query(
      "UPDATE transaction_attempts SET status = 'dropped', updated_at = now() WHERE tx_id = $1 AND status IN ('signed', 'sent')",
      [row.id],
    );
    await releaseNonce(tx, Number(row.chain_id), row.from_address, BigInt(row.nonce!));
    await auditDropped(tx, row, attempt.tx_hash, message);
  });
  sc.deps.log.warn({ tx_id: row.id, chain: row.chain, reason: message }, "transaction dropped: the node refuses it");
}
