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
import { claimDueDeliveries, markAttemptFailed, markDelivered, releaseDelivery, type ClaimedDelivery } from "../db/webhooks.js";
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
export async function attemptDelivery(
  d: Pick<ClaimedDelivery, "id" | "payload" | "url" | "secret">,
  opts: { timeoutMs: number; fetch: typeof fetch; signal?: AbortSignal },
): Promise<AttemptOutcome> {
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
export async function recordAttempt(
  pool: Pool,
  d: Pick<ClaimedDelivery, "id" | "attempts">,
  out: AttemptOutcome,
  opts: Pick<DeliverOptions, "backoffBaseMs" | "backoffCapMs" | "maxAttempts">,
): Promise<"delivered" | "pending" | "failed"> {
  if (out.aborted) {
    await releaseDelivery(pool, d.id);
    return "pending";
  }
  if (out.ok) {
    await markDelivered(pool, d.id, out.statusCode);
    return "delivered";
  }
  const attempts = d.attempts + 1;
  const giveUp = attempts >= opts.maxAttempts;
  const delay = backoffDelayMs(attempts, opts.backoffBaseMs, opts.backoffCapMs);
  await markAttemptFailed(pool, d.id, { giveUp, statusCode: out.statusCode, error: out.error, delayMs: delay });
  return giveUp ? "failed" : "pending";
}

export interface DeliverResult {
  claimed: number;
  delivered: number;
  retrying: number;
  failed: number;
}

/** POSTs one claimed delivery and records the result. Never throws. */
export async function deliverClaimed(
  pool: Pool,
  d: ClaimedDelivery,
  opts: DeliverOptions,
): Promise<"delivered" | "pending" | "failed" | "unrecorded"> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const out = await attemptDelivery(d, { timeoutMs, fetch: opts.fetch ?? fetch, signal: opts.signal });
  try {
    const state = await recordAttempt(pool, d, out, opts);
    const fields = {
      delivery_id: d.id,
      endpoint_id: d.endpoint_id,
      event_type: d.event_type,
      attempt: d.attempts + 1,
      status_code: out.statusCode ?? undefined,
    };
    if (state === "failed") opts.log?.warn({ ...fields, error: out.error }, "webhook delivery given up");
    else if (!out.ok && !out.aborted) opts.log?.debug({ ...fields, error: out.error }, "webhook delivery attempt failed; will retry");
    else if (out.ok) opts.log?.debug(fields, "webhook delivered");
    return state;
  } catch (err) {
    // The lease expires and the delivery is sent again: at-least-once.
    opts.log?.warn(
      { delivery_id: d.id, err: { message: (err as Error).message } },
      "could not record a webhook attempt; it will be retried",
    );
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
  const claimed = await claimDueDeliveries(pool, {
    batch: opts.batch ?? 25,
    leaseMs: opts.leaseMs ?? (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) + 30_000,
  });
  return tally(await Promise.all(claimed.map((d) => deliverClaimed(pool, d, opts))));
}
