// Operator access to the audit log: filtered, cursor-paginated events, and chain verification.
import { verifyAuditChain } from "../audit-chain.js";
import { listAuditEvents, type AuditEventRow } from "../db/audit.js";
import type { Pool } from "../db/pool.js";
import { badRequest } from "../errors.js";
import type { App } from "./types.js";
import { Query } from "./schemas/audit.js";

function toEvent(r: AuditEventRow) {
  return {
    id: r.id,
    action: r.action,
    actor_type: r.actor_type,
    ...(r.actor_id !== null ? { actor_id: r.actor_id } : {}),
    ...(r.resource_type !== null ? { resource_type: r.resource_type } : {}),
    ...(r.resource_id !== null ? { resource_id: r.resource_id } : {}),
    org_id: r.org_id, // the installation's organization (the SDK's AuditEvent requires it)
    details: r.details,
    ...(r.request_id !== null ? { request_id: r.request_id } : {}),
    ...(r.ip_address !== null ? { ip_address: r.ip_address } : {}),
    created_at: r.created_at.toISOString(),
    ...(r.chain_seq !== null ? { chain_seq: Number(r.chain_seq), prev_hash: r.prev_hash, hash: r.hash } : {}),
  };
}

export async function auditRoutes(app: App, deps: { pool: Pool }): Promise<void> {
  app.get(
    "/v1/audit/events",
    { config: { operatorOnly: true }, schema: { tags: ["Audit"], summary: "Audit events, newest first", querystring: Query } },
    async (req) => {
      const q = req.query;
      if (q.cursor && !/^\d{1,19}$/.test(q.cursor)) {
        throw badRequest("Invalid cursor.", [{ field: "cursor", message: "is not a cursor returned by this API" }]);
      }
      const rows = await listAuditEvents(deps.pool, {
        action: q.action,
        actorId: q.actor_id,
        resourceId: q.resource_id,
        from: q.from ? new Date(q.from) : undefined,
        to: q.to ? new Date(q.to) : undefined,
        beforeSeq: q.cursor,
        limit: q.limit,
      });
      return {
        events: rows.map(toEvent),
        count: rows.length,
        next_cursor: rows.length === q.limit ? rows[rows.length - 1].seq : null,
      };
    },
  );

  app.get(
    "/v1/audit/verify",
    { config: { operatorOnly: true }, schema: { tags: ["Audit"], summary: "Verify the audit hash chain" } },
    async () => verifyAuditChain(deps.pool),
  );
}
