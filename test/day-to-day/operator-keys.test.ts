// Operator keys as managed credentials: create (named, shown once), list (prefix, name, created, last
// used; never the key), revoke; audited; a revoked key gets 401 at once on every replica (two app
// instances with their own pools and AuthService on one database: no cache outlives a revocation);
// the key generated at first start can be revoked; the CLI does the same, and `--db` makes a key
// straight in the database when none is at hand.
import { execFile } from "node:child_process";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/http/types.js";
import { call } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";

const TSX = path.resolve("node_modules/.bin/tsx");

describe("operator keys", () => {
  // The second replica has its own pool and AuthService: no cache outlives a revocation.
  const svc = useService({ generatedOperatorKey: true, env: { LOCAL_CHAIN: "off" }, listen: true, replicas: 1 });
  let app2: App;
  let generated: string;

  beforeAll(() => {
    generated = svc.op;
    expect(generated).toMatch(/^1ck_/);
    app2 = svc.replicas[0].app;
  });

  const cli = (args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(
        TSX,
        ["src/cli.ts", ...args],
        { env: { PATH: process.env.PATH, HOME: process.env.HOME, INTENTS_URL: svc.baseUrl, ...env }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
      );
    });

  it("create (shown once), list, use on both replicas, revoke: 401 at once on both, audited", async () => {
    const created = await call(svc.app, "POST", "/v1/auth/api-keys", { token: generated, body: { name: "ci deploy" } });
    expect(created.status).toBe(201);
    const key: string = created.body.api_key;
    expect(key).toMatch(/^1ck_[A-Za-z0-9_-]{43}$/);
    expect(created.body.key).toMatchObject({
      name: "ci deploy",
      key_prefix: key.slice(0, 8),
      is_active: true,
      last_used_at: null,
      revoked_at: null,
    });
    const id = created.body.key.id;

    for (const app of [svc.app, app2]) expect((await call(app, "GET", "/v1/agents", { token: key })).status).toBe(200);
    const listed = await call(app2, "GET", "/v1/auth/api-keys", { token: generated });
    expect(listed.status).toBe(200);
    const mine = listed.body.keys.find((k: { id: string }) => k.id === id);
    expect(mine).toMatchObject({ name: "ci deploy", key_prefix: key.slice(0, 8), is_active: true });
    expect(Date.parse(mine.last_used_at)).toBeGreaterThan(Date.parse(mine.created_at) - 1000);
    expect(listed.raw).not.toContain(key);
    expect(listed.raw).not.toContain("key_hash");

    // Revoked on replica 1; the very next request on either replica is refused.
    expect((await call(svc.app, "DELETE", `/v1/auth/api-keys/${id}`, { token: generated })).status).toBe(204);
    for (const app of [app2, svc.app]) {
      const r = await call(app, "GET", "/v1/agents", { token: key });
      expect(r.status).toBe(401);
      expect(r.raw).not.toContain(key);
    }
    const after = await call(svc.app, "GET", "/v1/auth/api-keys", { token: generated });
    expect(after.body.keys.find((k: { id: string }) => k.id === id)).toMatchObject({ is_active: false });
    const audit = await svc.ctx.pool.query("SELECT action, details FROM audit_events WHERE resource_id = $1 ORDER BY seq", [id]);
    expect(audit.rows.map((r) => r.action)).toEqual(["operator_key.created", "operator_key.revoked"]);
    expect(JSON.stringify(audit.rows)).not.toContain(key);
  });

  it("the key generated at first start can be revoked (once another exists); the last active key cannot", async () => {
    const other = await call(svc.app, "POST", "/v1/auth/api-keys", { token: generated, body: { name: "replacement" } });
    const list = (await call(svc.app, "GET", "/v1/auth/api-keys", { token: generated })).body.keys as Array<{
      id: string;
      name: string;
      is_active: boolean;
    }>;
    const first = list.find((k) => k.name === "generated at first start")!;
    expect((await call(app2, "DELETE", `/v1/auth/api-keys/${first.id}`, { token: other.body.api_key })).status).toBe(204);
    expect((await call(svc.app, "GET", "/v1/agents", { token: generated })).status).toBe(401);
    expect((await call(app2, "GET", "/v1/agents", { token: generated })).status).toBe(401);

    const last = await call(svc.app, "DELETE", `/v1/auth/api-keys/${other.body.key.id}`, { token: other.body.api_key });
    expect(last.status).toBe(409);
    expect(last.body.code ?? last.body.type).toBeDefined();
    expect(last.raw).toContain("last active operator key");
    expect((await call(svc.app, "GET", "/v1/agents", { token: other.body.api_key })).status).toBe(200);
    generated = other.body.api_key;
  });

  it("refuses agents, bad bodies and unknown ids with clear errors, changing nothing", async () => {
    const agent = await call(svc.app, "POST", "/v1/agents", { token: generated, body: { name: "a" } });
    const agentKey = agent.body.api_key;
    expect((await call(svc.app, "POST", "/v1/auth/api-keys", { token: agentKey, body: { name: "x" } })).status).toBe(403);
    expect((await call(svc.app, "GET", "/v1/auth/api-keys", { token: agentKey })).status).toBe(403);
    const before = (await svc.ctx.pool.query("SELECT count(*)::int AS n FROM operator_keys")).rows[0].n;
    for (const body of [
      {},
      { name: "" },
      { name: "x".repeat(101) },
      { name: "x", scopes: ["all"] },
      { name: "x", expires_at: "2000-01-01T00:00:00Z" },
    ]) {
      const r = await call(svc.app, "POST", "/v1/auth/api-keys", { token: generated, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.headers["content-type"]).toMatch(/problem\+json/);
    }
    expect((await call(svc.app, "DELETE", "/v1/auth/api-keys/00000000-0000-4000-8000-000000000000", { token: generated })).status).toBe(
      404,
    );
    expect((await call(svc.app, "DELETE", "/v1/auth/api-keys/not-a-uuid", { token: generated })).status).toBe(400);
    expect((await svc.ctx.pool.query("SELECT count(*)::int AS n FROM operator_keys")).rows[0].n).toBe(before);
  });

  it("an expired key is refused", async () => {
    const soon = new Date(Date.now() + 1500).toISOString();
    const k = await call(svc.app, "POST", "/v1/auth/api-keys", { token: generated, body: { name: "short", expires_at: soon } });
    expect(k.status).toBe(201);
    expect((await call(svc.app, "GET", "/v1/agents", { token: k.body.api_key })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1600));
    expect((await call(app2, "GET", "/v1/agents", { token: k.body.api_key })).status).toBe(401);
  });

  it("CLI: api-keys create/list/revoke through the API, and create --db straight in the database", async () => {
    const made = await cli(["api-keys", "create", "--name", "from cli"], { INTENTS_OPERATOR_KEY: generated });
    expect(made.code, made.stderr).toBe(0);
    const out = JSON.parse(made.stdout);
    expect(out.api_key).toMatch(/^1ck_/);
    const listed = await cli(["api-keys", "list"], { INTENTS_OPERATOR_KEY: out.api_key });
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).keys.some((k: { id: string }) => k.id === out.key.id)).toBe(true);
    expect(listed.stdout).not.toContain(out.api_key);
    const revoked = await cli(["api-keys", "revoke", out.key.id], { INTENTS_OPERATOR_KEY: generated });
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await call(svc.app, "GET", "/v1/agents", { token: out.api_key })).status).toBe(401);

    const viaDb = await cli(["api-keys", "create", "--db", "--name", "recovery"], { DATABASE_URL: svc.databaseUrl });
    expect(viaDb.code, viaDb.stderr).toBe(0);
    const rec = JSON.parse(viaDb.stdout);
    expect((await call(app2, "GET", "/v1/agents", { token: rec.api_key })).status).toBe(200);
    const audit = await svc.ctx.pool.query("SELECT actor_id FROM audit_events WHERE action = 'operator_key.created' AND resource_id = $1", [
      rec.key.id,
    ]);
    expect(audit.rows).toEqual([{ actor_id: "cli" }]);
  });
});
