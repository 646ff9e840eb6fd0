// The OpenAPI description, its UI, and Prometheus metrics.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, createAgent, newOperatorKey } from "../helpers/api.js";
import { startTestService, type TestService } from "../helpers/service.js";

describe("docs and metrics", () => {
  let svc: TestService;
  const op = newOperatorKey();
  beforeAll(async () => {
    svc = await startTestService({ ADMIN_API_KEY: op });
  });
  afterAll(async () => svc?.close());

  it("serves an OpenAPI 3 description generated from the route schemas, publicly", async () => {
    const r = await call(svc.app, "GET", "/docs/json");
    expect(r.status).toBe(200);
    expect(r.body.openapi).toMatch(/^3\./);
    const paths = r.body.paths;
    for (const p of ["/v1/agents/{agent_id}/transactions", "/v1/agents/{agent_id}/transactions/sign", "/v1/agents", "/v1/auth/agent-token", "/v1/chains", "/v1/audit/verify", "/v1/health"]) {
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
    expect((await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, { token: agent.token, body: { ...body, value: "1" } })).status).toBe(403);
    const m = await svc.app.inject({ method: "GET", url: "/metrics" });
    expect(m.statusCode).toBe(200);
    expect(m.headers["content-type"]).toMatch(/text\/plain/);
    const text = m.body;
    expect(text).toMatch(/intents_http_request_duration_seconds_count\{method="POST",route="\/v1\/agents\/:agent_id\/transactions",status="201"\} 1/);
    expect(text).toMatch(/intents_hsm_sign_duration_seconds_count \d+/);
    for (const stage of ["guardrails", "chain_read", "lock_wait", "sign", "commit", "broadcast"]) {
      expect(text, stage).toMatch(new RegExp(`intents_submit_stage_duration_seconds_count\\{stage="${stage}"\\} [1-9]`));
    }
    expect(text).toMatch(/intents_guardrail_denials_total\{rule="max_value_exceeded"\} 1/);
    expect(text).toMatch(/intents_broadcast_results_total\{chain="local",outcome="accepted"\} 1/);
    expect(text).not.toContain(agent.token);
  });
});
