// Work that every limit now counts, against the real stack (PostgreSQL, SoftHSM, anvil and its fork):
// - `data` is capped (MAX_DATA_BYTES, per agent `tx_max_data_bytes`): 2 MB of data with gas_limit 1e9
//   is a 413 before any other work, with nothing signed, stored or spent;
// - every request an agent makes spends its budget (`requests_per_minute`, AGENT_REQUESTS_PER_MINUTE),
//   refused and failed ones too; past it, 429 + Retry-After and nothing done;
// - simulations wait in a bounded queue per chain that serves agents in turn: forty 20-call bundles
//   from one agent do not push another agent's single simulation behind them, and past the bounds
//   the answer is 503 + Retry-After at once.
import { describe, expect, it } from "vitest";
import type { App } from "../../src/http/types.js";
import { call, createAgent, type Res, type TestAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { startReplica } from "../helpers/replica.js";
import { useService } from "../helpers/use-service.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const DEFAULT_BUDGET = 50;
const PER_AGENT = 10;
const QUEUE_MAX = 12;

describe("quotas", () => {
  const svc = useService({
    env: {
      AGENT_REQUESTS_PER_MINUTE: String(DEFAULT_BUDGET),
      SIMULATION_QUEUE_PER_AGENT: String(PER_AGENT),
      SIMULATION_QUEUE_MAX: String(QUEUE_MAX),
      TRACKER: "off",
    },
  });
  const { op } = svc;

  const signer = async () => (await svc.ctx.signer.getKey("keys/local-signer"))!.address;
  const client = () => svc.ctx.clients.get(svc.ctx.chains.resolve("local")!);
  /** What an attack must leave alone: rows, claims, audit events, the signer's nonce and balance. */
  const state = async () => {
    const address = await signer();
    const { rows } = await svc.ctx.pool.query(
      `SELECT (SELECT count(*)::int FROM transactions) AS txs,
              (SELECT count(*)::int FROM idempotency_keys) AS claims,
              (SELECT count(*)::int FROM audit_events WHERE action LIKE 'transaction.%') AS audit,
              (SELECT coalesce(max(next_nonce), 0)::text FROM nonces WHERE lower(address) = lower($1)) AS next_nonce`,
      [address],
    );
    return {
      ...rows[0],
      pending: await client().getTransactionCount({ address, blockTag: "pending" }),
      balance: (await client().getBalance({ address })).toString(),
    };
  };

  const submit = (a: TestAgent, body: Record<string, unknown>, path = "transactions") =>
    call(svc.app, "POST", `/v1/agents/${a.id}/${path}`, { token: a.token, body });
  const hex = (bytes: number) => "0x" + "ab".repeat(bytes);

  function expectProblem(r: Res, status: number, code: string) {
    expect(r.status, r.raw.slice(0, 300)).toBe(status);
    expect(r.headers["content-type"]).toMatch(/^application\/problem\+json/);
    assertMatchesReference("ProblemDetails", r.body);
    expect(r.body).toMatchObject({ status, code });
  }

  describe("data size", () => {
    it("2 MB of data with gas_limit 1e9 is refused with 413 before any work: nothing signed, stored, audited or spent", async () => {
      const a = await createAgent(svc.app, op, { requests_per_minute: 0 });
      const before = await state();
      for (const path of ["transactions", "transactions/sign"]) {
        const r = await submit(a, { to: DEAD, value: "0", chain: "local", data: hex(2 * 1024 * 1024), gas_limit: 1_000_000_000 }, path);
        expectProblem(r, 413, "data_too_large");
        expect(r.body.errors).toEqual([{ field: "data", message: `is ${2 * 1024 * 1024} bytes; at most 32768 allowed` }]);
        expect(r.body).toMatchObject({ limit: 32768, attempted: 2 * 1024 * 1024 });
        expect(r.raw.length).toBeLessThan(2000); // the data is not echoed
      }
      // With an Idempotency-Key too: no claim is left behind.
      const keyed = await call(svc.app, "POST", `/v1/agents/${a.id}/transactions`, {
        token: a.token,
        headers: { "idempotency-key": "big-data" },
        body: { to: DEAD, value: "0", chain: "local", data: hex(32 * 1024 + 1) },
      });
      expectProblem(keyed, 413, "data_too_large");
      expect(await state()).toEqual(before);
    });

    it("the default cap is exact (32 KiB passes, one byte more does not), and the simulate routes apply it per transaction", async () => {
      const a = await createAgent(svc.app, op, { requests_per_minute: 0 });
      const ok = await submit(a, { to: DEAD, value: "0", chain: "local", data: hex(32 * 1024) }, "transactions/sign");
      expect(ok.status, ok.raw.slice(0, 300)).toBe(200);
      expectProblem(
        await submit(a, { to: DEAD, value: "0", chain: "local", data: hex(32 * 1024 + 1) }, "transactions/sign"),
        413,
        "data_too_large",
      );

      const before = await state();
      expectProblem(
        await submit(a, { to: DEAD, value: "0", chain: "local", data: hex(40_000) }, "transactions/simulate"),
        413,
        "data_too_large",
      );
      const tx = { to: DEAD, value: "0", chain: "local" };
      const bundle = await submit(a, { transactions: [tx, tx, tx, { ...tx, data: hex(40_000) }] }, "transactions/simulate-bundle");
      expectProblem(bundle, 413, "data_too_large");
      expect(bundle.body.errors[0].field).toBe("transactions.3.data");
      expect(await state()).toEqual(before);
    });

    it("operators set tx_max_data_bytes per agent (up to 128 KiB); the agent's own limit wins over MAX_DATA_BYTES", async () => {
      const a = await createAgent(svc.app, op, { requests_per_minute: 0 });
      const set = async (v: unknown) => call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body: { tx_max_data_bytes: v } });
      expect((await set(40_000)).body.tx_max_data_bytes).toBe(40_000);
      expect((await submit(a, { to: DEAD, value: "0", chain: "local", data: hex(40_000) }, "transactions/sign")).status).toBe(200);
      expect((await set(100)).status).toBe(200);
      expectProblem(await submit(a, { to: DEAD, value: "0", chain: "local", data: hex(101) }, "transactions/sign"), 413, "data_too_large");
      expect((await set(131_073)).status).toBe(400);
      expect((await set(null)).body.tx_max_data_bytes).toBeNull();
      // The agent cannot raise its own limit.
      expect((await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: a.token, body: { tx_max_data_bytes: 131_072 } })).status).toBe(
        403,
      );
    });
  });

  describe("request budget", () => {
    it("counts refused and failed requests: past requests_per_minute, 429 + Retry-After and nothing done", async () => {
      const a = await createAgent(svc.app, op, { requests_per_minute: 6, tx_max_value: "0.01" });
      const spent = [
        (await submit(a, { to: DEAD, value: "not a number", chain: "local" })).status, // 400
        (await submit(a, { to: DEAD, value: "1", chain: "local" })).status, // 403 guardrail
        (await submit(a, { to: DEAD, value: "0", chain: "local", data: hex(40_000) })).status, // 413
        (await call(svc.app, "GET", `/v1/agents/${a.id}/transactions/00000000-0000-4000-8000-000000000000`, { token: a.token })).status, // 404
        (await call(svc.app, "GET", `/v1/agents/${a.id}/transactions`, { token: a.token })).status, // 200
        (await submit(a, { to: DEAD, value: "0.001", chain: "local" })).status, // 201
      ];
      expect(spent).toEqual([400, 403, 413, 404, 200, 201]);
      const before = await state();
      const over = await submit(a, { to: DEAD, value: "0.001", chain: "local" });
      expectProblem(over, 429, "request_budget_exceeded");
      const retryAfter = Number(over.headers["retry-after"]);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(over.body).toMatchObject({ limit: 6, retry_after_seconds: retryAfter });
      // The budget is the agent's, whatever credential it uses.
      expectProblem(await call(svc.app, "GET", `/v1/agents/${a.id}/transactions`, { token: a.apiKey }), 429, "request_budget_exceeded");
      expect(await state()).toEqual(before);
      // Other agents are not affected; operators are not budgeted.
      const b = await createAgent(svc.app, op);
      expect((await submit(b, { to: DEAD, value: "0.001", chain: "local" })).status).toBe(201);
      expect((await call(svc.app, "GET", `/v1/agents/${a.id}`, { token: op })).body.requests_per_minute).toBe(6);
    });

    it("holds across replicas: each sees the others' counts (shared through PostgreSQL) from its next sync on", async () => {
      // A second replica: its own pool, auth and app (and so its own in-memory counts) on the same database.
      const replica = await startReplica(svc, 5);
      const app2 = replica.app;
      try {
        const a = await createAgent(svc.app, op, { requests_per_minute: 10 });
        const get = (app: App) => call(app, "GET", `/v1/agents/${a.id}/transactions?limit=1`, { token: a.token });
        for (let i = 0; i < 6; i++) expect((await get(svc.app)).status).toBe(200);
        await svc.app.requestBudget.sync();
        // Replica 2 learns about the agent's other windows at its first sync after the agent's first request there.
        expect((await get(app2)).status).toBe(200);
        await app2.requestBudget.sync();
        const codes = [];
        for (let i = 0; i < 4; i++) codes.push((await get(app2)).status);
        expect(codes).toEqual([200, 200, 200, 429]);
        await app2.requestBudget.sync();
        await svc.app.requestBudget.sync();
        const refused = await get(svc.app);
        expectProblem(refused, 429, "request_budget_exceeded");
        expect(Number(refused.headers["retry-after"])).toBeLessThanOrEqual(60);
        const { rows } = await svc.ctx.pool.query(
          "SELECT count(*)::int AS replicas, sum(count)::int AS total FROM agent_request_counts WHERE agent_id = $1",
          [a.id],
        );
        expect(rows[0]).toEqual({ replicas: 2, total: 10 });
      } finally {
        await replica.close();
      }
      // A replica that stops removes its counts.
      const { rows } = await svc.ctx.pool.query("SELECT count(DISTINCT replica_id)::int AS n FROM agent_request_counts");
      expect(rows[0].n).toBeLessThanOrEqual(1);
    });

    it("AGENT_REQUESTS_PER_MINUTE applies to agents without their own budget; requests_per_minute 0 is no limit", async () => {
      const a = await createAgent(svc.app, op);
      const codes: number[] = [];
      for (let i = 0; i < DEFAULT_BUDGET + 2; i++)
        codes.push((await call(svc.app, "GET", `/v1/agents/${a.id}/transactions?limit=1`, { token: a.token })).status);
      expect(codes).toEqual([...Array(DEFAULT_BUDGET).fill(200), 429, 429]);
      // The operator lifts it: the next request passes at once.
      expect((await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body: { requests_per_minute: 0 } })).status).toBe(200);
      for (let i = 0; i < 5; i++)
        expect((await call(svc.app, "GET", `/v1/agents/${a.id}/transactions?limit=1`, { token: a.token })).status).toBe(200);
    });
  });

  describe("simulation queue", () => {
    it("40 concurrent 20-call bundles from agent A: A is bounded (503 + Retry-After past its share), B's single simulation is served before almost all of A's queued work, nothing is lost", async () => {
      const A = await createAgent(svc.app, op, { requests_per_minute: 0 });
      const B = await createAgent(svc.app, op, { requests_per_minute: 0 });
      const C = await createAgent(svc.app, op, { requests_per_minute: 0 });
      const queue = svc.ctx.simulators.queue(svc.ctx.chains.resolve("local")!);
      const tx = { to: DEAD, value: "0.0001", chain: "local" };
      // Warm the fork so that every simulation below does the same kind of work.
      expect((await submit(C, tx, "transactions/simulate")).body.status).toBe("success");

      // A slow simulation already holds the fork: everything below queues behind it, deterministically.
      let release!: () => void;
      const held = queue.run("slow-agent", () => new Promise<void>((r) => (release = r)));
      const auditBefore = (await svc.ctx.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'transaction.simulate'"))
        .rows[0].n;

      const done: string[] = [];
      const fire = (who: TestAgent, label: string, path: string, body: unknown) =>
        submit(who, body as Record<string, unknown>, path).then((r) => {
          if (r.status === 200) done.push(label);
          return r;
        });
      const aResults = Array.from({ length: 40 }, () => fire(A, "A", "transactions/simulate-bundle", { transactions: Array(20).fill(tx) }));
      // Wait (no clock) until every one of A's requests is either queued or refused.
      const refused: Res[] = [];
      for (const p of aResults) void p.then((r) => r.status === 503 && refused.push(r));
      while (queue.size(A.id) + refused.length < 40) await new Promise((r) => setTimeout(r, 10));
      expect(queue.size(A.id)).toBe(PER_AGENT);
      expect(refused).toHaveLength(40 - PER_AGENT);
      for (const r of refused) {
        expectProblem(r, 503, "simulation_queue_full");
        expect(r.headers["retry-after"]).toBe("1");
      }

      const bResult = fire(B, "B", "transactions/simulate", tx);
      while (queue.size(B.id) === 0) await new Promise((r) => setTimeout(r, 10));
      // The queue is now at its global bound (the slow one, A's ten, B's one): a third agent is refused at once.
      expect(queue.size()).toBe(QUEUE_MAX);
      expectProblem(await submit(C, tx, "transactions/simulate"), 503, "simulation_queue_full");

      const startedBefore = queue.started.length;
      release();
      await held;
      const b = await bResult;
      expect(b.status).toBe(200);
      expect(b.body.status).toBe("success");
      // B started second after the slow one (A's turn came first, then B's), and answered before
      // the other nine of A's ten queued bundles.
      expect(queue.started.slice(startedBefore, startedBefore + 3)).toEqual([A.id, B.id, A.id]);
      const aAll = await Promise.all(aResults);
      expect(done.indexOf("B")).toBeLessThanOrEqual(1);
      expect(done.filter((x) => x === "A")).toHaveLength(PER_AGENT);

      // Nothing lost: every accepted bundle answered in full, and every simulated call was audited once.
      const accepted = aAll.filter((r) => r.status === 200);
      expect(accepted).toHaveLength(PER_AGENT);
      for (const r of accepted) {
        expect(r.body.simulations).toHaveLength(20);
        for (const s of r.body.simulations) expect(s.status).toBe("success");
      }
      const auditAfter = (await svc.ctx.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'transaction.simulate'"))
        .rows[0].n;
      expect(auditAfter - auditBefore).toBe(PER_AGENT * 20 + 1);
      expect(queue.size()).toBe(0);
      // And A may simulate again once its work is done.
      expect((await submit(A, tx, "transactions/simulate")).status).toBe(200);
    });
  });
});
