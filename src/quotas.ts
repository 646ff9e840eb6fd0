// Quotas on the work an agent can cause, whatever the outcome of that work.
//
// - Request budget: every request an authenticated agent makes counts, in fixed one-minute windows,
//   before its body is even read: refused, failed and invalid requests cost the same as accepted ones,
//   so a hostile agent cannot spend the service's time with requests no other limit sees. Past the
//   budget: 429 + Retry-After (the seconds left in the window). The budget is the agent's
//   `requests_per_minute`, else AGENT_REQUESTS_PER_MINUTE; 0 is no limit.
//   Counted in memory, per replica: the hot path stays a Map lookup (a PostgreSQL counter would add a
//   round trip to every request), and with N replicas behind a balancer an agent gets up to N times
//   its budget. Operators who run several replicas set budgets accordingly.
// - Data size: a transaction's `data` may hold at most the agent's `tx_max_data_bytes`, else
//   MAX_DATA_BYTES (default 32 KiB), refused with 413 before any other work.
import type { AgentRow } from "./db/agents.js";
import { WindowCounter } from "./auth/failures.js";
import { ServiceError } from "./errors.js";

/** MAX_DATA_BYTES's default. */
export const DEFAULT_MAX_DATA_BYTES = 32 * 1024;

export type QuotaAgent = Pick<AgentRow, "id"> & { requests_per_minute?: number | null; tx_max_data_bytes?: number | null };

export class RequestBudget {
  private readonly counter: WindowCounter;

  constructor(
    private readonly defaultPerMinute: number,
    windowMs = 60_000,
    now: () => number = Date.now,
  ) {
    this.counter = new WindowCounter(windowMs, now);
  }

  /** Counts one request of `agent`; throws 429 when it is past its budget for this window. */
  spend(agent: QuotaAgent): void {
    const budget = agent.requests_per_minute ?? this.defaultPerMinute;
    if (budget === 0) return;
    const w = this.counter.hit(agent.id);
    if (w.count > budget) {
      throw new ServiceError("request_budget_exceeded", 429, `This agent's request budget (${budget} per minute) is spent; retry after ${w.resetSeconds} s.`, {
        retryAfterSeconds: w.resetSeconds,
        extra: { limit: budget, retry_after_seconds: w.resetSeconds },
      });
    }
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
