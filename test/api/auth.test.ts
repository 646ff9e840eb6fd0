// Principals and authentication: each failure is the contract's status, and nothing is signed.
import { SignJWT, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { call, createAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";

const TX = { to: "0x000000000000000000000000000000000000dEaD", value: "0.001", chain: "local" };

describe("auth", () => {
  const svc = useService({ agent: { token_ttl_seconds: 600 } });
  const { op } = svc;
  const txCount = async () => Number((await svc.ctx.pool.query("SELECT count(*) FROM transactions")).rows[0].count);

  const submitAs = (token: string | undefined, agentId = svc.agent.id) =>
    call(svc.app, "POST", `/v1/agents/${agentId}/transactions`, { token, body: TX });

  it("creates agents for operators only; the key is shown once and stored only as a hash", async () => {
    const r = await call(svc.app, "POST", "/v1/agents", { token: op, body: { name: "n", tx_max_value_eth: "1.5", tx_daily_limit: "3" } });
    expect(r.status).toBe(201);
    assertMatchesReference("AgentCreatedResponse", r.body);
    expect(r.body.api_key).toMatch(/^ocv_[A-Za-z0-9_-]{43}$/);
    expect(r.body.agent).toMatchObject({
      intents_api_enabled: false,
      tx_max_value: "1.5",
      tx_max_value_eth: "1.5",
      tx_daily_limit: "3",
      tx_count_today: 0,
    });
    const stored = await svc.ctx.pool.query("SELECT * FROM agents WHERE id = $1", [r.body.agent.id]);
    expect(JSON.stringify(stored.rows[0])).not.toContain(r.body.api_key);
    const get = await call(svc.app, "GET", `/v1/agents/${r.body.agent.id}`, { token: op });
    assertMatchesReference("AgentResponse", get.body);
    expect(JSON.stringify(get.body)).not.toContain(r.body.api_key);
    const list = await call(svc.app, "GET", "/v1/agents", { token: op });
    assertMatchesReference("AgentListResponse", list.body);
    expect((await call(svc.app, "POST", "/v1/agents", { token: svc.agent.token, body: { name: "x" } })).status).toBe(403);
    expect((await call(svc.app, "POST", "/v1/agents", { body: { name: "x" } })).status).toBe(401);
    expect(
      (await call(svc.app, "POST", "/v1/agents", { token: op, body: { name: "x", tx_max_value: "1", tx_max_value_eth: "2" } })).status,
    ).toBe(400);
  });

  it("exchanges an agent key for an EdDSA JWT with the agent id and expiry", async () => {
    const r = await call(svc.app, "POST", "/v1/auth/agent-token", { body: { api_key: svc.agent.apiKey } });
    expect(r.status).toBe(200);
    assertMatchesReference("TokenResponse", r.body);
    expect(r.body).toMatchObject({ token_type: "Bearer", expires_in: 600, agent_id: svc.agent.id });
    const [header, payload] = r.body.access_token
      .split(".")
      .slice(0, 2)
      .map((p: string) => JSON.parse(Buffer.from(p, "base64url").toString()));
    expect(header.alg).toBe("EdDSA");
    expect(payload.sub).toBe(`agent:${svc.agent.id}`);
    expect(typeof payload.jti).toBe("string");
    expect(payload.exp - payload.iat).toBe(600);
    const bad = await call(svc.app, "POST", "/v1/auth/agent-token", { body: { api_key: "ocv_" + "x".repeat(43) } });
    expect(bad.status).toBe(401);
    assertMatchesReference("ProblemDetails", bad.body);
    const wrongId = await call(svc.app, "POST", "/v1/auth/agent-token", {
      body: { api_key: svc.agent.apiKey, agent_id: "00000000-0000-4000-8000-000000000000" },
    });
    expect(wrongId.status).toBe(401);
  });

  it("accepts the agent key directly as a bearer credential", async () => {
    const r = await submitAs(svc.agent.apiKey);
    expect(r.status).toBe(201);
  });

  it("answers each bad credential with the contract's status and signs nothing", async () => {
    const before = await txCount();
    const other = await createAgent(svc.app, op);
    const disabled = await createAgent(svc.app, op, { intents_api_enabled: false });
    // A JWT signed by a different key, and an expired one signed by ours.
    const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: "EdDSA" })
      .setSubject(`agent:${svc.agent.id}`)
      .setIssuer("intents-signer")
      .setAudience("intents-api")
      .setJti("x")
      .setExpirationTime("1h")
      .sign(privateKey);
    const expired = (await svc.ctx.auth.jwt.issue(svc.agent.id, -10)).token;

    const cases: Array<[string, string | undefined, string, number]> = [
      ["no token", undefined, svc.agent.id, 401],
      ["garbage token", "not-a-jwt", svc.agent.id, 401],
      ["forged token", forged, svc.agent.id, 401],
      ["expired token", expired, svc.agent.id, 401],
      ["unknown api key", "ocv_" + "A".repeat(43), svc.agent.id, 401],
      ["unknown operator key", "1ck_" + "A".repeat(43), svc.agent.id, 401],
      ["other agent's id", other.token, svc.agent.id, 403],
      ["operator submitting", op, svc.agent.id, 403],
      ["intents disabled", disabled.token, disabled.id, 403],
    ];
    for (const [name, token, id, status] of cases) {
      const r = await submitAs(token, id);
      expect(r.status, name).toBe(status);
      assertMatchesReference("ProblemDetails", r.body);
      expect(r.body.status, name).toBe(status);
      expect(typeof r.body.detail, name).toBe("string");
    }
    // A malformed Authorization scheme is 401 too.
    const basic = await call(svc.app, "POST", `/v1/agents/${svc.agent.id}/transactions`, {
      headers: { authorization: "Basic abc" },
      body: TX,
    });
    expect(basic.status).toBe(401);
    expect(await txCount()).toBe(before);
  });

  it("revokes the presented token", async () => {
    const t = await call(svc.app, "POST", "/v1/auth/agent-token", { body: { api_key: svc.agent.apiKey } });
    const token = t.body.access_token;
    expect((await call(svc.app, "GET", "/v1/agents/me", { token })).status).toBe(200);
    expect((await call(svc.app, "DELETE", "/v1/auth/token", { token })).status).toBe(204);
    const before = await txCount();
    expect((await submitAs(token)).status).toBe(401);
    expect((await call(svc.app, "GET", "/v1/agents/me", { token })).status).toBe(401);
    expect(await txCount()).toBe(before);
    // Other tokens of the agent still work.
    expect((await call(svc.app, "GET", "/v1/agents/me", { token: svc.agent.token })).status).toBe(200);
  });

  it("rotating the key revokes the old key and every token issued before", async () => {
    const a = await createAgent(svc.app, op);
    const rot = await call(svc.app, "POST", `/v1/agents/${a.id}/rotate-key`, { token: op });
    expect(rot.status).toBe(200);
    assertMatchesReference("AgentKeyRotatedResponse", rot.body);
    const before = await txCount();
    expect((await submitAs(a.token, a.id)).status).toBe(401);
    expect((await submitAs(a.apiKey, a.id)).status).toBe(401);
    expect((await call(svc.app, "POST", "/v1/auth/agent-token", { body: { api_key: a.apiKey } })).status).toBe(401);
    expect(await txCount()).toBe(before);
    const fresh = await call(svc.app, "POST", "/v1/auth/agent-token", { body: { api_key: rot.body.api_key } });
    expect(fresh.status).toBe(200);
    expect((await submitAs(fresh.body.access_token, a.id)).status).toBe(201);
    // Agents cannot rotate keys or change their own guardrails.
    expect((await call(svc.app, "POST", `/v1/agents/${a.id}/rotate-key`, { token: fresh.body.access_token })).status).toBe(403);
    expect(
      (await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: fresh.body.access_token, body: { tx_max_value: "100" } })).status,
    ).toBe(403);
  });

  it("operators update guardrails (aliases included) and deactivate agents", async () => {
    const a = await createAgent(svc.app, op);
    const r = await call(svc.app, "PATCH", `/v1/agents/${a.id}`, {
      token: op,
      body: { tx_daily_limit_eth: "2", tx_to_allowlist: ["0x000000000000000000000000000000000000DEAD"], tx_max_per_day: 5 },
    });
    expect(r.status).toBe(200);
    assertMatchesReference("AgentResponse", r.body);
    expect(r.body).toMatchObject({
      tx_daily_limit: "2",
      tx_to_allowlist: ["0x000000000000000000000000000000000000dead"],
      tx_max_per_day: 5,
    });
    const cleared = await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body: { tx_daily_limit: null } });
    expect(cleared.body.tx_daily_limit).toBeUndefined();
    await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body: { is_active: false } });
    expect((await submitAs(a.token, a.id)).status).toBe(401);
    expect(
      (await call(svc.app, "PATCH", `/v1/agents/00000000-0000-4000-8000-000000000000`, { token: op, body: { name: "x" } })).status,
    ).toBe(404);
    expect((await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body: { bogus: 1 } })).status).toBe(400);
  });

  it("an unknown route is a 404 problem, and health is public", async () => {
    const r = await call(svc.app, "GET", "/v1/nope");
    expect(r.status).toBe(404);
    assertMatchesReference("ProblemDetails", r.body);
    const h = await call(svc.app, "GET", "/v1/health");
    expect(h.status).toBe(200);
    assertMatchesReference("HealthResponse", h.body);
  });
});
