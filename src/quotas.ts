// Quotas on the work an agent can cause, whatever the outcome of that work.
//
// - Request budget: every request an authenticated agent makes counts, in one-minute windows, before
//   its body is even read: refused, failed and invalid requests cost the same as accepted ones, so a
//   hostile agent cannot spend the service's time with requests no other limit sees. Past the budget:
//   429 + Retry-After. The budget is the agent's `requests_per_minute`, else AGENT_REQUESTS_PER_MINUTE;
//   0 is no limit. Each replica counts in memory (the hot path stays a Map lookup; a PostgreSQL counter
//   would add a round trip to every request) and shares its counts through agent_request_counts about
//   once a second, so the budget holds across replicas up to what they accept within one second.
// - Data size: a transaction's `data` may hold at most the agent's `tx_max_data_bytes`, else
//   MAX_DATA_BYTES (default 32 KiB), refused with 413 before any other work.
import { randomUUID } from "node:crypto";
import type { AgentRow } from "./db/agents.js";
import type { Pool } from "./db/pool.js";
import { WindowCounter } from "./auth/failures.js";
import { ServiceError } from "./errors.js";

/** MAX_DATA_BYTES's default. */
export const DEFAULT_MAX_DATA_BYTES = 32 * 1024;

export type QuotaAgent = Pick<AgentRow, "id"> & { requests_per_minute?: number | null; tx_max_data_bytes?: number | null };

declare module "fastify" {
  interface FastifyInstance {
    /** The app's request budget (src/app.ts); tests sync it by hand. */
    requestBudget: RequestBudget;
  }
}

export interface RequestBudgetOptions {
  /** AGENT_REQUESTS_PER_MINUTE: the budget of agents without their own (0: no limit). */
  defaultPerMinute: number;
  /** Where replicas share their counts; without it the budget is this process's alone. */
  pool?: Pool;
  windowMs?: number;
  now?: () => number;
}

export class RequestBudget {
  private readonly counter: WindowCounter;
  private readonly windowMs: number;
  private readonly now: () => number;
  /** This replica's id in agent_request_counts. */
  readonly replicaId = randomUUID();
  /** Per agent: what the other replicas counted in their live windows at the last sync, and when the first of those ends. */
  private readonly others = new Map<string, { count: number; resetAt: number }>();
  private syncs = 0;

  constructor(private readonly opts: RequestBudgetOptions) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.now = opts.now ?? Date.now;
    this.counter = new WindowCounter(this.windowMs, this.now);
  }

  /** Counts one request of `agent`; throws 429 when it is past its budget for this window. */
  spend(agent: QuotaAgent): void {
    const budget = agent.requests_per_minute ?? this.opts.defaultPerMinute;
    if (budget === 0) return;
    const t = this.now();
    const mine = this.counter.peek(agent.id);
    const o = this.others.get(agent.id);
    const others = o && o.resetAt > t ? o.count : 0;
    if (mine.count + others >= budget) {
      const local = mine.count > 0 ? mine.resetSeconds : 0;
      const remote = others > 0 ? Math.ceil((o!.resetAt - t) / 1000) : 0;
      // Budget frees up when the first window that holds counts ends.
      const wait = Math.max(1, Math.min(...[local, remote].filter((x) => x > 0)));
      throw new ServiceError(
        "request_budget_exceeded",
        429,
        `This agent's request budget (${budget} per minute) is spent; retry after ${wait} s.`,
        {
          retryAfterSeconds: wait,
          extra: { limit: budget, retry_after_seconds: wait },
        },
      );
    }
    this.counter.hit(agent.id);
  }

  /**
   * Shares this replica's live windows and reads the others' (one statement). Replicas see each other's
   * counts as of their last sync, so with N replicas an agent can pass its budget by what the others
   * accept within one sync interval.
   */
  async sync(): Promise<void> {
    const pool = this.opts.pool;
    if (!pool) return;
    const t = this.now();
    const live = [...this.counter.live()].sort((a, b) => (a.key < b.key ? -1 : 1));
    for (const id of this.others.keys()) if (!live.some((l) => l.key === id)) this.others.delete(id);
    this.syncs += 1;
    if (this.syncs % 60 === 0) {
      // Rows of replicas that stopped without cleaning up (killed): long expired.
      await pool.query("DELETE FROM agent_request_counts WHERE window_start < to_timestamp($1::float8 / 1000.0) - interval '1 hour'", [t]);
    }
    if (live.length === 0) {
      await pool.query("DELETE FROM agent_request_counts WHERE replica_id = $1", [this.replicaId]);
      return;
    }
    // Only this replica's rows are written (no lock shared with another replica); the read sees
    // the others' rows as of this statement's snapshot.
    const { rows } = await pool.query<{ agent_id: string; count: string; first_start: Date }>(
      `WITH mine AS (
         INSERT INTO agent_request_counts (agent_id, replica_id, window_start, count)
         SELECT a, $2::uuid, to_timestamp(s / 1000.0), c FROM unnest($1::uuid[], $3::float8[], $4::bigint[]) AS u(a, s, c)
         ON CONFLICT (agent_id, replica_id) DO UPDATE SET window_start = EXCLUDED.window_start, count = EXCLUDED.count
       ), gone AS (
         DELETE FROM agent_request_counts WHERE replica_id = $2::uuid AND NOT (agent_id = ANY($1::uuid[]))
       )
       SELECT agent_id, sum(count)::text AS count, min(window_start) AS first_start
         FROM agent_request_counts
        WHERE agent_id = ANY($1::uuid[]) AND replica_id <> $2::uuid AND window_start > to_timestamp(($5::float8 - $6::float8) / 1000.0)
        GROUP BY agent_id`,
      [live.map((l) => l.key), this.replicaId, live.map((l) => l.start), live.map((l) => l.count), t, this.windowMs],
    );
    this.others.clear();
    for (const r of rows) this.others.set(r.agent_id, { count: Number(r.count), resetAt: r.first_start.getTime() + this.windowMs });
  }

  /** Syncs every `intervalMs` until the returned stop() (which also removes this replica's rows). */
  start(intervalMs: number, onError: (err: unknown) => void): () => Promise<void> {
    let running: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      running = running.then(() => this.sync()).catch(onError);
    }, intervalMs);
    timer.unref();
    return async () => {
      clearInterval(timer);
      await running;
      await this.opts.pool?.query("DELETE FROM agent_request_counts WHERE replica_id = $1", [this.replicaId]).catch(onError);
    };
  }
}

/** The `data` byte limit that applies to `agent`. */
export function dataLimitOf(agent: QuotaAgent, defaultBytes: number): number {
  return agent.tx_max_data_bytes ?? defaultBytes;
}

/** 413 when 0x-hex `data` holds more bytes than `limit`; `field` names it in the problem body. */
export function checkDataSize(data: unknown, limit: number, field = "data"): void {
  if (typeof data !== "string" || !data.startsWith("0x")) return; // the schema reports malformed data
  const bytes = Math.floor((data.length - 2) / 2);
  if (bytes <= limit) return;
  throw new ServiceError("data_too_large", 413, `${field} is ${bytes} bytes; this agent may send at most ${limit}.`, {
    errors: [{ field, message: `is ${bytes} bytes; at most ${limit} allowed` }],
    extra: { limit, attempted: bytes },
  });
}
