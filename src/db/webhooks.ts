// Webhook endpoints and their delivery outbox: the statements of the operators' routes
// (src/http/webhooks.ts) and of the delivery worker (src/webhooks/deliver.ts). The fan-out from the
// audit chain (src/webhooks/fanout.ts) keeps its one-transaction story beside its SQL.
import type { PoolClient, Queryable } from "./pool.js";

export interface EndpointRow {
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

export interface DeliveryRow {
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

/** A new endpoint whose cursor starts at the head of the audit chain: only later events are delivered. */
export async function insertEndpoint(
  tx: PoolClient,
  e: { id: string; url: string; description: string | null; secret: string; events: string[]; createdBy: string },
): Promise<EndpointRow> {
  const { rows } = await tx.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (id, url, description, secret, events, created_by, cursor_chain_seq)
     VALUES ($1, $2, $3, $4, $5, $6, (SELECT coalesce(max(chain_seq), 0) FROM audit_events))
     RETURNING ${ENDPOINT_COLUMNS}`,
    [e.id, e.url, e.description, e.secret, e.events, e.createdBy],
  );
  return rows[0]!;
}

/** `id` must be a uuid (the caller checks: a malformed one is "not found", not a cast error). */
export async function getEndpoint(db: Queryable, id: string): Promise<EndpointRow | undefined> {
  return (await db.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1`, [id])).rows[0];
}

export async function listEndpoints(db: Queryable): Promise<EndpointRow[]> {
  return (await db.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at DESC, id`)).rows;
}

/** Where and with what secret to sign a delivery: read only when one is sent, never listed. */
export async function endpointTarget(db: Queryable, id: string): Promise<{ url: string; secret: string } | undefined> {
  return (await db.query<{ url: string; secret: string }>("SELECT url, secret FROM webhook_endpoints WHERE id = $1", [id])).rows[0];
}

/** Deactivates an active endpoint and fails what was still queued for it. False: none was active. */
export async function deactivateEndpoint(tx: PoolClient, id: string): Promise<boolean> {
  const r = await tx.query("UPDATE webhook_endpoints SET is_active = false, deactivated_at = now() WHERE id = $1 AND is_active", [id]);
  if ((r.rowCount ?? 0) === 0) return false;
  await tx.query(
    "UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deactivated' WHERE endpoint_id = $1 AND status = 'pending'",
    [id],
  );
  return true;
}

export async function listDeliveries(db: Queryable, endpointId: string, opts: { status?: string; limit: number }): Promise<DeliveryRow[]> {
  const params: unknown[] = [endpointId, opts.limit];
  if (opts.status) params.push(opts.status);
  const { rows } = await db.query<DeliveryRow>(
    `SELECT id, audit_event_id, event_type, payload, status, attempts, next_attempt_at, last_attempt_at, last_status_code,
            last_error, created_at, delivered_at
       FROM webhook_deliveries
      WHERE endpoint_id = $1 ${opts.status ? "AND status = $3" : ""}
      ORDER BY created_at DESC, id LIMIT $2`,
    params,
  );
  return rows;
}

export interface ClaimedDelivery {
  id: string;
  endpoint_id: string;
  event_type: string;
  payload: Record<string, unknown>;
  attempts: number;
  url: string;
  secret: string;
}

/**
 * Claims up to `batch` due deliveries of active endpoints, leasing each for `leaseMs`: at most
 * `perEndpoint` per endpoint, less what this process already has in flight to it (`busy`), so one
 * endpoint's backlog cannot take every slot. Endpoints are visited in random order. The rows are
 * locked FOR UPDATE SKIP LOCKED only for this statement: replicas never claim the same delivery, and
 * the lease (next_attempt_at moved forward) keeps it claimed after the commit.
 */
export async function claimDueDeliveries(
  db: Queryable,
  opts: { batch: number; leaseMs: number; perEndpoint?: number; busy?: ReadonlyMap<string, number> },
): Promise<ClaimedDelivery[]> {
  const busy = [...(opts.busy ?? new Map<string, number>())];
  const { rows } = await db.query<ClaimedDelivery>(
    `WITH busy AS (SELECT * FROM unnest($4::uuid[], $5::int[]) AS b(endpoint_id, n)),
     eps AS (
       SELECT e.id, greatest($3::int - coalesce((SELECT n FROM busy WHERE busy.endpoint_id = e.id), 0), 0) AS room
         FROM webhook_endpoints e WHERE e.is_active ORDER BY random()
     ),
     due AS (
       SELECT x.id FROM eps CROSS JOIN LATERAL (
         SELECT d.id FROM webhook_deliveries d
          WHERE d.endpoint_id = eps.id AND d.status = 'pending' AND d.next_attempt_at <= now()
          ORDER BY d.next_attempt_at
          LIMIT eps.room
          FOR UPDATE SKIP LOCKED
       ) x
       LIMIT $1
     )
     UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => $2::double precision / 1000)
       FROM due, webhook_endpoints e
      WHERE d.id = due.id AND e.id = d.endpoint_id
      RETURNING d.id, d.endpoint_id, d.event_type, d.payload, d.attempts, e.url, e.secret`,
    [opts.batch, opts.leaseMs, opts.perEndpoint ?? opts.batch, busy.map(([id]) => id), busy.map(([, n]) => n)],
  );
  return rows;
}

/** An aborted attempt (shutdown) is not counted: the delivery is due again at once. */
export async function releaseDelivery(db: Queryable, id: string): Promise<void> {
  await db.query("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1 AND status = 'pending'", [id]);
}

export async function markDelivered(db: Queryable, id: string, statusCode: number | null): Promise<void> {
  await db.query(
    `UPDATE webhook_deliveries
        SET status = 'delivered', attempts = attempts + 1, delivered_at = now(), last_attempt_at = now(),
            last_status_code = $2, last_error = NULL
      WHERE id = $1 AND status = 'pending'`,
    [id, statusCode],
  );
}

/** A failed attempt: retried after `delayMs`, or given up (`failed`) and left where it is. */
export async function markAttemptFailed(
  db: Queryable,
  id: string,
  out: { giveUp: boolean; statusCode: number | null; error: string | null; delayMs: number },
): Promise<void> {
  await db.query(
    `UPDATE webhook_deliveries
        SET status = $2, attempts = attempts + 1, last_attempt_at = now(), last_status_code = $3, last_error = $4,
            next_attempt_at = CASE WHEN $2 = 'failed' THEN next_attempt_at ELSE now() + make_interval(secs => $5::double precision / 1000) END
      WHERE id = $1 AND status = 'pending'`,
    [id, out.giveUp ? "failed" : "pending", out.statusCode, out.error, out.delayMs],
  );
}
