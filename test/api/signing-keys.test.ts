// Signing keys against the real stack: keys generated in a SoftHSM token, mirrored in Postgres, and
// balances read from the local anvil chain the service started (keys/local-signer is funded there).
import { getAddress, isAddress } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { LOCAL_SIGNER_PATH } from "../../src/context.js";
import { useService } from "../helpers/use-service.js";

const svc = useService();
const operatorKey = svc.op;
let agentA: { id: string; apiKey: string; token: string };
let agentB: { id: string; apiKey: string; token: string };

const op = () => ({ authorization: `Bearer ${operatorKey}` });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

const KEY_FIELDS = ["id", "path", "address", "public_key", "chain", "agent_id", "curve", "key_version", "is_active", "created_at"];

async function call(method: "GET" | "POST" | "DELETE", url: string, opts: { headers?: Record<string, string>; body?: unknown } = {}) {
  const res = await svc.app.inject({ method, url, headers: opts.headers, payload: opts.body as never });
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
}

async function createAgent(name: string) {
  const res = await call("POST", "/v1/agents", { headers: op(), body: { name } });
  expect(res.status).toBe(201);
  const tok = await call("POST", "/v1/auth/agent-token", { body: { api_key: res.body.api_key } });
  expect(tok.status).toBe(200);
  return { id: res.body.agent.id as string, apiKey: res.body.api_key as string, token: tok.body.access_token as string };
}

/** A key response: checksummed address, an uncompressed public key, no field beyond the documented ones. */
function expectKeyShape(k: Record<string, unknown>) {
  for (const f of Object.keys(k)) expect(KEY_FIELDS, `unexpected field ${f}`).toContain(f);
  expect(isAddress(k.address as string, { strict: true })).toBe(true);
  expect(k.address).toBe(getAddress(k.address as string));
  expect(k.public_key).toMatch(/^0x04[0-9a-f]{128}$/);
  expect(k).toMatchObject({ curve: "secp256k1", key_version: 1, is_active: true });
  expect(new Date(k.created_at as string).toISOString()).toBe(k.created_at);
}

beforeAll(async () => {
  agentA = await createAgent("keys-agent-a");
  agentB = await createAgent("keys-agent-b");
});

describe("POST /v1/signing-keys", () => {
  it("generates a key in the HSM (201), mirrored in the table and audited", async () => {
    const res = await call("POST", "/v1/signing-keys", { headers: op(), body: { path: "keys/treasury-1", chain: "anvil" } });
    expect(res.status).toBe(201);
    expectKeyShape(res.body);
    expect(res.body).toMatchObject({ path: "keys/treasury-1", chain: "local" }); // canonical chain name stored
    expect(res.body).not.toHaveProperty("agent_id");

    const hsm = await svc.ctx.signer.getKey("keys/treasury-1");
    expect(hsm?.address).toBe(res.body.address);
    expect(hsm?.publicKey).toBe(res.body.public_key);

    const { rows } = await svc.ctx.pool.query("SELECT id, address, chain FROM signing_keys WHERE path = 'keys/treasury-1'");
    expect(rows).toEqual([{ id: res.body.id, address: res.body.address.toLowerCase(), chain: "local" }]);
    const audit = await svc.ctx.pool.query(
      "SELECT actor_type, details FROM audit_events WHERE action = 'signing_key.create' AND resource_id = $1",
      [res.body.id],
    );
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0]).toMatchObject({ actor_type: "operator", details: { path: "keys/treasury-1", address: res.body.address } });
  });

  it("accepts wallets/ and agents/{id}/ paths; an agent path assigns the key to that agent", async () => {
    const w = await call("POST", "/v1/signing-keys", { headers: op(), body: { path: "wallets/cold.v2/a_b-c" } });
    expect(w.status).toBe(201);
    expectKeyShape(w.body);
    expect(w.body).not.toHaveProperty("chain");

    const a = await call("POST", "/v1/signing-keys", { headers: op(), body: { path: `agents/${agentA.id}/hot-1` } });
    expect(a.status).toBe(201);
    expect(a.body.agent_id).toBe(agentA.id);

    const k = await call("POST", "/v1/signing-keys", { headers: op(), body: { path: "keys/for-b", agent_id: agentB.id } });
    expect(k.status).toBe(201);
    expect(k.body.agent_id).toBe(agentB.id);
  });

  it("409 when the path is taken (including the service's own keys/local-signer)", async () => {
    const before = await svc.ctx.signer.getKey("keys/treasury-1");
    const res = await call("POST", "/v1/signing-keys", { headers: op(), body: { path: "keys/treasury-1" } });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ status: 409, title: "Conflict" });
    expect((await svc.ctx.signer.getKey("keys/treasury-1"))?.address).toBe(before?.address);
    expect((await call("POST", "/v1/signing-keys", { headers: op(), body: { path: LOCAL_SIGNER_PATH } })).status).toBe(409);
  });

  it("two concurrent creates of one path: one 201, one 409", async () => {
    const results = await Promise.all([0, 1].map(() => call("POST", "/v1/signing-keys", { headers: op(), body: { path: "keys/race-1" } })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const { rows } = await svc.ctx.pool.query("SELECT count(*)::int AS n FROM signing_keys WHERE path = 'keys/race-1'");
    expect(rows[0].n).toBe(1);
  });

  it("400 for bad paths and fields", async () => {
    const badPaths = [
      "foo/bar",
      "/keys/x",
      "keys",
      "keys/",
      "keys/a/",
      "keys/../x",
      "keys/a/../../etc",
      "keys//x",
      "keys/./x",
      "keys/a b",
      "keys/x\n",
      "keys/é",
      "agents/not-a-uuid-at-all-but-36-chars-xxxxx/k",
      "agents/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz/k",
      `agents/${agentA.id}`,
      "keys/" + "a".repeat(252),
      "",
    ];
    for (const path of badPaths) {
      const res = await call("POST", "/v1/signing-keys", { headers: op(), body: { path } });
      expect(res.status, JSON.stringify(path)).toBe(400);
      expect(res.body.errors?.length ?? 0).toBeGreaterThan(0);
    }
    const badBodies: unknown[] = [
      {},
      { path: 42 },
      { path: "keys/ok-1", chain: "no-such-chain" },
      { path: "keys/ok-1", agent_id: "not-a-uuid" },
      { path: "keys/ok-1", private_key: "0x01" },
      { path: `agents/${agentA.id}/x`, agent_id: agentB.id },
    ];
    for (const body of badBodies) {
      expect((await call("POST", "/v1/signing-keys", { headers: op(), body })).status, JSON.stringify(body)).toBe(400);
    }
    expect(await svc.ctx.signer.getKey("keys/ok-1")).toBeNull();
    // 256 characters is the limit and is accepted.
    expect((await call("POST", "/v1/signing-keys", { headers: op(), body: { path: "keys/" + "a".repeat(251) } })).status).toBe(201);
  });

  it("404 for an unknown agent", async () => {
    const ghost = "00000000-0000-4000-8000-000000000000";
    expect((await call("POST", "/v1/signing-keys", { headers: op(), body: { path: "keys/ghost", agent_id: ghost } })).status).toBe(404);
    expect((await call("POST", "/v1/signing-keys", { headers: op(), body: { path: `agents/${ghost}/k` } })).status).toBe(404);
    expect(await svc.ctx.signer.getKey("keys/ghost")).toBeNull();
  });

  it("401 without credentials, 403 for agents (JWT or API key)", async () => {
    expect((await call("POST", "/v1/signing-keys", { body: { path: "keys/nope" } })).status).toBe(401);
    expect((await call("GET", "/v1/signing-keys")).status).toBe(401);
    for (const cred of [agentA.token, agentA.apiKey]) {
      expect((await call("POST", "/v1/signing-keys", { headers: bearer(cred), body: { path: `agents/${agentA.id}/mine` } })).status).toBe(
        403,
      );
      expect((await call("GET", "/v1/signing-keys", { headers: bearer(cred) })).status).toBe(403);
    }
    expect(await svc.ctx.signer.getKey(`agents/${agentA.id}/mine`)).toBeNull();
  });
});

describe("GET /v1/signing-keys", () => {
  it("lists every key without key material", async () => {
    const res = await call("GET", "/v1/signing-keys", { headers: op() });
    expect(res.status).toBe(200);
    const paths = res.body.keys.map((k: { path: string }) => k.path);
    expect(paths).toEqual(
      expect.arrayContaining([LOCAL_SIGNER_PATH, "keys/treasury-1", "wallets/cold.v2/a_b-c", `agents/${agentA.id}/hot-1`]),
    );
    for (const k of res.body.keys) expectKeyShape(k);
    const local = res.body.keys.find((k: { path: string }) => k.path === LOCAL_SIGNER_PATH);
    expect(local.address).toBe((await svc.ctx.signer.getKey(LOCAL_SIGNER_PATH))?.address);
  });

  it("has no export route", async () => {
    const { rows } = await svc.ctx.pool.query("SELECT id FROM signing_keys WHERE path = 'keys/treasury-1'");
    for (const url of [`/v1/signing-keys/${rows[0].id}/export`, "/v1/signing-keys/export", `/v1/signing-keys/${rows[0].id}`]) {
      expect((await call("GET", url, { headers: op() })).status).toBe(404);
    }
  });
});

describe("per-agent signing keys", () => {
  it("provisions the agent's key for a configured chain at agents/{id}/chains/{chain}", async () => {
    const res = await call("POST", `/v1/agents/${agentA.id}/signing-keys`, { headers: op(), body: { chain: "localhost" } });
    expect(res.status).toBe(201);
    expectKeyShape(res.body);
    expect(res.body).toMatchObject({ path: `agents/${agentA.id}/chains/local`, chain: "local", agent_id: agentA.id });
    expect((await svc.ctx.signer.getKey(res.body.path))?.address).toBe(res.body.address);
    expect((await call("POST", `/v1/agents/${agentA.id}/signing-keys`, { headers: op(), body: { chain: "local" } })).status).toBe(409);
  });

  it("'ethereum' (the reference's EVM family) provisions agents/{id}/chains/ethereum", async () => {
    const res = await call("POST", `/v1/agents/${agentA.id}/signing-keys`, { headers: op(), body: { chain: "ethereum" } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ path: `agents/${agentA.id}/chains/ethereum`, chain: "ethereum", agent_id: agentA.id });
    // An alias of the same chain names the same key.
    expect((await call("POST", `/v1/agents/${agentA.id}/signing-keys`, { headers: op(), body: { chain: "mainnet" } })).status).toBe(409);
  });

  it("400 for non-EVM families, unknown chains and extra fields; 404 for an unknown or deleted agent", async () => {
    for (const body of [{ chain: "bitcoin" }, { chain: "solana" }, { chain: "no-such-chain" }, {}, { chain: "local", path: "keys/x" }]) {
      expect((await call("POST", `/v1/agents/${agentA.id}/signing-keys`, { headers: op(), body })).status, JSON.stringify(body)).toBe(400);
    }
    expect(
      (await call("POST", "/v1/agents/00000000-0000-4000-8000-000000000000/signing-keys", { headers: op(), body: { chain: "local" } }))
        .status,
    ).toBe(404);
    expect((await call("POST", "/v1/agents/not-a-uuid/signing-keys", { headers: op(), body: { chain: "local" } })).status).toBe(404);
    const gone = await createAgent("keys-agent-deleted");
    expect((await call("DELETE", `/v1/agents/${gone.id}`, { headers: op() })).status).toBe(204);
    expect((await call("POST", `/v1/agents/${gone.id}/signing-keys`, { headers: op(), body: { chain: "local" } })).status).toBe(404);
    expect(await svc.ctx.signer.getKey(`agents/${gone.id}/chains/local`)).toBeNull();
  });

  it("only operators provision: 403 for the agent itself", async () => {
    const res = await call("POST", `/v1/agents/${agentB.id}/signing-keys`, { headers: bearer(agentB.token), body: { chain: "local" } });
    expect(res.status).toBe(403);
    expect(await svc.ctx.signer.getKey(`agents/${agentB.id}/chains/local`)).toBeNull();
  });

  it("lists an agent's keys for operators and the agent itself, 403 for another agent", async () => {
    const byOp = await call("GET", `/v1/agents/${agentA.id}/signing-keys`, { headers: op() });
    expect(byOp.status).toBe(200);
    expect(byOp.body.keys.map((k: { path: string }) => k.path).sort()).toEqual(
      [`agents/${agentA.id}/chains/ethereum`, `agents/${agentA.id}/chains/local`, `agents/${agentA.id}/hot-1`].sort(),
    );
    for (const k of byOp.body.keys) expectKeyShape(k);
    const bySelf = await call("GET", `/v1/agents/${agentA.id}/signing-keys`, { headers: bearer(agentA.token) });
    expect(bySelf.status).toBe(200);
    expect(bySelf.body).toEqual(byOp.body);
    expect((await call("GET", `/v1/agents/${agentA.id}/signing-keys`, { headers: bearer(agentB.token) })).status).toBe(403);
    expect((await call("GET", `/v1/agents/${agentA.id}/signing-keys`)).status).toBe(401);
    const b = await call("GET", `/v1/agents/${agentB.id}/signing-keys`, { headers: bearer(agentB.apiKey) });
    expect(b.body.keys.map((k: { path: string }) => k.path)).toEqual(["keys/for-b"]);
    expect((await call("GET", "/v1/agents/00000000-0000-4000-8000-000000000000/signing-keys", { headers: op() })).status).toBe(404);
  });
});

describe("GET /v1/agents/{id}/signing-keys/{chain}/balance", () => {
  it("reads the agent's own key when it has one (a new key: 0)", async () => {
    const key = await svc.ctx.signer.getKey(`agents/${agentA.id}/chains/local`);
    const res = await call("GET", `/v1/agents/${agentA.id}/signing-keys/local/balance`, { headers: op() });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ chain: "local", address: key!.address, balance_wei: "0", balance_display: "0" });
  });

  it("falls back to keys/{chain}-signer, funded by the service at start", async () => {
    const local = await svc.ctx.signer.getKey(LOCAL_SIGNER_PATH);
    const res = await call("GET", `/v1/agents/${agentB.id}/signing-keys/31337/balance`, { headers: bearer(agentB.token) });
    expect(res.status).toBe(200);
    expect(res.body.chain).toBe("local");
    expect(res.body.address).toBe(local!.address);
    expect(BigInt(res.body.balance_wei)).toBeGreaterThan(0n);
    expect(res.body.balance_display).toMatch(/^\d+(\.\d+)?$/);
    expect(Number(res.body.balance_display)).toBeGreaterThan(0);
  });

  it("403 for another agent, 404 for an unknown chain or when no default key exists", async () => {
    expect((await call("GET", `/v1/agents/${agentA.id}/signing-keys/local/balance`, { headers: bearer(agentB.token) })).status).toBe(403);
    expect((await call("GET", `/v1/agents/${agentB.id}/signing-keys/no-such-chain/balance`, { headers: op() })).status).toBe(404);
    expect((await call("GET", `/v1/agents/${agentB.id}/signing-keys/sepolia/balance`, { headers: op() })).status).toBe(404);
  });

  it("502 rpc_unavailable when the chain's RPC cannot be reached", async () => {
    const chain = await call("POST", "/v1/admin/chains", {
      headers: op(),
      body: { name: "dead-chain", display_name: "Dead", chain_id: 990077, rpc_url: "http://127.0.0.1:1" },
    });
    expect(chain.status).toBe(201);
    expect((await call("POST", `/v1/agents/${agentA.id}/signing-keys`, { headers: op(), body: { chain: "dead-chain" } })).status).toBe(201);
    const res = await call("GET", `/v1/agents/${agentA.id}/signing-keys/dead-chain/balance`, { headers: op() });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ status: 502, code: "rpc_unavailable" });
    expect(res.body.detail).not.toContain("127.0.0.1");
  });
});
