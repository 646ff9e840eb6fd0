// Authorization comes before validation on every route: an agent calling an operator route with a
// malformed body or query gets 403, never a 400 that would tell it the body's shape. The route list
// is the app's own (its OpenAPI description), so a new operator route without a guard fails here.
import { beforeAll, describe, expect, it } from "vitest";
import { call, createAgent } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";

/** The non-public routes an agent may call (on itself); every other non-public route is operators' only. */
const AGENT_ROUTES = new Set([
  "DELETE /v1/auth/token",
  "GET /v1/agents/me",
  "GET /v1/agents/{agent_id}",
  "POST /v1/agents/{agent_id}/transactions",
  "POST /v1/agents/{agent_id}/transactions/sign",
  "POST /v1/agents/{agent_id}/transactions/simulate",
  "POST /v1/agents/{agent_id}/transactions/simulate-bundle",
  "GET /v1/agents/{agent_id}/transactions",
  "GET /v1/agents/{agent_id}/transactions/{tx_id}",
  "POST /v1/agents/{agent_id}/sign",
  "GET /v1/agents/{agent_id}/signatures",
  "GET /v1/agents/{agent_id}/signing-keys",
  "GET /v1/agents/{agent_id}/signing-keys/{chain}/balance",
  // Approvals: an agent reads its own rules and its own approvals, and may cancel what it asked for.
  "GET /v1/agents/{agent_id}/approval-rules",
  "GET /v1/pending-approvals",
  "GET /v1/pending-approvals/{id}",
  "POST /v1/pending-approvals/{id}/cancel",
]);

/** Bodies no route accepts: unknown fields, wrong types, not an object at all. */
const MALFORMED: unknown[] = [{ __unknown_field: [1, 2, 3] }, { name: 42, chain: { x: 1 }, url: [] }, [1, 2], "not an object"];

describe("guards before validation", () => {
  let routes: Array<{ method: string; path: string; isPublic: boolean }>;
  const svc = useService({ agent: true });
  const { op } = svc;
  beforeAll(async () => {
    const spec = svc.app.swagger() as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    routes = Object.entries(spec.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, o]) => ({
        method: method.toUpperCase(),
        path,
        isPublic: Array.isArray(o.security) && o.security.length === 0,
      })),
    );
  });

  /** A concrete URL: the agent's own id where a route names an agent, a malformed query on every route. */
  const urlOf = (path: string) =>
    path.replace("{agent_id}", svc.agent.id).replace(/\{[a-z_]+\}/g, "00000000-0000-4000-8000-000000000000") +
    "?limit=-1&chain_status=nope&__unknown=1";

  it("the route list is the app's and holds the operator routes", () => {
    const keys = routes.map((r) => `${r.method} ${r.path}`);
    for (const known of AGENT_ROUTES) expect(keys).toContain(known);
    expect(routes.filter((r) => !r.isPublic && !AGENT_ROUTES.has(`${r.method} ${r.path}`)).length).toBeGreaterThanOrEqual(30);
  });

  it("an agent gets 403 on every operator route, whatever the body or query", async () => {
    const operatorRoutes = routes.filter((r) => !r.isPublic && !AGENT_ROUTES.has(`${r.method} ${r.path}`));
    const wrong: string[] = [];
    for (const r of operatorRoutes) {
      for (const body of r.method === "GET" ? [undefined] : MALFORMED) {
        const res = await call(svc.app, r.method as "GET", urlOf(r.path), {
          token: svc.agent.token,
          body: typeof body === "string" ? JSON.stringify(body) : body,
        });
        if (res.status !== 403) wrong.push(`${r.method} ${r.path} ${JSON.stringify(body)} → ${res.status} ${res.body?.code}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("an operator gets 403, not 400, on the routes that act as an agent", async () => {
    const asAgent = ["/transactions", "/transactions/sign", "/transactions/simulate", "/transactions/simulate-bundle", "/sign"];
    for (const p of asAgent) {
      for (const body of MALFORMED) {
        const res = await call(svc.app, "POST", `/v1/agents/${svc.agent.id}${p}`, {
          token: op,
          body: typeof body === "string" ? JSON.stringify(body) : body,
        });
        expect(res.status, `${p} ${JSON.stringify(body)}`).toBe(403);
      }
    }
  });

  it("an agent gets 403, not 400, acting on another agent's id", async () => {
    const other = await createAgent(svc.app, op);
    for (const p of ["/transactions", "/transactions/sign", "/transactions/simulate", "/transactions/simulate-bundle", "/sign"]) {
      const res = await call(svc.app, "POST", `/v1/agents/${other.id}${p}`, { token: svc.agent.token, body: MALFORMED[0] });
      expect(res.status, p).toBe(403);
    }
  });

  it("without a credential every non-public route answers 401 first", async () => {
    for (const r of routes.filter((x) => !x.isPublic)) {
      const res = await call(svc.app, r.method as "GET", urlOf(r.path), { body: r.method === "GET" ? undefined : MALFORMED[0] });
      expect(res.status, `${r.method} ${r.path}`).toBe(401);
    }
  });
});
