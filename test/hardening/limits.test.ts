// Limits that protect the service: the credential exchange is rate limited (429 + Retry-After), so are
// addresses that keep failing to authenticate anywhere (credential guessing), bodies
// over 5 MB are refused (413) on every route that takes one, and submits per signing address are
// bounded: past MAX_INFLIGHT_PER_ADDRESS the service sheds load with 503 + Retry-After instead of
// queueing on the nonce row lock. Every refusal is RFC 7807 and writes nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, createAgent, newOperatorKey, type TestAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { startTestService, type TestService } from "../helpers/service.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const MAX_INFLIGHT = 3;
const AUTH_FAILURES = 5;

describe("limits", () => {
  let svc: TestService;
  let agent: TestAgent;
  const op = newOperatorKey();

  beforeAll(async () => {
    svc = await startTestService({ ADMIN_API_KEY: op, MAX_INFLIGHT_PER_ADDRESS: String(MAX_INFLIGHT), AUTH_FAILURES_PER_MINUTE: String(AUTH_FAILURES) });
    agent = await createAgent(svc.app, op);
  });
  afterAll(async () => svc?.close());

  const counts = async () =>
    (await svc.ctx.pool.query(
      `SELECT (SELECT count(*)::int FROM transactions) AS t, (SELECT count(*)::int FROM agents) AS a,
              (SELECT count(*)::int FROM idempotency_keys WHERE state = 'in_flight') AS i`,
    )).rows[0] as { t: number; a: number; i: number };

  it("POST /v1/auth/agent-token: the 31st call in a minute from one address is 429 with Retry-After and a problem body", async () => {
    const created = await call(svc.app, "POST", "/v1/agents", { token: op, body: { name: "rl", intents_api_enabled: true } });
    const body = { api_key: created.body.api_key, agent_id: created.body.agent.id };
    const exchange = (remoteAddress: string, payload: unknown = body) =>
      svc.app.inject({ method: "POST", url: "/v1/auth/agent-token", remoteAddress, headers: { "content-type": "application/json" }, payload: JSON.stringify(payload) });

    const ok = await Promise.all(Array.from({ length: 30 }, () => exchange("10.1.2.3")));
    expect(ok.map((r) => r.statusCode)).toEqual(Array(30).fill(200));
    // Wrong keys count too: guessing is what the limit is for.
    const limited = await exchange("10.1.2.3", { api_key: "ocv_wrong" });
    expect(limited.statusCode).toBe(429);
    const retryAfter = Number(limited.headers["retry-after"]);
    expect(Number.isInteger(retryAfter)).toBe(true);
    // The window is a minute: the client is told to come back when it ends, not in one second.
    expect(retryAfter).toBeGreaterThan(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.headers["content-type"]).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(limited.body);
    assertMatchesReference("ProblemDetails", problem);
    expect(problem).toMatchObject({ status: 429, title: "Too Many Requests", code: "rate_limited" });
    expect(problem.detail.length).toBeGreaterThan(0);
    expect(limited.body).not.toContain(body.api_key);

    // The limit is per client address: another one is not affected.
    expect((await exchange("10.9.9.9")).statusCode).toBe(200);
  });

  it("credential guessing: past AUTH_FAILURES_PER_MINUTE failed authentications an address gets 429 + Retry-After, even with a valid token", async () => {
    const get = (remoteAddress: string, token: string) =>
      svc.app.inject({ method: "GET", url: `/v1/agents/${agent.id}/transactions`, remoteAddress, headers: { authorization: `Bearer ${token}` } });
    const guesses = await Promise.all(Array.from({ length: AUTH_FAILURES }, (_, i) => get("10.7.7.7", `ocv_guess_${i}`)));
    expect(guesses.map((r) => r.statusCode)).toEqual(Array(AUTH_FAILURES).fill(401));

    for (const token of ["ocv_one_more_guess", agent.token]) {
      const blocked = await get("10.7.7.7", token);
      expect(blocked.statusCode).toBe(429);
      const retryAfter = Number(blocked.headers["retry-after"]);
      expect(retryAfter).toBeGreaterThan(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      const problem = JSON.parse(blocked.body);
      assertMatchesReference("ProblemDetails", problem);
      expect(problem).toMatchObject({ status: 429, code: "too_many_failed_authentications" });
      expect(blocked.body).not.toContain(token);
    }
    // Per client address: the agent's own address still works.
    expect((await get("10.7.7.8", agent.token)).statusCode).toBe(200);
  });

  it("a body over 5 MB is 413 with a problem body on every route that takes one, and nothing is written", async () => {
    const before = await counts();
    const big = "x".repeat(5 * 1024 * 1024 + 1);
    const routes: Array<{ method: "POST" | "PATCH" | "PUT"; url: string; token?: string; payload: string }> = [
      { method: "POST", url: `/v1/agents/${agent.id}/transactions`, token: agent.token, payload: JSON.stringify({ to: DEAD, value: "0", chain: "local", data: "0x" + "ab".repeat(2_700_000) }) },
      { method: "POST", url: `/v1/agents/${agent.id}/transactions/sign`, token: agent.token, payload: JSON.stringify({ to: DEAD, value: "0", chain: "local", pad: big }) },
      { method: "POST", url: "/v1/agents", token: op, payload: JSON.stringify({ name: big }) },
      { method: "PATCH", url: `/v1/agents/${agent.id}`, token: op, payload: JSON.stringify({ description: big }) },
      { method: "POST", url: "/v1/auth/agent-token", payload: JSON.stringify({ api_key: big }) },
      { method: "POST", url: "/v1/signing-keys", token: op, payload: JSON.stringify({ path: big }) },
    ];
    for (const r of routes) {
      const res = await svc.app.inject({
        method: r.method,
        url: r.url,
        remoteAddress: "10.4.4.4",
        headers: { "content-type": "application/json", ...(r.token ? { authorization: `Bearer ${r.token}` } : {}) },
        payload: r.payload,
      });
      expect(res.statusCode, `${r.method} ${r.url}`).toBe(413);
      expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
      const problem = JSON.parse(res.body);
      assertMatchesReference("ProblemDetails", problem);
      expect(problem).toMatchObject({ status: 413, code: "payload_too_large" });
    }
    // Announced size alone is enough: the body is not read past the limit.
    const announced = await svc.app.inject({
      method: "POST",
      url: `/v1/agents/${agent.id}/transactions`,
      headers: { "content-type": "application/json", authorization: `Bearer ${agent.token}`, "content-length": String(6 * 1024 * 1024) },
      payload: "{}",
    });
    expect([400, 413]).toContain(announced.statusCode);
    expect(await counts()).toEqual(before);
  });

  it(`past ${MAX_INFLIGHT} submits in flight on one address, the rest are shed with 503 + Retry-After; nothing is queued or half-written`, async () => {
    const a = await createAgent(svc.app, op);
    const before = await counts();
    const keys = Array.from({ length: 40 }, (_, i) => `shed-${i}-${Math.random()}`);
    const submit = (key: string) =>
      call(svc.app, "POST", `/v1/agents/${a.id}/transactions`, { token: a.token, body: { to: DEAD, value: "0.001", chain: "local" }, headers: { "idempotency-key": key } });
    const t0 = performance.now();
    const results = await Promise.all(keys.map(async (k) => ({ ...(await submit(k)), ms: performance.now() - t0 })));

    const created = results.filter((r) => r.status === 201);
    const shed = results.filter((r) => r.status === 503);
    expect(created.length + shed.length).toBe(results.length);
    expect(created.length).toBeGreaterThanOrEqual(MAX_INFLIGHT);
    expect(shed.length).toBeGreaterThan(0);
    for (const r of shed) {
      expect(r.headers["retry-after"]).toBe("1");
      expect(r.headers["content-type"]).toMatch(/^application\/problem\+json/);
      assertMatchesReference("ProblemDetails", r.body);
      expect(r.body).toMatchObject({ status: 503, code: "address_busy" });
    }
    // Shed at once, not after waiting in a queue: every shed answer came back before the last accepted one.
    expect(Math.max(...shed.map((r) => r.ms))).toBeLessThan(Math.max(...created.map((r) => r.ms)));

    // Exactly the 201s were signed; shed requests left no claim behind and used no nonce.
    const after = await counts();
    expect(after.t - before.t).toBe(created.length);
    expect(after.i).toBe(0);
    const nonces = created.map((r) => Number(r.body.nonce)).sort((x, y) => x - y);
    const { rows } = await svc.ctx.pool.query<{ n: string }>(
      "SELECT nonce AS n FROM transactions WHERE from_address = $1 AND chain_id = 31337 ORDER BY nonce",
      [created[0].body.from.toLowerCase()],
    );
    const all = rows.map((r) => Number(r.n));
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => all[0] + i));
    expect(all.slice(-nonces.length)).toEqual(nonces);

    // A shed request retried with the same Idempotency-Key is simply processed.
    const retried = await Promise.all(keys.filter((_, i) => results[i].status === 503).slice(0, MAX_INFLIGHT).map(submit));
    for (const r of retried) expect(r.status).toBe(201);
    // Slots are given back: with nothing in flight, a new burst of MAX_INFLIGHT is accepted whole.
    expect(svc.ctx.inflight.inFlight(`31337:${created[0].body.from.toLowerCase()}`)).toBe(0);
  });

  it("the bound is per signing address: another address is not shed while one is saturated", async () => {
    const a = await createAgent(svc.app, op);
    const other = await call(svc.app, "POST", "/v1/signing-keys", { token: op, body: { path: `keys/limits-${Date.now()}`, chain: "local", agent_id: a.id } });
    expect(other.status).toBe(201);
    await svc.ctx.clients.get(svc.ctx.chains.resolve("local")!).request({ method: "anvil_setBalance" as never, params: [other.body.address, "0x3635c9adc5dea00000"] as never });
    const key = `31337:${(await svc.ctx.signer.getKey("keys/local-signer"))!.address.toLowerCase()}`;
    // Saturate the default address by holding its slots, then submit on the other one.
    const held = Array.from({ length: MAX_INFLIGHT }, () => svc.ctx.inflight.acquire(key));
    try {
      const busy = await call(svc.app, "POST", `/v1/agents/${a.id}/transactions`, { token: a.token, body: { to: DEAD, value: "0", chain: "local" } });
      expect(busy.status).toBe(503);
      expect(busy.headers["retry-after"]).toBe("1");
      const free = await call(svc.app, "POST", `/v1/agents/${a.id}/transactions`, { token: a.token, body: { to: DEAD, value: "0", chain: "local", signing_key_path: other.body.path } });
      expect(free.status).toBe(201);
    } finally {
      for (const release of held) release();
    }
    const after = await call(svc.app, "POST", `/v1/agents/${a.id}/transactions`, { token: a.token, body: { to: DEAD, value: "0", chain: "local" } });
    expect(after.status).toBe(201);
  });
});
