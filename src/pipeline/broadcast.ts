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
import { classifyBroadcastError, type BroadcastOutcome } from "./rpc-errors.js";

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
export async function sendSigned(deps: Pick<BroadcastDeps, "clients" | "metrics">, chain: Chain, signedTx: string, hash: string): Promise<BroadcastOutcome> {
  const client = deps.clients.get(chain);
  let outcome: BroadcastOutcome;
  try {
    await client.request({ method: "eth_sendRawTransaction", params: [signedTx as Hex] });
    outcome = { kind: "accepted" };
  } catch (err) {
    outcome = classifyBroadcastError(err);
    if (outcome.kind === "nonce_used") {
      const receipt = await client.request({ method: "eth_getTransactionReceipt", params: [hash as Hex] }).then((r) => (r ? "mined" : "absent"), () => "unknown");
      if (receipt === "mined") outcome = { kind: "already_known" };
      else if (receipt === "unknown") outcome = { kind: "unknown", message: `${outcome.message}; whether it was mined could not be checked` };
    }
  }
  deps.metrics?.broadcastResults.inc({ chain: chain.name, outcome: outcome.kind });
  return outcome;
}

/** Records the node's answer to the first send of a row (status, counters, attempt, audit, nonce). */
export async function recordBroadcastOutcome(deps: BroadcastDeps, row: TxRow, outcome: BroadcastOutcome, meta: BroadcastMeta = {}): Promise<TxRow> {
  const actor = meta.principal ?? meta.actor ?? { type: "system" as const, id: "broadcaster" };
  switch (outcome.kind) {
    case "accepted":
    case "already_known":
      // The same statement records a whole commit group's accepted sends (markBroadcastGroup).
      return (await markBroadcastGroup(deps.pool, [row.id], [row.tx_hash!], auditRecordset([broadcastEvent(row, actor, meta.requestId)])))[0];
    case "rejected":
    case "nonce_used":
      return withTransaction(deps.pool, async (tx) => {
        const updated = await markFailed(tx, row.id, `Rejected by the node: ${outcome.message}`, meta.beforeAnswer === true);
        await markAttemptFailed(tx, row.tx_hash!, outcome.message);
        // The node refused this signature, so the nonce is still free on chain, unless the refusal
        // says another transaction already holds it.
        if (outcome.kind === "rejected" && row.nonce !== null) await releaseNonce(tx, Number(row.chain_id), row.from_address, BigInt(row.nonce));
        await appendAudit(tx, { action: "transaction.failed", actor, resourceType: "transaction", resourceId: row.id, details: { chain: row.chain, tx_hash: row.tx_hash, nonce: Number(row.nonce), reason: outcome.message }, requestId: meta.requestId });
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
  return { action: "transaction.broadcast", actor, resourceType: "transaction", resourceId: row.id, details: { chain: row.chain, tx_hash: row.tx_hash, nonce: Number(row.nonce) }, requestId };
}

/** Sends a stored signed transaction and records the node's answer. */
export async function broadcastSigned(deps: BroadcastDeps, chain: Chain, row: TxRow, meta: BroadcastMeta = {}): Promise<TxRow> {
  const outcome = await sendSigned(deps, chain, row.signed_tx!, row.tx_hash!);
  return recordBroadcastOutcome(deps, row, outcome, meta);
}
