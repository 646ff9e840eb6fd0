// Webhook endpoints (operators only): register, list, deactivate, inspect deliveries, send a test.
// The signing secret is returned once, by the create call, and by nothing else.
import { randomUUID } from "node:crypto";
import { appendAudit } from "../db/audit.js";
import { requireOperator } from "../auth/principal.js";
import { withTransaction, type Pool } from "../db/pool.js";
import {
  deactivateEndpoint,
  endpointTarget,
  getEndpoint,
  insertEndpoint,
  listDeliveries,
  listEndpoints,
  type DeliveryRow,
  type EndpointRow,
} from "../db/webhooks.js";
import { notFound } from "../errors.js";
import { attemptDelivery, DEFAULT_TIMEOUT_MS } from "../webhooks/deliver.js";
import { generateWebhookSecret } from "../webhooks/events.js";
import { CreateWebhookRequest, DeliveriesQuery, WebhookParams } from "./schemas/webhooks.js";
import type { App } from "./types.js";
import { UUID } from "../uuid.js";

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
    const r = UUID.test(id) ? await getEndpoint(pool, id) : undefined;
    if (!r) throw notFound("Webhook not found.");
    return r;
  };

  app.post(
    "/v1/webhooks",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Webhooks"],
        summary: "Register a webhook endpoint (operators); the secret is shown only here",
        body: CreateWebhookRequest,
      },
    },
    async (req, reply) => {
      const op = requireOperator(req);
      const id = randomUUID();
      const secret = generateWebhookSecret();
      const row = await withTransaction(pool, async (tx) => {
        const row = await insertEndpoint(tx, {
          id,
          url: req.body.url,
          description: req.body.description ?? null,
          secret,
          events: req.body.events,
          createdBy: op.id,
        });
        await appendAudit(tx, {
          action: "webhook.create",
          actor: op,
          resourceType: "webhook",
          resourceId: id,
          details: { url_origin: origin(req.body.url), events: req.body.events },
          requestId: req.id,
          ip: req.ip,
        });
        return row;
      });
      return reply.code(201).send({ ...toWebhook(row), secret });
    },
  );

  app.get(
    "/v1/webhooks",
    { config: { operatorOnly: true }, schema: { tags: ["Webhooks"], summary: "List webhook endpoints (operators; no secrets)" } },
    async (req) => {
      requireOperator(req);
      return { webhooks: (await listEndpoints(pool)).map(toWebhook) };
    },
  );

  app.delete(
    "/v1/webhooks/:id",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Webhooks"], summary: "Deactivate a webhook endpoint (operators)", params: WebhookParams },
    },
    async (req, reply) => {
      const op = requireOperator(req);
      await endpointOrNotFound(req.params.id);
      await withTransaction(pool, async (tx) => {
        // What was still queued will not be sent.
        if (!(await deactivateEndpoint(tx, req.params.id))) throw notFound("Webhook not found.");
        await appendAudit(tx, {
          action: "webhook.delete",
          actor: op,
          resourceType: "webhook",
          resourceId: req.params.id,
          requestId: req.id,
          ip: req.ip,
        });
      });
      return reply.code(204).send();
    },
  );

  app.get(
    "/v1/webhooks/:id/deliveries",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Webhooks"],
        summary: "Recent deliveries of a webhook endpoint (operators)",
        params: WebhookParams,
        querystring: DeliveriesQuery,
      },
    },
    async (req) => {
      requireOperator(req);
      await endpointOrNotFound(req.params.id);
      const rows = await listDeliveries(pool, req.params.id, { status: req.query.status, limit: req.query.limit });
      return { deliveries: rows.map(toDelivery), count: rows.length };
    },
  );

  app.post(
    "/v1/webhooks/:id/test",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Webhooks"],
        summary: "Send a signed `webhook.test` event now, once, and report the answer (operators)",
        params: WebhookParams,
      },
    },
    async (req) => {
      requireOperator(req);
      const ep = await endpointOrNotFound(req.params.id);
      if (!ep.is_active) throw notFound("Webhook not found.");
      const target = await endpointTarget(pool, ep.id);
      if (!target) throw notFound("Webhook not found.");
      const id = randomUUID();
      const payload = { id, type: "webhook.test", created_at: new Date().toISOString(), data: { webhook_id: ep.id } };
      const out = await attemptDelivery(
        { id, payload, url: target.url, secret: target.secret },
        { timeoutMs: DEFAULT_TIMEOUT_MS, fetch: deps.fetch ?? fetch },
      );
      return { id, delivered: out.ok, status_code: out.statusCode, error: out.error };
    },
  );
}
