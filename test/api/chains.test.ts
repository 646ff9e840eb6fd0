// /v1/chains (public) and /v1/admin/chains (operators) against the real stack: the registry seeded from
// chains.json, an RPC override with credentials from the environment, Postgres and the audit log.
import { beforeAll, describe, expect, it } from "vitest";
import { readChainsFile, seedChains } from "../../src/chains/registry.js";
import { defaultChainsFile } from "../../src/context.js";
import { useService } from "../helpers/use-service.js";

const CREDENTIALED_RPC = "https://user:secret@rpc.example/v2/AbCdEf0123456789XyZ?apikey=supersecret";
// Credentials where providers put them and a path-pattern redaction does not look: a key=value path
// segment, a short key after a version, a dotted token, a key as the host name.
const LEAKY_RPCS: Record<string, string> = {
  CHAIN_OPTIMISM_RPC_URLS: "https://opt.rpc.example/apikey=Qk7mZp",
  CHAIN_ARBITRUM_ONE_RPC_URLS: "https://arb.rpc.example:8443/v3/k9T",
  CHAIN_POLYGON_RPC_URLS: "wss://poly.rpc.example/rpc/eyJhbGci.eyJzdWIi.c2lnbmF0",
  CHAIN_SEPOLIA_RPC_URLS: "https://a1b2c3d4e5f6a7b8c9d0.rpc.example/",
};
const SECRETS = ["secret", "AbCdEf0123456789XyZ", "user:", "Qk7mZp", "k9T", "eyJ", "a1b2c3d4e5f6a7b8c9d0", "Zz9Yy8Xx7Ww6Vv5Uu4"];

const svc = useService({ env: { CHAIN_BASE_RPC_URLS: CREDENTIALED_RPC, ...LEAKY_RPCS } });
const operatorKey = svc.op;
let agentToken: string;

const op = () => ({ authorization: `Bearer ${operatorKey}` });

/** Every chains response must be free of the credentials above. */
function assertNoSecrets(body: string) {
  for (const s of SECRETS) expect(body).not.toContain(s);
}

async function call(
  method: "GET" | "POST" | "PUT" | "DELETE",
  url: string,
  opts: { headers?: Record<string, string>; body?: unknown } = {},
) {
  const res = await svc.app.inject({ method, url, headers: opts.headers, payload: opts.body as never });
  if (url.includes("chains")) assertNoSecrets(res.body);
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined, headers: res.headers };
}

beforeAll(async () => {
  const created = await call("POST", "/v1/agents", { headers: op(), body: { name: "chains-test-agent" } });
  expect(created.status).toBe(201);
  const tok = await call("POST", "/v1/auth/agent-token", { body: { api_key: created.body.api_key } });
  expect(tok.status).toBe(200);
  agentToken = tok.body.access_token;
});

describe("public chains", () => {
  it("lists the enabled default chains without credentials", async () => {
    const res = await call("GET", "/v1/chains");
    expect(res.status).toBe(200);
    const names = res.body.chains.map((c: { name: string }) => c.name);
    for (const n of ["ethereum", "base", "optimism", "arbitrum-one", "polygon", "sepolia", "base-sepolia", "local"]) {
      expect(names).toContain(n);
    }
    for (const c of res.body.chains) {
      expect(c.is_enabled).toBe(true);
      expect(typeof c.chain_id).toBe("number");
      expect(Number.isInteger(c.chain_id)).toBe(true);
      expect(new Date(c.created_at).toISOString()).toBe(c.created_at);
      expect(new Date(c.updated_at).toISOString()).toBe(c.updated_at);
      expect(typeof c.native_currency).toBe("string");
      expect(Array.isArray(c.rpc_urls)).toBe(true);
      expect(Array.isArray(c.aliases)).toBe(true);
      expect(c).not.toHaveProperty("managed_by");
    }
  });

  it("gets a chain by name, alias and numeric id", async () => {
    const byName = await call("GET", "/v1/chains/ethereum");
    expect(byName.status).toBe(200);
    expect(byName.body).toMatchObject({
      name: "ethereum",
      display_name: "Ethereum",
      chain_id: 1,
      native_currency: "ETH",
      is_testnet: false,
      is_enabled: true,
      explorer_url: "https://etherscan.io",
      eip1559: true,
      confirmations: 12,
    });
    expect(byName.body.aliases).toEqual(expect.arrayContaining(["eth", "mainnet"]));
    expect(byName.body.rpc_url).toBe(byName.body.rpc_urls[0]);
    expect((await call("GET", "/v1/chains/mainnet")).body.id).toBe(byName.body.id);
    expect((await call("GET", "/v1/chains/ETH")).body.id).toBe(byName.body.id);
    expect((await call("GET", "/v1/chains/1")).body.id).toBe(byName.body.id);
    const base = await call("GET", "/v1/chains/8453");
    expect(base.body.name).toBe("base");
  });

  it("shows the local chain's runtime URL and omits absent fields", async () => {
    const local = await call("GET", "/v1/chains/anvil");
    expect(local.status).toBe(200);
    expect(local.body).toMatchObject({ name: "local", chain_id: 31337 });
    expect(local.body.rpc_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/?$/);
    expect(local.body).not.toHaveProperty("explorer_url");
    expect(local.body).not.toHaveProperty("ws_url");
  });

  it("shows an RPC URL's origin only (scheme, host, port): no user info, path or query, and a key in the host name masked", async () => {
    const base = await call("GET", "/v1/chains/base");
    expect(base.status).toBe(200);
    expect(base.body.rpc_urls).toEqual(["https://rpc.example"]);
    expect(base.body.rpc_url).toBe("https://rpc.example");
    const shown = async (name: string) => (await call("GET", `/v1/chains/${name}`)).body.rpc_urls;
    expect(await shown("optimism")).toEqual(["https://opt.rpc.example"]);
    expect(await shown("arbitrum-one")).toEqual(["https://arb.rpc.example:8443"]);
    expect(await shown("polygon")).toEqual(["wss://poly.rpc.example"]);
    expect(await shown("sepolia")).toEqual(["https://***.rpc.example"]);
    // Every public URL is an origin; the list shows the same.
    for (const c of (await call("GET", "/v1/chains")).body.chains) {
      for (const u of [...c.rpc_urls, ...(c.ws_url ? [c.ws_url] : [])]) expect(u).toMatch(/^(https?|wss?):\/\/[^/?#@]+$/);
    }
    // Operators see more of the URL, still without its credentials (assertNoSecrets runs on every response).
    const admin = await call("GET", "/v1/admin/chains", { headers: op() });
    const adminUrl = (name: string) => admin.body.chains.find((c: { name: string }) => c.name === name).rpc_url;
    expect(adminUrl("base")).toBe("https://***@rpc.example/v2/***?apikey=***");
    expect(adminUrl("optimism")).toBe("https://opt.rpc.example/***");
    expect(adminUrl("arbitrum-one")).toBe("https://arb.rpc.example:8443/v3/***");
    expect(adminUrl("polygon")).toBe("wss://poly.rpc.example/rpc/***");
    expect(adminUrl("sepolia")).toBe("https://***.rpc.example/");
  });

  it("answers 404 for an unknown chain", async () => {
    const res = await call("GET", "/v1/chains/no-such-chain");
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ status: 404, title: "Not Found" });
    expect(typeof res.body.detail).toBe("string");
    expect((await call("GET", "/v1/chains/999999999")).status).toBe(404);
  });

  it("needs no credentials, and ignores bad ones", async () => {
    expect((await call("GET", "/v1/chains", { headers: { authorization: "Bearer nonsense" } })).status).toBe(200);
  });
});

describe("admin chains: access", () => {
  it("401 without credentials (before body validation)", async () => {
    expect((await call("GET", "/v1/admin/chains")).status).toBe(401);
    expect((await call("POST", "/v1/admin/chains", { body: { bogus: true } })).status).toBe(401);
    expect((await call("PUT", "/v1/admin/chains/base", { body: { display_name: "x" } })).status).toBe(401);
    expect((await call("DELETE", "/v1/admin/chains/base")).status).toBe(401);
  });

  it("403 for an agent token", async () => {
    const h = { authorization: `Bearer ${agentToken}` };
    expect((await call("GET", "/v1/admin/chains", { headers: h })).status).toBe(403);
    const post = await call("POST", "/v1/admin/chains", { headers: h, body: { name: "agent-chain", display_name: "A", chain_id: 777001 } });
    expect(post.status).toBe(403);
    expect((await call("PUT", "/v1/admin/chains/base", { headers: h, body: { display_name: "x" } })).status).toBe(403);
    expect((await call("DELETE", "/v1/admin/chains/base", { headers: h })).status).toBe(403);
    expect((await call("GET", "/v1/chains/agent-chain")).status).toBe(404);
  });
});

describe("admin chains: CRUD", () => {
  it("creates a chain (201), audited, with defaults, visible publicly", async () => {
    const res = await call("POST", "/v1/admin/chains", {
      headers: op(),
      body: {
        name: "testnet-x",
        display_name: "Testnet X",
        chain_id: 990001,
        rpc_url: "https://rpc.testnet-x.example/key/Zz9Yy8Xx7Ww6Vv5Uu4",
        rpc_urls: ["https://backup.testnet-x.example"],
        ws_url: "wss://ws.testnet-x.example/?token=hidden",
        explorer_url: "https://explorer.testnet-x.example",
        is_testnet: true,
        confirmations: 2,
        aliases: ["tx-net"],
      },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: "testnet-x",
      display_name: "Testnet X",
      chain_id: 990001,
      native_currency: "ETH",
      is_testnet: true,
      is_enabled: true,
      eip1559: true,
      confirmations: 2,
      aliases: ["tx-net"],
      explorer_url: "https://explorer.testnet-x.example",
    });
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.rpc_urls).toHaveLength(2);
    expect(JSON.stringify(res.body)).not.toContain("Zz9Yy8Xx7Ww6Vv5Uu4");
    expect(res.body.ws_url).not.toContain("hidden");

    expect((await call("GET", "/v1/chains/tx-net")).body.id).toBe(res.body.id);
    expect((await call("GET", "/v1/chains/990001")).body.name).toBe("testnet-x");

    const { rows } = await svc.ctx.pool.query("SELECT managed_by, rpc_urls FROM chains WHERE name = 'testnet-x'");
    expect(rows[0].managed_by).toBe("admin");
    expect(rows[0].rpc_urls[0]).toBe("https://rpc.testnet-x.example/key/Zz9Yy8Xx7Ww6Vv5Uu4"); // stored as given
    const audit = await svc.ctx.pool.query(
      "SELECT actor_type, details FROM audit_events WHERE action = 'chain.create' AND resource_id = $1",
      [res.body.id],
    );
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0].actor_type).toBe("operator");
    expect(JSON.stringify(audit.rows[0].details)).not.toContain("Zz9Yy8Xx7Ww6Vv5Uu4");
  });

  it("409 for a duplicate name, chain_id or alias", async () => {
    const dupName = await call("POST", "/v1/admin/chains", { headers: op(), body: { name: "base", display_name: "B", chain_id: 990002 } });
    expect(dupName.status).toBe(409);
    const dupId = await call("POST", "/v1/admin/chains", { headers: op(), body: { name: "other-x", display_name: "O", chain_id: 8453 } });
    expect(dupId.status).toBe(409);
    expect(dupId.body.detail).not.toMatch(/duplicate key|constraint|INSERT/i);
    const dupAlias = await call("POST", "/v1/admin/chains", {
      headers: op(),
      body: { name: "other-y", display_name: "O", chain_id: 990003, aliases: ["eth"] },
    });
    expect(dupAlias.status).toBe(409);
    const nameIsAlias = await call("POST", "/v1/admin/chains", {
      headers: op(),
      body: { name: "mainnet", display_name: "O", chain_id: 990004 },
    });
    expect(nameIsAlias.status).toBe(409);
    const aliasClash = await call("PUT", "/v1/admin/chains/testnet-x", { headers: op(), body: { aliases: ["arb"] } });
    expect(aliasClash.status).toBe(409);
    expect(
      (await call("GET", "/v1/admin/chains", { headers: op() })).body.chains.filter((c: { name: string }) => c.name.startsWith("other-")),
    ).toEqual([]);
  });

  it("400 for bad fields, with field errors", async () => {
    const bad: unknown[] = [
      { display_name: "no name", chain_id: 990010 },
      { name: "Bad Name", display_name: "x", chain_id: 990010 },
      { name: "12345", display_name: "x", chain_id: 990010 },
      { name: "neg", display_name: "x", chain_id: -1 },
      { name: "frac", display_name: "x", chain_id: 1.5 },
      { name: "strid", display_name: "x", chain_id: "990010" },
      { name: "ftp", display_name: "x", chain_id: 990010, rpc_url: "ftp://rpc.example" },
      { name: "notaurl", display_name: "x", chain_id: 990010, rpc_urls: ["not a url"] },
      { name: "wsbad", display_name: "x", chain_id: 990010, ws_url: "https://not-ws.example" },
      { name: "explorercreds", display_name: "x", chain_id: 990010, explorer_url: "https://u:p@explorer.example" },
      { name: "extra", display_name: "x", chain_id: 990010, managed_by: "file" },
      { name: "conf", display_name: "x", chain_id: 990010, confirmations: -1 },
    ];
    for (const body of bad) {
      const res = await call("POST", "/v1/admin/chains", { headers: op(), body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errors?.length ?? 0, JSON.stringify(body)).toBeGreaterThan(0);
    }
    for (const body of [{ name: "renamed" }, { chain_id: 5 }, { confirmations: "3" }, { rpc_urls: ["file:///etc/passwd"] }]) {
      expect((await call("PUT", "/v1/admin/chains/testnet-x", { headers: op(), body })).status, JSON.stringify(body)).toBe(400);
    }
  });

  it("updates by numeric id, name or uuid (200), audited, and refreshes the registry", async () => {
    const byId = await call("PUT", "/v1/admin/chains/990001", {
      headers: op(),
      body: {
        display_name: "Testnet X v2",
        rpc_urls: ["https://rpc2.testnet-x.example"],
        eip1559: false,
        confirmations: 5,
        aliases: ["txn", "tx-net"],
      },
    });
    expect(byId.status).toBe(200);
    expect(byId.body).toMatchObject({ display_name: "Testnet X v2", eip1559: false, confirmations: 5, aliases: ["txn", "tx-net"] });
    expect(byId.body.rpc_urls).toEqual(["https://rpc2.testnet-x.example/"]);
    expect(byId.body.rpc_url).toBe("https://rpc2.testnet-x.example/");
    expect(svc.ctx.chains.resolve("txn")?.display_name).toBe("Testnet X v2");

    const byName = await call("PUT", "/v1/admin/chains/txn", {
      headers: op(),
      body: { rpc_url: "http://10.0.0.1:8545", explorer_url: null, ws_url: null },
    });
    expect(byName.status).toBe(200);
    expect(byName.body.rpc_urls).toEqual(["http://10.0.0.1:8545/"]);
    expect(byName.body).not.toHaveProperty("explorer_url");
    expect(byName.body).not.toHaveProperty("ws_url");

    const byUuid = await call("PUT", `/v1/admin/chains/${byName.body.id}`, { headers: op(), body: { native_currency: "TXN" } });
    expect(byUuid.status).toBe(200);
    expect(byUuid.body.native_currency).toBe("TXN");
    expect(new Date(byUuid.body.updated_at).getTime()).toBeGreaterThanOrEqual(new Date(byId.body.updated_at).getTime());

    const audit = await svc.ctx.pool.query(
      "SELECT details FROM audit_events WHERE action = 'chain.update' AND resource_id = $1 ORDER BY seq",
      [byId.body.id],
    );
    expect(audit.rows).toHaveLength(3);
    expect(audit.rows[0].details.fields).toEqual(["aliases", "confirmations", "display_name", "eip1559", "rpc_urls"]);
  });

  it("404 for an unknown chain on update and delete", async () => {
    expect((await call("PUT", "/v1/admin/chains/424242", { headers: op(), body: { display_name: "x" } })).status).toBe(404);
    expect((await call("PUT", "/v1/admin/chains/nope", { headers: op(), body: { display_name: "x" } })).status).toBe(404);
    expect((await call("DELETE", "/v1/admin/chains/00000000-0000-4000-8000-000000000000", { headers: op() })).status).toBe(404);
  });

  it("disabling hides a chain publicly but not from operators; the env override still applies and is redacted", async () => {
    const res = await call("PUT", "/v1/admin/chains/base", { headers: op(), body: { is_enabled: false } });
    expect(res.status).toBe(200);
    expect(res.body.is_enabled).toBe(false);
    expect(res.body.rpc_url).toContain("rpc.example"); // the environment override still wins over stored URLs
    expect((await call("GET", "/v1/chains/base")).status).toBe(404);
    expect((await call("GET", "/v1/chains/8453")).status).toBe(404);
    expect((await call("GET", "/v1/chains")).body.chains.map((c: { name: string }) => c.name)).not.toContain("base");
    const admin = await call("GET", "/v1/admin/chains", { headers: op() });
    expect(admin.body.chains.find((c: { name: string }) => c.name === "base")?.is_enabled).toBe(false);

    expect((await call("PUT", "/v1/admin/chains/base", { headers: op(), body: { is_enabled: true } })).status).toBe(200);
    expect((await call("GET", "/v1/chains/base")).status).toBe(200);
  });

  it("an admin-edited chain survives seeding from chains.json; a file-managed one does not", async () => {
    expect(
      (await call("PUT", "/v1/admin/chains/optimism", { headers: op(), body: { display_name: "OP (edited)", confirmations: 9 } })).status,
    ).toBe(200);
    await svc.ctx.pool.query("UPDATE chains SET display_name = 'tampered' WHERE name = 'polygon'");
    await seedChains(svc.ctx.pool, readChainsFile(defaultChainsFile()));
    await svc.ctx.chains.refresh();
    const op1 = await call("GET", "/v1/chains/optimism");
    expect(op1.body).toMatchObject({ display_name: "OP (edited)", confirmations: 9 });
    expect((await call("GET", "/v1/chains/polygon")).body.display_name).toBe("Polygon PoS");
    const { rows } = await svc.ctx.pool.query("SELECT name, managed_by FROM chains WHERE name IN ('optimism', 'polygon') ORDER BY name");
    expect(rows).toEqual([
      { name: "optimism", managed_by: "admin" },
      { name: "polygon", managed_by: "file" },
    ]);
  });

  it("deletes a chain (204), audited; transactions keep its name", async () => {
    const { rows } = await svc.ctx.pool.query("SELECT id FROM chains WHERE name = 'testnet-x'");
    const id = rows[0].id;
    await svc.ctx.pool.query(
      `INSERT INTO transactions (id, agent_id, chain, chain_id, from_address, to_address, value_wei, signing_key_path, status)
       VALUES (gen_random_uuid(), gen_random_uuid(), 'testnet-x', 990001, '0x' || repeat('1', 40), '0x' || repeat('2', 40), 0, 'keys/x', 'failed')`,
    );
    const res = await call("DELETE", "/v1/admin/chains/testnet-x", { headers: op() });
    expect(res.status).toBe(204);
    expect(res.body).toBeUndefined();
    expect((await call("GET", "/v1/chains/testnet-x")).status).toBe(404);
    expect((await call("GET", "/v1/chains/990001")).status).toBe(404);
    expect(svc.ctx.chains.resolve("testnet-x")).toBeUndefined();
    expect((await call("DELETE", `/v1/admin/chains/${id}`, { headers: op() })).status).toBe(404);
    const tx = await svc.ctx.pool.query("SELECT chain FROM transactions WHERE chain_id = 990001");
    expect(tx.rows).toEqual([{ chain: "testnet-x" }]);
    const audit = await svc.ctx.pool.query("SELECT details FROM audit_events WHERE action = 'chain.delete' AND resource_id = $1", [id]);
    expect(audit.rows[0].details).toMatchObject({ name: "testnet-x", chain_id: 990001 });
  });

  it("the name and chain id of a deleted chain can be reused", async () => {
    const res = await call("POST", "/v1/admin/chains", {
      headers: op(),
      body: { name: "testnet-x", display_name: "Again", chain_id: 990001, rpc_urls: [] },
    });
    expect(res.status).toBe(201);
    expect(res.body).not.toHaveProperty("rpc_url");
    expect(res.body.rpc_urls).toEqual([]);
  });
});
