// The audit events the tracker writes about one transaction. The tracker is the actor, unless an
// operator's speed-up or cancel (replace.ts, rebroadcast.ts) names the operator.
import { appendAudit, type AuditAction, type AuditEvent } from "../db/audit.js";
import type { Queryable } from "../db/pool.js";
import type { TxRow } from "../db/transactions.js";
import { TRACKER_ACTOR } from "./types.js";

export function auditTransaction(
  db: Queryable,
  action: AuditAction,
  txId: string,
  details: Record<string, unknown>,
  by: { actor?: AuditEvent["actor"]; requestId?: string } = {},
): Promise<string> {
  return appendAudit(db, {
    action,
    actor: by.actor ?? TRACKER_ACTOR,
    resourceType: "transaction",
    resourceId: txId,
    ...(by.requestId !== undefined ? { requestId: by.requestId } : {}),
    details,
  });
}

/** `transaction.dropped`, final: the transaction will not be mined (`reason` says why). */
export function auditDropped(db: Queryable, row: TxRow, txHash: string | null, reason: string): Promise<string> {
  return auditTransaction(db, "transaction.dropped", row.id, {
    chain: row.chain,
    tx_hash: txHash,
    nonce: Number(row.nonce),
    reason,
    final: true,
  });
}
