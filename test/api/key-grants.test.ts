// Signing keys are granted, not guessed, against the real stack (SoftHSM, Postgres, anvil): each attack
// of an agent on a key that is not its own is refused with the same 404 as a key that does not exist,
// and nothing is signed with that key (no transaction row, the key's nonce on chain unchanged).
import { execFile } from "node:child_process";
import path from "node:path";
import { createPublicClient, http, type Address } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { LOCAL_SIGNER_PATH } from "../../src/context.js";
import { keyUsableBy, type KeyAccess } from "../../src/pipeline/resolve.js";
import { call, createAgent, type TestAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";
import fc from "fast-check";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const TSX = path.resolve("node_modules/.bin/tsx");

describe("signing-key grants", () => {
  const svc = useService({ env: { TRACKER: "off" } });
  const { op } = svc;
  let base: string;
  let chain: ReturnType<typeof createPublicClient>;
  let a: TestAgent;
  let b: TestAgent;

  beforeAll(async () => {
    base = await svc.app.listen({ port: 0, host: "127.0.0.1" });
    chain = createPublicClient({ transport: http(svc.ctx.localChainUrl!) });
    a = await createAgent(svc.app, op, { name: "grant-a" });
    b = await createAgent(svc.app, op, { name: "grant-b" });
  });

  const submit = (agent: TestAgent, keyPath?: string) =>
    call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, {
      token: agent.token,
      body: { to: DEAD, value: "0", chain: "local", gas_limit: 21000, ...(keyPath ? { signing_key_path: keyPath } : {}) },
    });
  const simulate = (agent: TestAgent, keyPath: string) =>
    call(svc.app, "POST", `/v1/agents/${agent.id}/transactions/simulate`, {
      token: agent.token,
      body: { to: DEAD, value: "0", chain: "local", signing_key_path: keyPath },
    });
  const createKey = async (body: Record<string, unknown>) => {
    const r = await call(svc.app, "POST", "/v1/signing-keys", { token: op, body: { chain: "local", ...body } });
    expect(r.status, r.raw).toBe(201);
    return r.body as { id: string; path: string; address: Address };
  };
  /** What the agent sees for a key it may not use: the body of a key that does not exist, byte for byte. */
  const refusal = async (agent: TestAgent) => (await submit(agent, "keys/never-created")).raw;
  const signedWith = async (keyPath: string) =>
    Number((await svc.ctx.pool.query("SELECT count(*) FROM transactions WHERE signing_key_path = $1", [keyPath])).rows[0].count);
  /** Refused, the same answer as for no key at all, and nothing signed with the key. */
  async function expectRefused(agent: TestAgent, key: { path: string; address: Address }) {
    const before = await chain.getTransactionCount({ address: key.address, blockTag: "pending" });
    const rowsBefore = await signedWith(key.path);
    const r = await submit(agent, key.path);
    expect(r.status).toBe(404);
    assertMatchesReference("ProblemDetails", r.body);
    expect(r.raw).toBe(await refusal(agent));
    expect(await signedWith(key.path)).toBe(rowsBefore);
    expect(await chain.getTransactionCount({ address: key.address, blockTag: "pending" })).toBe(before);
    const sim = await simulate(agent, key.path);
    expect(sim.status).toBe(404);
    expect(sim.raw).toBe(await refusal(agent));
  }

  it("the chain's shared signer keeps working by default, explicitly or not", async () => {
    expect((await submit(a)).body.signing_key_path).toBe(LOCAL_SIGNER_PATH);
    expect((await submit(a, LOCAL_SIGNER_PATH)).status).toBe(201);
  });

  it("a key under keys/ or wallets/ that was not granted is refused like a key that does not exist", async () => {
    const treasury = await createKey({ path: "keys/treasury" });
    const wallet = await createKey({ path: "wallets/cold" });
    await expectRefused(a, treasury);
    await expectRefused(a, wallet);
  });

  it("a key created for agent B, under any path, is B's alone", async () => {
    const bHot = await createKey({ path: "keys/b-hot", agent_id: b.id });
    const bOwn = await createKey({ path: `agents/${b.id}/hot` });
    await expectRefused(a, bHot);
    await expectRefused(a, bOwn);
    // Not even the shared-signer path helps: a key bound to an agent is not shared.
    for (const k of [bHot, bOwn]) expect((await submit(b, k.path)).status).toBe(201);
  });

  it("an operator grants a key (API and CLI), the agent signs with it, the grant is revoked, it is refused again; all audited", async () => {
    const ops = await createKey({ path: "keys/ops" });
    await expectRefused(a, ops);

    const granted = await call(svc.app, "POST", `/v1/signing-keys/${ops.id}/grants`, { token: op, body: { agent_id: a.id } });
    expect(granted.status).toBe(201);
    expect(granted.body).toMatchObject({ key_id: ops.id, path: "keys/ops", agent_id: a.id });
    expect((await call(svc.app, "POST", `/v1/signing-keys/${ops.id}/grants`, { token: op, body: { agent_id: a.id } })).status).toBe(200);
    const signed = await submit(a, "keys/ops");
    expect(signed.status).toBe(201);
    expect(signed.body.from_address ?? signed.body.from).toBeDefined();
    await expectRefused(b, ops); // a grant is for one agent
    // Agents cannot grant themselves anything.
    expect((await call(svc.app, "POST", `/v1/signing-keys/${ops.id}/grants`, { token: b.token, body: { agent_id: b.id } })).status).toBe(
      403,
    );

    expect((await call(svc.app, "DELETE", `/v1/signing-keys/${ops.id}/grants/${a.id}`, { token: op })).status).toBe(204);
    expect((await call(svc.app, "DELETE", `/v1/signing-keys/${ops.id}/grants/${a.id}`, { token: op })).status).toBe(404);
    const r = await submit(a, "keys/ops");
    expect(r.status).toBe(404);
    expect(r.raw).toBe(await refusal(a));
    expect(await signedWith("keys/ops")).toBe(1);

    // The CLI, by path: grant, list, revoke.
    const cli = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(
          TSX,
          ["src/cli.ts", ...args],
          { env: { ...process.env, INTENTS_URL: base, INTENTS_OPERATOR_KEY: op }, timeout: 60_000 },
          (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? -1) : 0, stdout, stderr }),
        ),
      );
    const g = await cli(["keys", "grant", "keys/ops", b.id]);
    expect(g.code, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout)).toMatchObject({ path: "keys/ops", agent_id: b.id });
    expect((await submit(b, "keys/ops")).status).toBe(201);
    const list = await cli(["keys", "grants", ops.id]);
    expect(JSON.parse(list.stdout).grants.map((x: { agent_id: string }) => x.agent_id)).toEqual([b.id]);
    expect((await cli(["keys", "revoke", "keys/ops", b.id])).code).toBe(0);
    expect((await submit(b, "keys/ops")).status).toBe(404);

    const audit = await svc.ctx.pool.query(
      "SELECT action, details->>'agent_id' AS agent FROM audit_events WHERE resource_id = $1 AND action IN ('signing_key.grant', 'signing_key.revoke') ORDER BY created_at",
      [ops.id],
    );
    expect(audit.rows).toEqual([
      { action: "signing_key.grant", agent: a.id },
      { action: "signing_key.revoke", agent: a.id },
      { action: "signing_key.grant", agent: b.id },
      { action: "signing_key.revoke", agent: b.id },
    ]);
  });

  it("an inactive key signs nothing, by explicit path or granted, and a per-agent key is not grantable", async () => {
    const k = await createKey({ path: "keys/pausable" });
    expect((await call(svc.app, "POST", `/v1/signing-keys/${k.id}/grants`, { token: op, body: { agent_id: a.id } })).status).toBe(201);
    expect((await submit(a, k.path)).status).toBe(201);
    const off = await call(svc.app, "PATCH", `/v1/signing-keys/${encodeURIComponent(k.path)}`, { token: op, body: { is_active: false } });
    expect(off.status).toBe(200);
    expect(off.body.is_active).toBe(false);
    await expectRefused(a, k);
    expect(await signedWith(k.path)).toBe(1);
    // Its own per-agent key, switched off, is refused too.
    const own = await createKey({ path: `agents/${a.id}/spare` });
    expect((await submit(a, own.path)).status).toBe(201);
    expect((await call(svc.app, "PATCH", `/v1/signing-keys/${own.id}`, { token: op, body: { is_active: false } })).status).toBe(200);
    await expectRefused(a, own);
    expect((await call(svc.app, "POST", `/v1/signing-keys/${own.id}/grants`, { token: op, body: { agent_id: b.id } })).status).toBe(400);
    const audit = await svc.ctx.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'signing_key.update'");
    expect(audit.rows[0].n).toBe(2);
  });

  it("an operator can take the shared signer away from an agent", async () => {
    const c = await createAgent(svc.app, op, { name: "no-shared", shared_signer: false });
    const me = await call(svc.app, "GET", `/v1/agents/${c.id}`, { token: c.token });
    expect(me.body.shared_signer).toBe(false);
    const shared = (await svc.ctx.signer.getKey(LOCAL_SIGNER_PATH))!;
    await expectRefused(c, { path: LOCAL_SIGNER_PATH, address: shared.address });
    const byDefault = await submit(c);
    expect(byDefault.status).toBe(404);
    expect(await call(svc.app, "PATCH", `/v1/agents/${c.id}`, { token: op, body: { shared_signer: true } }).then((r) => r.status)).toBe(
      200,
    );
    expect((await submit(c)).status).toBe(201);
    // The service now remembers that c may use the shared signer; taking it away counts at once.
    await call(svc.app, "PATCH", `/v1/agents/${c.id}`, { token: op, body: { shared_signer: false } });
    await expectRefused(c, { path: LOCAL_SIGNER_PATH, address: shared.address });
    expect((await submit(c)).status).toBe(404);
  });

  it("what a replica remembers of a key never outlives a change made through another replica or straight in the database", async () => {
    const k = await createKey({ path: "keys/remembered" });
    const grant = (agentId: string) => call(svc.app, "POST", `/v1/signing-keys/${k.id}/grants`, { token: op, body: { agent_id: agentId } });
    expect((await grant(a.id)).status).toBe(201);
    for (let i = 0; i < 2; i++) expect((await submit(a, k.path)).status).toBe(201); // the second from memory
    // Another replica (or an operator with psql) takes the grant back: this one refuses at once.
    await svc.ctx.pool.query("DELETE FROM signing_key_grants WHERE key_id = $1", [k.id]);
    await expectRefused(a, k);
    expect((await grant(a.id)).status).toBe(201);
    expect((await submit(a, k.path)).status).toBe(201);
    await svc.ctx.pool.query("UPDATE signing_keys SET is_active = false WHERE id = $1", [k.id]);
    await expectRefused(a, k);
  });
});

describe("keyUsableBy", () => {
  const id = () => fc.uuid().map((u) => u.toLowerCase());
  it("grants exactly: own keys, the shared signer of the chain (when allowed), granted keys; never an inactive one", () => {
    fc.assert(
      fc.property(
        id(),
        id(),
        fc.constantFrom("keys/local-signer", "keys/other-signer", "keys/x", "wallets/w", "agents/OWN/k", "agents/OTHER/k"),
        fc.constantFrom<"none" | "own" | "other">("none", "own", "other"),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (agent, other, pathTemplate, owner, active, granted, shared) => {
          fc.pre(agent !== other);
          const keyPath = pathTemplate.replace("OWN", agent).replace("OTHER", other);
          const key: KeyAccess = {
            path: keyPath,
            agent_id: owner === "none" ? null : owner === "own" ? agent : other,
            is_active: active,
            granted,
            shared_signer: shared,
          };
          const usable = keyUsableBy(key, agent, { name: "local" });
          let want: boolean;
          if (!active || pathTemplate === "agents/OTHER/k") want = false;
          else if (pathTemplate === "agents/OWN/k") want = owner !== "other";
          else if (owner === "own") want = true;
          else if (owner === "other") want = granted;
          else want = granted || (shared && keyPath === "keys/local-signer");
          expect(usable).toBe(want);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
