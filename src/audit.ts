// Appends audit events. Writers only INSERT, inside the transaction whose effect they record, so an
// event exists exactly when its effect does. Never put a secret in `details`.
import { randomUUID } from "node:crypto";
import type { Queryable } from "./db/pool.js";
import type { Principal } from "./auth/principal.js";

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
  | "agent.create"
  | "agent.update"
  | "agent.delete"
  | "agent.rotate_key"
  | "agent.token_issued"
  | "agent.token_revoked"
  | "signing_key.create"
  | "chain.create"
  | "chain.update"
  | "chain.delete"
  | "webhook.create"
  | "webhook.delete";

export interface AuditEvent {
  action: AuditAction;
  actor?: Principal | { type: "system"; id: string };
  resourceType?: string;
  resourceId?: string;
  details?: Record<string, unknown>;
  requestId?: string;
  ip?: string;
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
      JSON.stringify(e.details ?? {}),
      e.requestId ?? null,
      e.ip ?? null,
    ],
  );
  return id;
}
