// Webhook endpoints (operators only): register, list, deactivate, inspect deliveries, send a test.
// The signing secret is returned once, by the create call, and by nothing else.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { appendAudit } from "../audit.js";
import { requireOperator } from "../auth/principal.js";
import { withTransaction, type Pool } from "../db/pool.js";
import { notFound } from "../errors.js";
import { attemptDelivery, DEFAULT_TIMEOUT_MS } from "../webhooks/deliver.js";
import { DEFAULT_WEBHOOK_EVENT_TYPES, generateWebhookSecret, WEBHOOK_EVENT_TYPES } from "../webhooks/events.js";
import type { App } from "./types.js";
import { UUID } from "../uuid.js";

const webhookUrl = z
  .string()
  .max(2048)
  .refine((v) => {
    try {
      const u = new URL(v);
      // fetch refuses URLs with credentials; say so now rather than fail every delivery.
      return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "" && u.username === "" && u.password === "";
    } catch {
      return false;
    }
  }, "must be an http:// or https:// URL without user:password@");

const CreateWebhookRequest = z.strictObject({
  url: webhookUrl,
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).max(WEBHOOK_EVENT_TYPES.length * 4)
    .transform((l) => [...new Set(l)])
    // The transaction events; operator alerts (signing_key.nonce_gap_alert) and signatures are subscribed to by name.
    .default([...DEFAULT_WEBHOOK_EVENT_TYPES]),
  description: z.string().max(2000).optional(),
});

const WebhookParams = z.object({ id: z.string().max(100) });
const DeliveriesQuery = z.object({
  status: z.enum(["pending", "delivered", "failed"]).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

interface EndpointRow {
  id: string;
  url: string;
  description: string | null;
  events: string[];
  is_active: boolean;
  created_at: Date;
  deactivated_at: Date | null;
  org_id: string;
}
// never `secret`; org_id is the installation's (the SDK's WebhookResponse requires it)
const ENDPOINT_COLUMNS = "id, url, description, events, is_active, created_at, deactivated_at, (SELECT org_id FROM installation) AS org_id";

function toWebhook(r: EndpointRow) {
  return {
    id: r.id,
    org_id: r.org_id,
    url: r.url,
    ...(r.description !== null ? { description: r.description } : {}),
    events: r.events,
    is_active: r.is_active,
    created_at: r.created_at.toISOString(),
    // The only change an endpoint sees after creation is its deactivation.
    updated_at: (r.deactivated_at ?? r.created_at).toISOString(),
    ...(r.deactivated_at ? { deactivated_at: r.deactivated_at.toISOString() } : {}),
  };
}

interface DeliveryRow {
  id: string;
  audit_event_id: string;
  event_type: string;
  payload: unknown;
  status: string;
  attempts: number;
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

function toDelivery(r: DeliveryRow) {
  return {
    id: r.id,
    event_type: r.event_type,
    audit_event_id: r.audit_event_id,
    status: r.status,
    attempts: r.attempts,
    next_attempt_at: r.status === "pending" ? r.next_attempt_at.toISOString() : null,
    last_attempt_at: r.last_attempt_at?.toISOString() ?? null,
    last_status_code: r.last_status_code,
    last_error: r.last_error,
    created_at: r.created_at.toISOString(),
    delivered_at: r.delivered_at?.toISOString() ?? null,
    payload: r.payload,
  };
}

/** Only scheme, host and port: a path or query string may carry a receiver's token. */
function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "invalid";
  }
}

export async function webhookRoutes(app: App, deps: { pool: Pool; fetch?: typeof fetch }): Promise<void> {
  const { pool } = deps;
  const endpointOrNotFound = async (id: string): Promise<EndpointRow> => {
    const r = UUID.test(id) ? (await pool.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1`, [id])).rows[0] : undefined;
    if (!r) throw notFound("Webhook not found.");
    return r;
  };

  app.post(
    "/v1/webhooks",
    { config: { operatorOnly: true }, schema: { tags: ["Webhooks"], summary: "Register a webhook endpoint (operators); the secret is shown only here", body: CreateWebhookRequest } },
    async (req, reply) => {
      const op = requireOperator(req);
      const id = randomUUID();
      const secret = generateWebhookSecret();
      const row = await withTransaction(pool, async (tx) => {
        // The cursor starts at the head of the audit chain: only later events are delivered.
        const { rows } = await tx.query<EndpointRow>(
          `INSERT INTO webhook_endpoints (id, url, description, secret, events, created_by, cursor_chain_seq)
           VALUES ($1, $2, $3, $4, $5, $6, (SELECT coalesce(max(chain_seq), 0) FROM audit_events))
           RETURNING ${ENDPOINT_COLUMNS}`,
          [id, req.body.url, req.body.description ?? null, secret, req.body.events, op.id],
        );
        await appendAudit(tx, {
          action: "webhook.create", actor: op, resourceType: "webhook", resourceId: id,
          details: { url_origin: origin(req.body.url), events: req.body.events }, requestId: req.id, ip: req.ip,
        });
        return rows[0];
      });
      return reply.code(201).send({ ...toWebhook(row), secret });
    },
  );

  app.get(
    "/v1/webhooks",
    { config: { operatorOnly: true }, schema: { tags: ["Webhooks"], summary: "List webhook endpoints (operators; no secrets)" } },
    async (req) => {
      requireOperator(req);
      const { rows } = await pool.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at DESC, id`);
      return { webhooks: rows.map(toWebhook) };
    },
  );

  app.delete(
    "/v1/webhooks/:id",
    { config: { operatorOnly: true }, schema: { tags: ["Webhooks"], summary: "Deactivate a webhook endpoint (operators)", params: WebhookParams } },
    async (req, reply) => {
      const op = requireOperator(req);
      await endpointOrNotFound(req.params.id);
      await withTransaction(pool, async (tx) => {
        const r = await tx.query("UPDATE webhook_endpoints SET is_active = false, deactivated_at = now() WHERE id = $1 AND is_active", [req.params.id]);
        if ((r.rowCount ?? 0) === 0) throw notFound("Webhook not found.");
        // What was still queued will not be sent.
        await tx.query(
          "UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deactivated' WHERE endpoint_id = $1 AND status = 'pending'",
          [req.params.id],
        );
        await appendAudit(tx, { action: "webhook.delete", actor: op, resourceType: "webhook", resourceId: req.params.id, requestId: req.id, ip: req.ip });
      });
      return reply.code(204).send();
    },
  );

  app.get(
    "/v1/webhooks/:id/deliveries",
    { config: { operatorOnly: true }, schema: { tags: ["Webhooks"], summary: "Recent deliveries of a webhook endpoint (operators)", params: WebhookParams, querystring: DeliveriesQuery } },
    async (req) => {
      requireOperator(req);
      await endpointOrNotFound(req.params.id);
      const params: unknown[] = [req.params.id, req.query.limit];
      if (req.query.status) params.push(req.query.status);
      const { rows } = await pool.query<DeliveryRow>(
        `SELECT id, audit_event_id, event_type, payload, status, attempts, next_attempt_at, last_attempt_at, last_status_code,
                last_error, created_at, delivered_at
           FROM webhook_deliveries
          WHERE endpoint_id = $1 ${req.query.status ? "AND status = $3" : ""}
          ORDER BY created_at DESC, id LIMIT $2`,
        params,
      );
      return { deliveries: rows.map(toDelivery), count: rows.length };
    },
  );

  app.post(
    "/v1/webhooks/:id/test",
    { config: { operatorOnly: true }, schema: { tags: ["Webhooks"], summary: "Send a signed `webhook.test` event now, once, and report the answer (operators)", params: WebhookParams } },
    async (req) => {
      requireOperator(req);
      const ep = await endpointOrNotFound(req.params.id);
      if (!ep.is_active) throw notFound("Webhook not found.");
      const { rows } = await pool.query<{ url: string; secret: string }>("SELECT url, secret FROM webhook_endpoints WHERE id = $1", [ep.id]);
      const id = randomUUID();
      const payload = { id, type: "webhook.test", created_at: new Date().toISOString(), data: { webhook_id: ep.id } };
      const out = await attemptDelivery({ id, payload, url: rows[0].url, secret: rows[0].secret }, { timeoutMs: DEFAULT_TIMEOUT_MS, fetch: deps.fetch ?? fetch });
      return { id, delivered: out.ok, status_code: out.statusCode, error: out.error };
    },
  );
}
