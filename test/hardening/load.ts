// Shared by the fault tests: a closed-loop load of submits through app.inject, recording every
// answer, and the check that the database and the chain agree on an address's nonces.
import { createPublicClient, http, type Address } from "viem";
import type { TestService } from "../helpers/service.js";

export const DEAD = "0x000000000000000000000000000000000000dEaD";

export interface Answer {
  at: number;
  status: number;
  code?: string;
  retryAfter?: string;
  contentType?: string;
  body: any;
}

export interface Load {
  answers: Answer[];
  /** Answers with this status received since `t`. */
  count(status: number, since?: number): number;
  /** Lets the requests in flight finish and holds the clients until resume(): nothing is in flight after it. */
  pause(): Promise<void>;
  resume(): void;
  stop(): Promise<void>;
}

/** `workers` clients submitting back to back until stop(). */
export function startSubmitLoad(
  svc: TestService,
  agent: { id: string; token: string },
  workers: number,
  body: Record<string, unknown> = {},
): Load {
  const answers: Answer[] = [];
  let running = true;
  let gate: Promise<void> | undefined;
  let open = () => {};
  let inFlight = 0;
  let drained = () => {};
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      if (gate) {
        await gate;
        continue;
      }
      inFlight++;
      const r = await svc.app.inject({
        method: "POST",
        url: `/v1/agents/${agent.id}/transactions`,
        headers: { authorization: `Bearer ${agent.token}`, "content-type": "application/json" },
        payload: JSON.stringify({ to: DEAD, value: "0.0001", chain: "local", ...body }),
      });
      let parsed: any;
      try {
        parsed = JSON.parse(r.body);
      } catch {
        parsed = r.body;
      }
      answers.push({
        at: Date.now(),
        status: r.statusCode,
        code: parsed?.code,
        retryAfter: r.headers["retry-after"] as string | undefined,
        contentType: r.headers["content-type"] as string | undefined,
        body: parsed,
      });
      if (--inFlight === 0) drained();
      // Back off a little on refusals, as a client honouring Retry-After would (but faster, to keep the test short).
      if (r.statusCode >= 500) await new Promise((res) => setTimeout(res, 25));
    }
  });
  return {
    answers,
    count: (status, since = 0) => answers.filter((a) => a.status === status && a.at >= since).length,
    pause: async () => {
      gate ??= new Promise<void>((r) => (open = r));
      if (inFlight > 0) await new Promise<void>((r) => (drained = r));
    },
    resume: () => {
      gate = undefined;
      open();
    },
    stop: async () => {
      running = false;
      gate = undefined;
      open();
      await Promise.all(loops);
    },
  };
}

export async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The rows that hold a nonce on `address` (signed, broadcast) have distinct, consecutive nonces from 0,
 * and the chain has mined exactly that many: no duplicate, no gap. Waits up to `ms` for the tracker to
 * send rows that a fault left signed but unsent.
 */
export async function expectChainMatchesDb(svc: TestService, address: Address, ms = 30_000): Promise<{ rows: number }> {
  const chain = createPublicClient({ transport: http(svc.ctx.localChainUrl!) });
  let last = "";
  const state = async () => {
    const { rows } = await svc.ctx.pool.query<{ nonce: string; status: string }>(
      "SELECT nonce, status FROM transactions WHERE chain_id = 31337 AND from_address = $1 AND status IN ('signed', 'broadcast') ORDER BY nonce",
      [address.toLowerCase()],
    );
    const nonces = rows.map((r) => Number(r.nonce));
    const mined = await chain.getTransactionCount({ address, blockTag: "latest" });
    const pending = await chain.getTransactionCount({ address, blockTag: "pending" });
    return { nonces, mined, pending, signed: rows.filter((r) => r.status === "signed").length };
  };
  await waitUntil(
    async () => {
      const s = await state();
      last = JSON.stringify({ rows: s.nonces.length, max: s.nonces.at(-1), mined: s.mined, pending: s.pending, signed: s.signed });
      return s.mined === s.nonces.length && s.pending === s.nonces.length;
    },
    ms,
    `the chain to match the database (${last})`,
  ).catch((err) => {
    throw new Error(`${(err as Error).message}; last state ${last}`);
  });
  const s = await state();
  if (new Set(s.nonces).size !== s.nonces.length) throw new Error(`duplicate nonces: ${s.nonces.join(",")}`);
  s.nonces.forEach((n, i) => {
    if (n !== i) throw new Error(`nonce gap at ${i}: found ${n}`);
  });
  return { rows: s.nonces.length };
}
