// The OpenAPI description, its UI, and Prometheus metrics.
import { describe, expect, it } from "vitest";
import { call, createAgent } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";

describe("docs and metrics", () => {
  const svc = useService();
  const { op } = svc;

  it("serves an OpenAPI 3 description generated from the route schemas, publicly", async () => {
    const r = await call(svc.app, "GET", "/docs/json");
    expect(r.status).toBe(200);
    expect(r.body.openapi).toMatch(/^3\./);
    const paths = r.body.paths;
    for (const p of [
      "/v1/agents/{agent_id}/transactions",
      "/v1/agents/{agent_id}/transactions/sign",
      "/v1/agents",
      "/v1/auth/agent-token",
      "/v1/chains",
      "/v1/audit/verify",
      "/v1/health",
    ]) {
      expect(paths[p], p).toBeDefined();
    }
    const submitBody = paths["/v1/agents/{agent_id}/transactions"].post.requestBody.content["application/json"].schema;
    expect(submitBody.required).toEqual(expect.arrayContaining(["to", "value", "chain"]));
    expect(Object.keys(submitBody.properties)).toEqual(expect.arrayContaining(["data", "gas_limit", "max_fee_per_gas", "simulate_first"]));
    const ui = await svc.app.inject({ method: "GET", url: "/docs/" });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers["content-type"]).toMatch(/html/);
  });

  it("exposes Prometheus metrics: request latency per route, pipeline stages, HSM signing, denials", async () => {
    const agent = await createAgent(svc.app, op, { tx_max_value: "0.01" });
    const body = { to: "0x000000000000000000000000000000000000dEaD", value: "0.001", chain: "local" };
    expect((await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, { token: agent.token, body })).status).toBe(201);
    expect(
      (await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, { token: agent.token, body: { ...body, value: "1" } })).status,
    ).toBe(403);
    const m = await svc.app.inject({ method: "GET", url: "/metrics" });
    expect(m.statusCode).toBe(200);
    expect(m.headers["content-type"]).toMatch(/text\/plain/);
    const text = m.body;
    expect(text).toMatch(
      /intents_http_request_duration_seconds_count\{method="POST",route="\/v1\/agents\/:agent_id\/transactions",status="201"\} 1/,
    );
    expect(text).toMatch(/intents_hsm_sign_duration_seconds_count \d+/);
    for (const stage of ["guardrails", "chain_read", "lock_wait", "sign", "commit", "broadcast"]) {
      expect(text, stage).toMatch(new RegExp(`intents_submit_stage_duration_seconds_count\\{stage="${stage}"\\} [1-9]`));
    }
    expect(text).toMatch(/intents_guardrail_denials_total\{rule="max_value_exceeded"\} 1/);
    expect(text).toMatch(/intents_broadcast_results_total\{chain="local",outcome="accepted"\} 1/);
    expect(text).not.toContain(agent.token);
  });

  it("/metrics without credentials: open to a loopback client of a loopback service only; anyone else is 401", async () => {
    expect((await svc.app.inject({ method: "GET", url: "/metrics", remoteAddress: "127.0.0.1" })).statusCode).toBe(200);
    const remote = await svc.app.inject({ method: "GET", url: "/metrics", remoteAddress: "10.20.30.40" });
    expect(remote.statusCode).toBe(401);
    expect(JSON.parse(remote.body)).toMatchObject({ status: 401, code: "unauthorized" });
    expect(remote.body).not.toContain("intents_");
    // An operator key opens it from anywhere.
    expect(
      (await svc.app.inject({ method: "GET", url: "/metrics", remoteAddress: "10.20.30.40", headers: { authorization: `Bearer ${op}` } }))
        .statusCode,
    ).toBe(200);
  });
});

describe("metrics on a service reachable from outside (HOST=0.0.0.0, METRICS_TOKEN)", () => {
  const scrape = "scrape-" + "k".repeat(24);
  const svc = useService({ env: { HOST: "0.0.0.0", METRICS_TOKEN: scrape, AUTH_FAILURES_PER_MINUTE: "3" } });
  const { op } = svc;

  const get = (token?: string, remoteAddress = "127.0.0.1") =>
    svc.app.inject({ method: "GET", url: "/metrics", remoteAddress, headers: token ? { authorization: `Bearer ${token}` } : {} });

  it("needs METRICS_TOKEN or an operator key, even from loopback; an agent is 403; wrong tokens count as failed authentications", async () => {
    expect((await get()).statusCode).toBe(401);
    const ok = await get(scrape, "10.1.1.1");
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toMatch(/intents_http_request_duration_seconds/);
    expect((await get(op, "10.1.1.1")).statusCode).toBe(200);
    const agent = await createAgent(svc.app, op);
    const asAgent = await get(agent.token, "10.1.1.1");
    expect(asAgent.statusCode).toBe(403);
    expect(asAgent.body).not.toContain("intents_");
    // Guessing the scrape token is credential guessing like any other.
    const guesses = [];
    for (let i = 0; i < 5; i++) guesses.push((await get(`${scrape}-${i}`, "10.2.2.2")).statusCode);
    expect(guesses).toEqual([401, 401, 401, 429, 429]);
    expect((await get(scrape, "10.2.2.2")).statusCode).toBe(200);
  });
});
