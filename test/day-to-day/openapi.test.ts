// The service's own OpenAPI description: public routes carry no security requirement, every other
// route keeps the document's bearer requirement; the operator-key routes are described.
import { beforeAll, describe, expect, it } from "vitest";
import { useService } from "../helpers/use-service.js";

describe("OpenAPI security", () => {
  const svc = useService({ env: { LOCAL_CHAIN: "off" } });
  let doc: { security: unknown; paths: Record<string, Record<string, { security?: unknown[] }>> };
  beforeAll(async () => {
    doc = (await svc.app.inject({ method: "GET", url: "/docs/json" })).json();
  });

  it("marks the public routes, and only them, as needing no bearer", async () => {
    expect(doc.security).toEqual([{ BearerAuth: [] }]);
    const open: string[] = [];
    for (const [p, ops] of Object.entries(doc.paths))
      for (const [m, op] of Object.entries(ops))
        if (Array.isArray(op.security) && op.security.length === 0) open.push(`${m.toUpperCase()} ${p}`);
    expect(open).toEqual(expect.arrayContaining(["GET /v1/chains", "GET /v1/health", "GET /v1/health/hsm", "POST /v1/auth/agent-token"]));
    for (const guarded of [
      "GET /v1/agents",
      "POST /v1/agents",
      "GET /v1/auth/api-keys",
      "POST /v1/auth/api-keys",
      "DELETE /v1/auth/api-keys/{key_id}",
      "GET /v1/transactions",
    ]) {
      expect(open).not.toContain(guarded);
    }
    // And they really answer without credentials, while a protected one does not.
    expect((await svc.app.inject({ method: "GET", url: "/v1/health" })).statusCode).toBe(200);
    expect((await svc.app.inject({ method: "GET", url: "/v1/auth/api-keys" })).statusCode).toBe(401);
  });

  it("describes the operator-key routes", () => {
    expect(Object.keys(doc.paths["/v1/auth/api-keys"]).sort()).toEqual(["get", "post"]);
    expect(Object.keys(doc.paths["/v1/auth/api-keys/{key_id}"])).toEqual(["delete"]);
  });
});
