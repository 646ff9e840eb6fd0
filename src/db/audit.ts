// Audit events: appended by writers, listed for operators. Writers only INSERT, inside the
// transaction whose effect they record, so an event exists exactly when its effect does. Never put a
// secret in `details`. Sealing into the hash chain: src/audit-chain.ts.
import { randomUUID } from "node:crypto";
import type { Queryable } from "./pool.js";
import type { Principal } from "../auth/principal.js";

export type AuditAction =
  | "transaction.submit"
  | "transaction.sign"
  | "transaction.simulate"
  | "transaction.denied"
  | "transaction.broadcast"
  | "transaction.failed"
  | "transaction.confirmed"
  | "transaction.replaced"
  | "transaction.dropped"
  | "transaction.reorged"
  | "nonce.gap_alert"
  | "signature.create"
  | "signature.denied"
  | "agent.create"
  | "agent.update"
  | "agent.delete"
  | "agent.rotate_key"
  | "agent.token_issued"
  | "agent.token_revoked"
  | "operator.token_issued"
  | "operator.token_revoked"
  | "signing_key.create"
  | "signing_key.update"
  | "signing_key.grant"
  | "signing_key.revoke"
  | "chain.create"
  | "chain.update"
  | "chain.delete"
  | "webhook.create"
  | "webhook.delete"
  // Day-to-day running: operator keys, chains that went back.
  | "operator_key.created"
  | "operator_key.revoked"
  | "chain.reset_detected"
  | "transaction.chain_reset"
  // Human approvals (src/approvals).
  | "agent.approval_rules"
  | "approval.requested"
  | "approval.vote"
  | "approval.decided"
  | "approval.executed"
  | "approval.expired"
  | "approval.cancelled";

export interface AuditEvent {
  action: AuditAction;
  actor?: Principal | { type: "system"; id: string };
  resourceType?: string;
  resourceId?: string;
  details?: Record<string, unknown>;
  requestId?: string;
  ip?: string;
}

/** An event's details, plus the MCP transport and tool when the actor acted through one. */
function detailsOf(e: AuditEvent): Record<string, unknown> {
  const channel = e.actor && "channel" in e.actor ? e.actor.channel : undefined;
  return channel ? { ...e.details, via: channel } : (e.details ?? {});
}

export async function appendAudit(db: Queryable, e: AuditEvent): Promise<string> {
  const id = randomUUID();
  await db.query(
    `INSERT INTO audit_events (id, action, actor_type, actor_id, resource_type, resource_id, details, request_id, ip_address)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      id,
      e.action,
      e.actor?.type ?? "system",
      e.actor?.id ?? null,
      e.resourceType ?? null,
      e.resourceId ?? null,
      JSON.stringify(detailsOf(e)),
      e.requestId ?? null,
      e.ip ?? null,
    ],
  );
  return id;
}

/**
 * Several events written by the statement that records their effects (a group of submissions, a batch
 * of broadcasts): `auditInsertSql("$n")` is an INSERT … SELECT over the jsonb parameter $n, which takes
 * `auditRecordset(events)`. Same columns and values as appendAudit.
 */
export function auditInsertSql(param: string, where = ""): string {
  return `INSERT INTO audit_events (id, action, actor_type, actor_id, resource_type, resource_id, details, request_id, ip_address)
          SELECT a.id, a.action, a.actor_type, a.actor_id, a.resource_type, a.resource_id, coalesce(a.details, '{}'), a.request_id, a.ip_address
            FROM jsonb_to_recordset(${param}::jsonb) AS a(id uuid, action text, actor_type text, actor_id text, resource_type text,
                                                       resource_id text, details jsonb, request_id text, ip_address text)
           ${where}`;
}

export function auditRecordset(events: AuditEvent[]): string {
  return JSON.stringify(
    events.map((e) => ({
      id: randomUUID(),
      action: e.action,
      actor_type: e.actor?.type ?? "system",
      actor_id: e.actor?.id ?? null,
      resource_type: e.resourceType ?? null,
      resource_id: e.resourceId ?? null,
      details: detailsOf(e),
      request_id: e.requestId ?? null,
      ip_address: e.ip ?? null,
    })),
  );
}

/** A stored event as the operators' API lists it, with the installation's organization. */
export interface AuditEventRow {
  seq: string;
  id: string;
  action: string;
  actor_type: string;
  actor_id: string | null;
  resource_type: string | null;
  resource_id: string | null;
  details: Record<string, unknown>;
  request_id: string | null;
  ip_address: string | null;
  created_at: Date;
  chain_seq: string | null;
  prev_hash: string | null;
  hash: string | null;
  org_id: string;
}

export interface AuditFilter {
  action?: string;
  actorId?: string;
  resourceId?: string;
  from?: Date;
  to?: Date;
  /** Events before this `seq` (the previous page's last), as a decimal string. */
  beforeSeq?: string;
  limit: number;
}

/** Newest first, by `seq`; reads only (no lock). */
export async function listAuditEvents(db: Queryable, f: AuditFilter): Promise<AuditEventRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace("?", `$${params.length}`));
  };
  if (f.action) add("action = ?", f.action);
  if (f.actorId) add("actor_id = ?", f.actorId);
  if (f.resourceId) add("resource_id = ?", f.resourceId);
  if (f.from) add("created_at >= ?", f.from);
  if (f.to) add("created_at < ?", f.to);
  if (f.beforeSeq) add("seq < ?", f.beforeSeq);
  params.push(f.limit);
  const { rows } = await db.query<AuditEventRow>(
    `SELECT e.*, i.org_id FROM audit_events e CROSS JOIN installation i ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq DESC LIMIT $${params.length}`,
    params,
  );
  return rows;
}
