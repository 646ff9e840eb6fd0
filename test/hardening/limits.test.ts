// Limits that protect the service: the credential exchange is rate limited (429 + Retry-After);
// failed authentications are limited per address and per credential without locking out valid
// credentials (behind TRUST_PROXY, the address is the right-most untrusted X-Forwarded-For entry); bodies
// over 5 MB are refused (413) on every route that takes one, and submits per signing address are
// bounded: past MAX_INFLIGHT_PER_ADDRESS the service sheds load with 503 + Retry-After instead of
// queueing on the nonce row lock. Every refusal is RFC 7807 and writes nothing.
import { describe, expect, it } from "vitest";
import { generateApiKey } from "../../src/auth/keys.js";
import { call, createAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";

// Well-formed agent keys nobody holds, made per run (a key is never written into the repository).
const oneMoreGuess = generateApiKey("ocv_");
const anotherWrongKey = generateApiKey("ocv_");
const honestTypo = generateApiKey("ocv_");

const DEAD = "0x000000000000000000000000000000000000dEaD";
const MAX_INFLIGHT = 3;
const AUTH_FAILURES = 5;
const PER_CREDENTIAL = 3;
const PROXY = "10.0.0.1";

describe("limits", () => {
  const svc = useService({
    env: {
      MAX_INFLIGHT_PER_ADDRESS: String(MAX_INFLIGHT),
      AUTH_FAILURES_PER_MINUTE: String(AUTH_FAILURES),
      AUTH_FAILURES_PER_CREDENTIAL_PER_MINUTE: String(PER_CREDENTIAL),
      TRUST_PROXY: PROXY,
    },
    agent: true,
  });
  const { op } = svc;

  const counts = async () =>
    (
      await svc.ctx.pool.query(
        `SELECT (SELECT count(*)::int FROM transactions) AS t, (SELECT count(*)::int FROM agents) AS a,
              (SELECT count(*)::int FROM idempotency_keys WHERE state = 'in_flight') AS i`,
      )
    ).rows[0] as { t: number; a: number; i: number };
  const auditCount = async () => (await svc.ctx.pool.query("SELECT count(*)::int AS n FROM audit_events")).rows[0].n as number;

  it("POST /v1/auth/agent-token: the 31st exchange of one key in a minute is 429 with Retry-After; other keys from the same address are not held back", async () => {
    const created = await call(svc.app, "POST", "/v1/agents", { token: op, body: { name: "rl", intents_api_enabled: true } });
    const body = { api_key: created.body.api_key, agent_id: created.body.agent.id };
    const exchange = (remoteAddress: string, payload: unknown = body) =>
      svc.app.inject({
        method: "POST",
        url: "/v1/auth/agent-token",
        remoteAddress,
        headers: { "content-type": "application/json" },
        payload: JSON.stringify(payload),
      });

    const ok = await Promise.all(Array.from({ length: 30 }, () => exchange("10.1.2.3")));
    expect(ok.map((r) => r.statusCode)).toEqual(Array(30).fill(200));
    for (const address of ["10.1.2.3", "10.9.9.9"]) {
      const limited = await exchange(address);
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
    }

    // Another agent behind the same address exchanges its key as usual.
    const other = await call(svc.app, "POST", "/v1/agents", { token: op, body: { name: "rl-2", intents_api_enabled: true } });
    expect((await exchange("10.1.2.3", { api_key: other.body.api_key })).statusCode).toBe(200);
    // Wrong keys are failed authentications: past AUTH_FAILURES_PER_MINUTE from one address they get
    // 429, while a valid key from that address is still exchanged.
    const wrong = [];
    for (let i = 0; i < AUTH_FAILURES + 2; i++)
      wrong.push((await exchange("10.1.2.4", { api_key: `ocv_wrong_${i}_${"w".repeat(40)}` })).statusCode);
    expect(wrong).toEqual([...Array(AUTH_FAILURES).fill(401), 429, 429]);
    expect((await exchange("10.1.2.4", { api_key: other.body.api_key })).statusCode).toBe(200);
  });

  it("credential guessing: 60 bad ocv_ keys from one address get 429 past AUTH_FAILURES_PER_MINUTE, while valid credentials from that address are served", async () => {
    const get = (remoteAddress: string, token: string, headers: Record<string, string> = {}) =>
      svc.app.inject({
        method: "GET",
        url: `/v1/agents/${svc.agent.id}/transactions`,
        remoteAddress,
        headers: { authorization: `Bearer ${token}`, ...headers },
      });
    const before = await counts();
    const audit = await auditCount();
    const guesses = [];
    for (let i = 0; i < 60; i++) guesses.push(await get("10.7.7.7", `ocv_guess_${i}_${"x".repeat(40)}`));
    expect(guesses.slice(0, AUTH_FAILURES).map((r) => r.statusCode)).toEqual(Array(AUTH_FAILURES).fill(401));
    expect(guesses.slice(AUTH_FAILURES).map((r) => r.statusCode)).toEqual(Array(60 - AUTH_FAILURES).fill(429));
    const blocked = guesses[59]!;
    const retryAfter = Number(blocked.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThan(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const problem = JSON.parse(blocked.body);
    assertMatchesReference("ProblemDetails", problem);
    expect(problem).toMatchObject({ status: 429, code: "too_many_failed_authentications" });
    expect(blocked.body).not.toContain("ocv_guess");

    // The guilty are slowed, not the innocent behind the same address: a valid JWT, the agent's own
    // key and the operator key from 10.7.7.7 are all served.
    expect((await get("10.7.7.7", svc.agent.token)).statusCode).toBe(200);
    expect((await get("10.7.7.7", svc.agent.apiKey)).statusCode).toBe(200);
    expect(
      (await svc.app.inject({ method: "GET", url: "/v1/agents", remoteAddress: "10.7.7.7", headers: { authorization: `Bearer ${op}` } }))
        .statusCode,
    ).toBe(200);
    // ...and a further bad key from there is still 429, a bad key from another address a plain 401.
    expect((await get("10.7.7.7", oneMoreGuess)).statusCode).toBe(429);
    expect((await get("10.7.7.8", oneMoreGuess)).statusCode).toBe(401);
    // Nothing was written by any of it.
    expect(await counts()).toEqual(before);
    expect(await auditCount()).toBe(audit);
  });

  it("a credential that keeps failing is refused per credential (by its hash), from any address; its owner's valid key is never blocked", async () => {
    const get = (remoteAddress: string, token: string) =>
      svc.app.inject({
        method: "GET",
        url: `/v1/agents/${svc.agent.id}/transactions`,
        remoteAddress,
        headers: { authorization: `Bearer ${token}` },
      });
    // A revoked token retried in a loop, from a different address each time (per-address limits never trip).
    const revoked = (await createAgent(svc.app, op)).token;
    expect((await call(svc.app, "DELETE", "/v1/auth/token", { token: revoked })).status).toBe(204);
    const tries = [];
    for (let i = 0; i < PER_CREDENTIAL + 3; i++) tries.push((await get(`10.30.0.${i + 1}`, revoked)).statusCode);
    expect(tries).toEqual([...Array(PER_CREDENTIAL).fill(401), ...Array(3).fill(429)]);
    // Another credential from those addresses is unaffected.
    expect((await get("10.30.0.1", anotherWrongKey)).statusCode).toBe(401);

    // Failures are counted by the whole credential, never a part of it: keys sharing the valid key's
    // prefix (what listings show), or tokens claiming its agent, lock nobody out.
    for (let i = 0; i < PER_CREDENTIAL + 2; i++) {
      expect([401, 429]).toContain((await get(`10.31.0.${i + 1}`, `${svc.agent.apiKey.slice(0, 12)}${"A".repeat(31)}${i}`)).statusCode);
      const [h, , sig] = svc.agent.token.split(".");
      const forged = `${h}.${Buffer.from(JSON.stringify({ sub: `agent:${svc.agent.id}`, exp: 4102444800, jti: String(i) })).toString("base64url")}.${sig}`;
      expect([401, 429]).toContain((await get(`10.32.0.${i + 1}`, forged)).statusCode);
    }
    expect((await get("10.33.0.1", svc.agent.apiKey)).statusCode).toBe(200);
    expect((await get("10.33.0.1", svc.agent.token)).statusCode).toBe(200);
  });

  it("TRUST_PROXY: the client is the right-most X-Forwarded-For entry the trusted proxy did not write, so a forged left-most entry escapes nothing", async () => {
    const viaProxy = (xff: string, token: string) =>
      svc.app.inject({
        method: "GET",
        url: `/v1/agents/${svc.agent.id}/transactions`,
        remoteAddress: PROXY,
        headers: { authorization: `Bearer ${token}`, "x-forwarded-for": xff },
      });
    // The attacker at 203.0.113.9 writes a new "client address" in front of each guess; the proxy appends the real one.
    const codes = [];
    for (let i = 0; i < AUTH_FAILURES + 3; i++)
      codes.push((await viaProxy(`198.18.0.${i + 1}, 203.0.113.9`, `ocv_proxy_guess_${i}_${"y".repeat(32)}`)).statusCode);
    expect(codes).toEqual([...Array(AUTH_FAILURES).fill(401), ...Array(3).fill(429)]);
    // Another client behind the same proxy is neither blocked nor blamed; a valid token of the attacker's address still works.
    expect((await viaProxy("198.51.100.7", honestTypo)).statusCode).toBe(401);
    expect((await viaProxy("203.0.113.9", svc.agent.token)).statusCode).toBe(200);
    // The audit trail records the same address the limits use.
    const res = await svc.app.inject({
      method: "DELETE",
      url: "/v1/auth/token",
      remoteAddress: PROXY,
      headers: { authorization: `Bearer ${(await createAgent(svc.app, op)).token}`, "x-forwarded-for": "6.6.6.6, 198.51.100.20" },
    });
    expect(res.statusCode).toBe(204);
    const { rows } = await svc.ctx.pool.query(
      "SELECT ip_address FROM audit_events WHERE action = 'agent.token_revoked' ORDER BY seq DESC LIMIT 1",
    );
    expect(String(rows[0].ip_address)).toBe("198.51.100.20");
  });

  it("a body over 5 MB is 413 with a problem body on every route that takes one, and nothing is written", async () => {
    const before = await counts();
    const big = "x".repeat(5 * 1024 * 1024 + 1);
    const routes: Array<{ method: "POST" | "PATCH" | "PUT"; url: string; token?: string; payload: string }> = [
      {
        method: "POST",
        url: `/v1/agents/${svc.agent.id}/transactions`,
        token: svc.agent.token,
        payload: JSON.stringify({ to: DEAD, value: "0", chain: "local", data: "0x" + "ab".repeat(2_700_000) }),
      },
      {
        method: "POST",
        url: `/v1/agents/${svc.agent.id}/transactions/sign`,
        token: svc.agent.token,
        payload: JSON.stringify({ to: DEAD, value: "0", chain: "local", pad: big }),
      },
      { method: "POST", url: "/v1/agents", token: op, payload: JSON.stringify({ name: big }) },
      { method: "PATCH", url: `/v1/agents/${svc.agent.id}`, token: op, payload: JSON.stringify({ description: big }) },
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
      url: `/v1/agents/${svc.agent.id}/transactions`,
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${svc.agent.token}`,
        "content-length": String(6 * 1024 * 1024),
      },
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
      call(svc.app, "POST", `/v1/agents/${a.id}/transactions`, {
        token: a.token,
        body: { to: DEAD, value: "0.001", chain: "local" },
        headers: { "idempotency-key": key },
      });
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
    const retried = await Promise.all(
      keys
        .filter((_, i) => results[i].status === 503)
        .slice(0, MAX_INFLIGHT)
        .map(submit),
    );
    for (const r of retried) expect(r.status).toBe(201);
    // Slots are given back: with nothing in flight, a new burst of MAX_INFLIGHT is accepted whole.
    expect(svc.ctx.admission.inFlight(`31337:${created[0].body.from.toLowerCase()}`)).toBe(0);
  });

  it("the bound is per signing address: another address is not shed while one is saturated", async () => {
    const a = await createAgent(svc.app, op);
    const other = await call(svc.app, "POST", "/v1/signing-keys", {
      token: op,
      body: { path: `keys/limits-${Date.now()}`, chain: "local", agent_id: a.id },
    });
    expect(other.status).toBe(201);
    await svc.ctx.clients
      .get(svc.ctx.chains.resolve("local")!)
      .request({ method: "anvil_setBalance" as never, params: [other.body.address, "0x3635c9adc5dea00000"] as never });
    const key = `31337:${(await svc.ctx.signer.getKey("keys/local-signer"))!.address.toLowerCase()}`;
    // Saturate the default address by holding its slots, then submit on the other one.
    const held = Array.from({ length: MAX_INFLIGHT }, () => svc.ctx.admission.acquire(key));
    try {
      const busy = await call(svc.app, "POST", `/v1/agents/${a.id}/transactions`, {
        token: a.token,
        body: { to: DEAD, value: "0", chain: "local" },
      });
      expect(busy.status).toBe(503);
      expect(busy.headers["retry-after"]).toBe("1");
      const free = await call(svc.app, "POST", `/v1/agents/${a.id}/transactions`, {
        token: a.token,
        body: { to: DEAD, value: "0", chain: "local", signing_key_path: other.body.path },
      });
      expect(free.status).toBe(201);
    } finally {
      for (const release of held) release();
    }
    const after = await call(svc.app, "POST", `/v1/agents/${a.id}/transactions`, {
      token: a.token,
      body: { to: DEAD, value: "0", chain: "local" },
    });
    expect(after.status).toBe(201);
  });
});
