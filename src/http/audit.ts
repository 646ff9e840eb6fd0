// Operator access to the audit log: filtered, cursor-paginated events, and chain verification.
import { z } from "zod";
import { verifyAuditChain } from "../audit-chain.js";
import type { Pool } from "../db/pool.js";
import { badRequest } from "../errors.js";
import type { App } from "./types.js";

const Query = z.object({
  action: z.string().max(100).optional(),
  actor_id: z.string().max(100).optional(),
  resource_id: z.string().max(100).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(40).optional(),
});

interface EventRow {
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

function toEvent(r: EventRow) {
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
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (sql: string, v: unknown) => {
        params.push(v);
        where.push(sql.replace("?", `$${params.length}`));
      };
      if (q.action) add("action = ?", q.action);
      if (q.actor_id) add("actor_id = ?", q.actor_id);
      if (q.resource_id) add("resource_id = ?", q.resource_id);
      if (q.from) add("created_at >= ?", new Date(q.from));
      if (q.to) add("created_at < ?", new Date(q.to));
      if (q.cursor) {
        if (!/^\d{1,19}$/.test(q.cursor)) throw badRequest("Invalid cursor.", [{ field: "cursor", message: "is not a cursor returned by this API" }]);
        add("seq < ?", q.cursor);
      }
      params.push(q.limit);
      const { rows } = await deps.pool.query<EventRow>(
        `SELECT e.*, i.org_id FROM audit_events e CROSS JOIN installation i ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq DESC LIMIT $${params.length}`,
        params,
      );
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
