// Delivery: claim due deliveries, POST them, record each attempt.
//
// A claim is a short transaction (FOR UPDATE SKIP LOCKED, so replicas never claim the same row) that
// moves next_attempt_at forward by a lease; the POST happens outside any transaction; the result is
// recorded afterwards. A process that dies between the POST and the record leaves the row pending,
// and it is sent again, with the same id, once the lease expires: delivery is at-least-once and
// receivers dedupe on X-Webhook-Id.
//
// Nothing here logs or stores a URL, a secret or a response body: last_error is built from fixed text.
import type { Logger } from "pino";
import type { Pool } from "../db/pool.js";
import { signWebhook } from "./events.js";

export interface DeliverOptions {
  /** First retry delay; doubles with each failed attempt. */
  backoffBaseMs: number;
  /** Longest retry delay. Default 10 minutes. */
  backoffCapMs?: number;
  /** Attempts after which a delivery is given up as `failed`. */
  maxAttempts: number;
  /** Per-request timeout. Default 5 s. */
  timeoutMs?: number;
  /** How long a claimed delivery stays invisible to other claims. Default timeout + 30 s. */
  leaseMs?: number;
  /** Deliveries claimed per pass (deliverDue). Default 25. */
  batch?: number;
  fetch?: typeof fetch;
  log?: Logger;
  /** Aborts in-flight requests (shutdown); an aborted attempt is not counted and is due again at once. */
  signal?: AbortSignal;
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

export interface AttemptOutcome {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  /** The request was aborted by the caller's signal: not the receiver's fault, not an attempt. */
  aborted?: boolean;
}

export const DEFAULT_TIMEOUT_MS = 5_000;
export const DEFAULT_BACKOFF_CAP_MS = 10 * 60_000;

/** Delay before the attempt after `attempts` failed ones: base·2^(attempts−1), capped, with jitter in [½, 1]. */
export function backoffDelayMs(attempts: number, baseMs: number, capMs = DEFAULT_BACKOFF_CAP_MS, random = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 40));
  return Math.max(1, Math.round(exp / 2 + (exp / 2) * random()));
}

/**
 * Claims up to `batch` due deliveries of active endpoints, leasing each for `leaseMs`: at most
 * `perEndpoint` per endpoint, less what this process already has in flight to it (`busy`), so one
 * endpoint's backlog cannot take every slot. Endpoints are visited in random order.
 */
export async function claimDueDeliveries(
  pool: Pool,
  opts: { batch: number; leaseMs: number; perEndpoint?: number; busy?: ReadonlyMap<string, number> },
): Promise<ClaimedDelivery[]> {
  const busy = [...(opts.busy ?? new Map<string, number>())];
  const { rows } = await pool.query<ClaimedDelivery>(
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

function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string } };
  if (e?.name === "TimeoutError" || e?.cause?.name === "TimeoutError") return `timeout after ${timeoutMs} ms`;
  const code = e?.cause?.code ?? e?.code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ECONNRESET") return "connection reset";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host not found";
  if (code === "UND_ERR_CONNECT_TIMEOUT" || code === "ETIMEDOUT") return "connect timeout";
  if (typeof code === "string" && /^[A-Z0-9_]{2,40}$/.test(code)) return `network error (${code})`;
  return "network error";
}

/** One POST of one delivery. Never throws. */
export async function attemptDelivery(d: Pick<ClaimedDelivery, "id" | "payload" | "url" | "secret">, opts: { timeoutMs: number; fetch: typeof fetch; signal?: AbortSignal }): Promise<AttemptOutcome> {
  const body = JSON.stringify(d.payload);
  const timestamp = Math.floor(Date.now() / 1000);
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  try {
    const res = await opts.fetch(d.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "intents-signer-webhooks/1",
        "x-webhook-id": d.id,
        "x-webhook-timestamp": String(timestamp),
        "x-webhook-signature": signWebhook(d.secret, timestamp, body),
      },
      body,
      redirect: "manual", // a redirect is an answer, not an invitation to send the payload elsewhere
      signal,
    });
    await res.body?.cancel().catch(() => {}); // the body is never read or stored
    if (res.status >= 200 && res.status < 300) return { ok: true, statusCode: res.status, error: null };
    return { ok: false, statusCode: res.status, error: `HTTP ${res.status}` };
  } catch (err) {
    if (opts.signal?.aborted && !timeout.aborted) return { ok: false, statusCode: null, error: "aborted", aborted: true };
    return { ok: false, statusCode: null, error: describeFailure(err, opts.timeoutMs) };
  }
}

/** Records one attempt: delivered, retried later with backoff, or given up. */
export async function recordAttempt(pool: Pool, d: Pick<ClaimedDelivery, "id" | "attempts">, out: AttemptOutcome, opts: Pick<DeliverOptions, "backoffBaseMs" | "backoffCapMs" | "maxAttempts">): Promise<"delivered" | "pending" | "failed"> {
  if (out.aborted) {
    await pool.query("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1 AND status = 'pending'", [d.id]);
    return "pending";
  }
  if (out.ok) {
    await pool.query(
      `UPDATE webhook_deliveries
          SET status = 'delivered', attempts = attempts + 1, delivered_at = now(), last_attempt_at = now(),
              last_status_code = $2, last_error = NULL
        WHERE id = $1 AND status = 'pending'`,
      [d.id, out.statusCode],
    );
    return "delivered";
  }
  const attempts = d.attempts + 1;
  const giveUp = attempts >= opts.maxAttempts;
  const delay = backoffDelayMs(attempts, opts.backoffBaseMs, opts.backoffCapMs);
  await pool.query(
    `UPDATE webhook_deliveries
        SET status = $2, attempts = attempts + 1, last_attempt_at = now(), last_status_code = $3, last_error = $4,
            next_attempt_at = CASE WHEN $2 = 'failed' THEN next_attempt_at ELSE now() + make_interval(secs => $5::double precision / 1000) END
      WHERE id = $1 AND status = 'pending'`,
    [d.id, giveUp ? "failed" : "pending", out.statusCode, out.error, delay],
  );
  return giveUp ? "failed" : "pending";
}

export interface DeliverResult {
  claimed: number;
  delivered: number;
  retrying: number;
  failed: number;
}

/** POSTs one claimed delivery and records the result. Never throws. */
export async function deliverClaimed(pool: Pool, d: ClaimedDelivery, opts: DeliverOptions): Promise<"delivered" | "pending" | "failed" | "unrecorded"> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const out = await attemptDelivery(d, { timeoutMs, fetch: opts.fetch ?? fetch, signal: opts.signal });
  try {
    const state = await recordAttempt(pool, d, out, opts);
    const fields = { delivery_id: d.id, endpoint_id: d.endpoint_id, event_type: d.event_type, attempt: d.attempts + 1, status_code: out.statusCode ?? undefined };
    if (state === "failed") opts.log?.warn({ ...fields, error: out.error }, "webhook delivery given up");
    else if (!out.ok && !out.aborted) opts.log?.debug({ ...fields, error: out.error }, "webhook delivery attempt failed; will retry");
    else if (out.ok) opts.log?.debug(fields, "webhook delivered");
    return state;
  } catch (err) {
    // The lease expires and the delivery is sent again: at-least-once.
    opts.log?.warn({ delivery_id: d.id, err: { message: (err as Error).message } }, "could not record a webhook attempt; it will be retried");
    return "unrecorded";
  }
}

export function tally(states: Array<Awaited<ReturnType<typeof deliverClaimed>>>): DeliverResult {
  return {
    claimed: states.length,
    delivered: states.filter((s) => s === "delivered").length,
    retrying: states.filter((s) => s === "pending" || s === "unrecorded").length,
    failed: states.filter((s) => s === "failed").length,
  };
}

/** Claims due deliveries, POSTs them concurrently, records the results, and returns when all are done. */
export async function deliverDue(pool: Pool, opts: DeliverOptions): Promise<DeliverResult> {
  const claimed = await claimDueDeliveries(pool, { batch: opts.batch ?? 25, leaseMs: opts.leaseMs ?? (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) + 30_000 });
  return tally(await Promise.all(claimed.map((d) => deliverClaimed(pool, d, opts))));
}
