// Broadcast of a committed, signed transaction and the record of the node's answer. Used by the submit
// pipeline right after COMMIT and by the tracker for rows whose first send has no known outcome.
// Takes: the pool, the chain clients, the chain and the stored row. Returns the updated row.
// Writes: the row's status and broadcast counters, its first attempt's status, an audit event, and on
// a rejection the released nonce. Never resends blindly: "already known" counts as sent, a used nonce
// or a rejection is final for this signature, and an unknown outcome (timeout, unreachable node)
// leaves the row `signed` for the tracker.
import type { Logger } from "pino";
import type { Hex } from "viem";
import { appendAudit, auditRecordset, type AuditEvent } from "../db/audit.js";
import type { Principal } from "../auth/principal.js";
import type { ChainClients } from "../chains/clients.js";
import type { Chain } from "../chains/registry.js";
import { withTransaction, type Pool } from "../db/pool.js";
import { markBroadcastAttempt, markBroadcastGroup, markFailed, type TxRow } from "../db/transactions.js";
import type { Metrics } from "../metrics.js";
import { markAttemptFailed, markAttemptTried } from "../db/attempts.js";
import { releaseNonce } from "./nonce.js";
import { classifyNodeError, type NodeVerdict } from "../chains/node-errors.js";

export type BroadcastOutcome =
  | { kind: "accepted" }
  | { kind: "already_known" }
  /** Another transaction holds the nonce: mined (`nonce_too_low`) or in the pool (`nonce_occupied`). */
  | { kind: "nonce_used"; verdict: NodeVerdict; message: string }
  | { kind: "rejected"; verdict: NodeVerdict; message: string }
  | { kind: "unknown"; message: string };

/**
 * What a send's failure means, from the node classifier's verdict (src/chains/node-errors.ts). Every
 * send goes through here: the submit pipeline's first send and the tracker's resends and replacements,
 * so "replacement transaction underpriced" (`nonce_occupied`) is the same outcome for both. What each
 * sender then does with it is decided in one place too: `needsHigherFees` below.
 */
export function broadcastOutcomeOf(err: unknown): BroadcastOutcome {
  const answer = classifyNodeError(err);
  if (answer.kind === "no_answer") return { kind: "unknown", message: answer.message };
  const { verdict, message } = answer;
  switch (verdict) {
    case "already_known":
      return { kind: "already_known" };
    case "nonce_too_low":
    case "nonce_occupied":
      return { kind: "nonce_used", verdict, message };
    case "not_judged":
      // Never a rejection: that would fail the row and release a nonce the node may still hold.
      return { kind: "unknown", message };
    default:
      return { kind: "rejected", verdict, message };
  }
}

/**
 * The one rule for "pay more", by sender. A fee below the pool's minimum (`fee_too_low`) asks for a
 * replacement with higher fees whoever sent it. `nonce_occupied` (the pool holds another transaction
 * at this nonce with fees at least as high) asks for a higher bump only when we are the ones replacing:
 * a fee bump or a resend of an attempt a node already took. On the first send of a row (the submit
 * pipeline's, or the tracker's for a row no node acknowledged) it means the nonce is taken by another
 * transaction: the row fails and its nonce stays reserved, the same answer from either sender.
 */
export function needsHigherFees(outcome: BroadcastOutcome, firstSend: boolean): boolean {
  if (outcome.kind !== "rejected" && outcome.kind !== "nonce_used") return false;
  return outcome.verdict === "fee_too_low" || (outcome.verdict === "nonce_occupied" && !firstSend);
}

export interface BroadcastDeps {
  pool: Pool;
  clients: ChainClients;
  log: Logger;
  metrics?: Metrics;
}

export interface BroadcastMeta {
  requestId?: string;
  principal?: Principal;
  actor?: { type: "system"; id: string };
  /** The submit pipeline, before it answers: a refused signature was never handed out (see markFailed). */
  beforeAnswer?: boolean;
}

/**
 * Sends signed bytes once through the chain's failover transport and classifies the answer. A "nonce
 * too low" for bytes that are themselves mined (an earlier send whose answer was lost) counts as
 * already known; when that cannot be checked, the outcome is unknown rather than a failure.
 */
export async function sendSigned(
  deps: Pick<BroadcastDeps, "clients" | "metrics">,
  chain: Chain,
  signedTx: string,
  hash: string,
): Promise<BroadcastOutcome> {
  const client = deps.clients.get(chain);
  let outcome: BroadcastOutcome;
  try {
    await client.request({ method: "eth_sendRawTransaction", params: [signedTx as Hex] });
    outcome = { kind: "accepted" };
  } catch (err) {
    outcome = broadcastOutcomeOf(err);
    if (outcome.kind === "nonce_used") {
      const receipt = await client.request({ method: "eth_getTransactionReceipt", params: [hash as Hex] }).then(
        (r) => (r ? "mined" : "absent"),
        () => "unknown",
      );
      if (receipt === "mined") outcome = { kind: "already_known" };
      else if (receipt === "unknown")
        outcome = { kind: "unknown", message: `${outcome.message}; whether it was mined could not be checked` };
    }
  }
  deps.metrics?.broadcastResults.inc({ chain: chain.name, outcome: outcome.kind });
  return outcome;
}

/** Records the node's answer to the first send of a row (status, counters, attempt, audit, nonce). */
export async function recordBroadcastOutcome(
  deps: BroadcastDeps,
  row: TxRow,
  outcome: BroadcastOutcome,
  meta: BroadcastMeta = {},
): Promise<TxRow> {
  const actor = meta.principal ?? meta.actor ?? { type: "system" as const, id: "broadcaster" };
  switch (outcome.kind) {
    case "accepted":
    case "already_known":
      // The same statement records a whole commit group's accepted sends (markBroadcastGroup).
      return (
        await markBroadcastGroup(deps.pool, [row.id], [row.tx_hash!], auditRecordset([broadcastEvent(row, actor, meta.requestId)]))
      )[0];
    case "rejected":
    case "nonce_used":
      return withTransaction(deps.pool, async (tx) => {
        const updated = await markFailed(tx, row.id, `Rejected by the node: ${outcome.message}`, meta.beforeAnswer === true);
        await markAttemptFailed(tx, row.tx_hash!, outcome.message);
        // The node refused this signature, so the nonce is still free on chain, unless the refusal
        // says another transaction already holds it.
        if (outcome.kind === "rejected" && row.nonce !== null)
          await releaseNonce(tx, Number(row.chain_id), row.from_address, BigInt(row.nonce));
        await appendAudit(tx, {
          action: "transaction.failed",
          actor,
          resourceType: "transaction",
          resourceId: row.id,
          details: { chain: row.chain, tx_hash: row.tx_hash, nonce: Number(row.nonce), reason: outcome.message },
          requestId: meta.requestId,
        });
        return updated;
      });
    case "unknown":
      deps.log.warn({ tx_id: row.id, chain: row.chain, reason: outcome.message }, "broadcast outcome unknown; will retry");
      await markAttemptTried(deps.pool, row.tx_hash!, outcome.message);
      return markBroadcastAttempt(deps.pool, row.id, `Broadcast pending: ${outcome.message}`);
  }
}

/** The audit event of an accepted first send. */
export function broadcastEvent(row: TxRow, actor: NonNullable<AuditEvent["actor"]>, requestId?: string): AuditEvent {
  return {
    action: "transaction.broadcast",
    actor,
    resourceType: "transaction",
    resourceId: row.id,
    details: { chain: row.chain, tx_hash: row.tx_hash, nonce: Number(row.nonce) },
    requestId,
  };
}

/** Sends a stored signed transaction and records the node's answer. */
export async function broadcastSigned(deps: BroadcastDeps, chain: Chain, row: TxRow, meta: BroadcastMeta = {}): Promise<TxRow> {
  const outcome = await sendSigned(deps, chain, row.signed_tx!, row.tx_hash!);
  return recordBroadcastOutcome(deps, row, outcome, meta);
}
