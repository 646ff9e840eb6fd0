// Small helpers over app.inject for API tests: an operator key generated per run, agents with keys
// and tokens, and JSON in and out.
import { randomBytes } from "node:crypto";
import type { App } from "../../src/http/types.js";

export function newOperatorKey(): string {
  return "1ck_" + randomBytes(32).toString("base64url");
}

export interface Res<T = any> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | undefined>;
  raw: string;
}

export async function call<T = any>(
  app: App,
  method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE",
  url: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Res<T>> {
  const r = await app.inject({
    method,
    url,
    headers: {
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
      ...opts.headers,
    },
    payload: opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body),
  });
  let body: any = undefined;
  try {
    body = r.body ? JSON.parse(r.body) : undefined;
  } catch {
    body = r.body;
  }
  return { status: r.statusCode, body, headers: r.headers as Res["headers"], raw: r.body };
}

export interface TestAgent {
  id: string;
  apiKey: string;
  token: string;
}

export async function createAgent(app: App, operatorKey: string, fields: Record<string, unknown> = {}): Promise<TestAgent> {
  const created = await call(app, "POST", "/v1/agents", {
    token: operatorKey,
    body: { name: "agent", intents_api_enabled: true, ...fields },
  });
  if (created.status !== 201) throw new Error(`create agent: ${created.status} ${created.raw}`);
  const tok = await call(app, "POST", "/v1/auth/agent-token", { body: { api_key: created.body.api_key, agent_id: created.body.agent.id } });
  if (tok.status !== 200) throw new Error(`agent token: ${tok.status} ${tok.raw}`);
  return { id: created.body.agent.id, apiKey: created.body.api_key, token: tok.body.access_token };
}
