// The webhook worker: on a short interval, fan sealed audit events out to the endpoints' outboxes,
// then start delivering what is due. Every replica runs one; row locks (SKIP LOCKED) share the work.
//
// Deliveries run in the background, up to `maxInFlight` at once and `maxInFlightPerEndpoint` per
// endpoint, so a receiver that hangs until the timeout holds a few slots, not every pass.
import type { Logger } from "pino";
import type { Pool } from "../db/pool.js";
import { claimDueDeliveries } from "../db/webhooks.js";
import { DEFAULT_TIMEOUT_MS, deliverClaimed, tally, type DeliverOptions, type DeliverResult } from "./deliver.js";
import { fanoutWebhookEvents, type FanoutResult } from "./fanout.js";

export interface WebhookWorkerOptions {
  pool: Pool;
  log: Logger;
  intervalMs: number;
  backoffBaseMs: number;
  maxAttempts: number;
  fetch?: typeof fetch;
  timeoutMs?: number;
  backoffCapMs?: number;
  leaseMs?: number;
  /** Requests in flight at once in this process. Default 32. */
  maxInFlight?: number;
  /** Requests in flight at once to one endpoint from this process. Default 8. */
  maxInFlightPerEndpoint?: number;
}

export interface WebhookWorker {
  /** One fan-out and one delivery pass (after any pass already running); resolves when the deliveries it started are recorded. */
  runOnce(): Promise<{ fanout: FanoutResult; deliver: DeliverResult } | undefined>;
  /** Stops the timer, aborts in-flight requests (they are due again at once) and waits for everything to settle. */
  stop(): Promise<void>;
}

type State = Awaited<ReturnType<typeof deliverClaimed>>;

export function startWebhookWorker(opts: WebhookWorkerOptions): WebhookWorker {
  const abort = new AbortController();
  const maxInFlight = opts.maxInFlight ?? 32;
  const perEndpointCap = opts.maxInFlightPerEndpoint ?? 8;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deliverOpts: DeliverOptions = {
    backoffBaseMs: opts.backoffBaseMs,
    backoffCapMs: opts.backoffCapMs,
    maxAttempts: opts.maxAttempts,
    timeoutMs,
    fetch: opts.fetch,
    log: opts.log,
    signal: abort.signal,
  };
  const inflight = new Set<Promise<State>>();
  const perEndpoint = new Map<string, number>();
  let running: Promise<unknown> = Promise.resolve();
  let queued = false;
  let stopped = false;

  const pass = async (): Promise<{ fanout: FanoutResult; started: Array<Promise<State>> } | undefined> => {
    if (stopped) return undefined;
    const fanout = await fanoutWebhookEvents(opts.pool);
    const free = maxInFlight - inflight.size;
    if (free <= 0 || stopped) return { fanout, started: [] };
    const claimed = await claimDueDeliveries(opts.pool, {
      batch: free,
      leaseMs: opts.leaseMs ?? timeoutMs + 30_000,
      perEndpoint: perEndpointCap,
      busy: perEndpoint,
    });
    // Some endpoint may have more due than it was given room for: claim again as soon as a slot frees.
    const more = claimed.length > 0;
    const started = claimed.map((d) => {
      perEndpoint.set(d.endpoint_id, (perEndpoint.get(d.endpoint_id) ?? 0) + 1);
      const p: Promise<State> = deliverClaimed(opts.pool, d, deliverOpts).finally(() => {
        inflight.delete(p);
        const n = (perEndpoint.get(d.endpoint_id) ?? 1) - 1;
        if (n <= 0) perEndpoint.delete(d.endpoint_id);
        else perEndpoint.set(d.endpoint_id, n);
        if (more) tick();
      });
      inflight.add(p);
      return p;
    });
    return { fanout, started };
  };

  const runOnce = async () => {
    const next = running.then(pass);
    running = next.catch(() => {});
    const r = await next;
    if (!r) return undefined;
    return { fanout: r.fanout, deliver: tally(await Promise.all(r.started)) };
  };

  const tick = () => {
    if (queued || stopped) return; // a pass is already waiting: timer ticks do not pile up
    queued = true;
    running = running.then(async () => {
      queued = false;
      try {
        await pass();
      } catch (err) {
        if (!stopped)
          opts.log.warn(
            { err: { message: (err as Error).message, code: (err as { code?: string }).code } },
            "webhook pass failed; will retry",
          );
      }
    });
  };

  const timer = setInterval(tick, opts.intervalMs);
  timer.unref();

  return {
    runOnce,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      abort.abort();
      await running.catch(() => {});
      await Promise.all([...inflight]);
    },
  };
}
