// Everything the service logs at the most verbose level, through a realistic session (operator and
// agent credentials, tokens, submits, denials, failures, bad credentials, a start with a PIN), must
// contain no API key, JWT or PIN.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { call, createAgent, newOperatorKey } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";

describe("logs", () => {
  const op = newOperatorKey();
  const pin = "pin-" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "intents-logs-")), "service.log");
  const secrets: string[] = [op, pin];

  // Registered before the service's hooks: the log is removed after the service has stopped.
  afterAll(async () => {
    fs.rmSync(path.dirname(logFile), { recursive: true, force: true });
  });
  const svc = useService({ env: { ADMIN_API_KEY: op, PKCS11_PIN: pin, LOG_LEVEL: "trace" }, start: { logFile } });

  it("a full session leaves no API key, PIN or JWT in the log", async () => {
    const agent = await createAgent(svc.app, op, { tx_max_value: "1" });
    secrets.push(agent.apiKey, agent.token);
    const body = { to: "0x000000000000000000000000000000000000dEaD", value: "0.01", chain: "local" };
    expect(
      (
        await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, {
          token: agent.token,
          body,
          headers: { "idempotency-key": "log-test" },
        })
      ).status,
    ).toBe(201);
    expect(
      (await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, { token: agent.apiKey, body: { ...body, value: "2" } })).status,
    ).toBe(403);
    expect((await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, { token: agent.token + "x", body })).status).toBe(401);
    expect((await call(svc.app, "POST", "/v1/auth/agent-token", { body: { api_key: agent.apiKey + "x" } })).status).toBe(401);
    const rotated = await call(svc.app, "POST", `/v1/agents/${agent.id}/rotate-key`, { token: op });
    secrets.push(rotated.body.api_key);
    const t2 = await call(svc.app, "POST", "/v1/auth/agent-token", { body: { api_key: rotated.body.api_key } });
    secrets.push(t2.body.access_token);
    await call(svc.app, "DELETE", "/v1/auth/token", { token: t2.body.access_token });
    await call(svc.app, "GET", `/v1/agents/${agent.id}/transactions?include_signed_tx=true`, { token: op });
    // Credentials in a query string must not be logged either.
    await call(svc.app, "GET", `/v1/health?api_key=${agent.apiKey}`);
    await call(svc.app, "POST", "/v1/agents", { token: op, body: "{broken" });

    const text = fs.readFileSync(logFile, "utf8");
    expect(text.length).toBeGreaterThan(1000); // the log really captured the session
    expect(text).toContain("incoming request");
    for (const s of secrets) expect(text.includes(s), `secret ${s.slice(0, 6)}… found in the log`).toBe(false);
    // No JWT-shaped string (three base64url parts, the first an encoded JSON header).
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
    expect(text).not.toMatch(/\b(ocv|1ck)_[A-Za-z0-9_-]{20,}/);
  });
});
