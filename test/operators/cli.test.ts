// The operator CLI, run as a child process (tsx src/cli.ts) against a live service and its database:
// agents, keys, chains, transactions and export through the API; audit verify, verify-tx and
// export --db straight against the database, also with the service down; exit codes 0/1/2.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sealAuditEvents } from "../../src/audit-chain.js";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { migrate } from "../../src/db/migrate.js";
import { createPool } from "../../src/db/pool.js";
import { csvColumns } from "../../src/http/history.js";
import { call } from "../helpers/api.js";
import { createTestDatabase } from "../helpers/db.js";
import { useService } from "../helpers/use-service.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const TSX = path.resolve("node_modules/.bin/tsx");

interface Out {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

describe("operator CLI", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "intents-cli-"));
  // Our own database, made before the service and dropped after it, so that it outlives the service
  // (the service drops only databases it made).
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const svc = useService({ env: { TRACKER: "off" }, start: () => ({ databaseUrl: db.url }), listen: true });
  const { op } = svc;

  /** Runs the CLI with the service's URL, the operator key and the database in its environment. */
  const cli = (args: string[], env: Record<string, string | undefined> = {}): Promise<Out> =>
    new Promise((resolve) => {
      const full: NodeJS.ProcessEnv = {
        ...process.env,
        INTENTS_URL: svc.baseUrl,
        INTENTS_OPERATOR_KEY: op,
        DATABASE_URL: db.url,
        ADMIN_API_KEY: undefined,
        ...env,
      };
      for (const [k, v] of Object.entries(full)) if (v === undefined) delete full[k];
      execFile(TSX, ["src/cli.ts", ...args], { env: full, maxBuffer: 64 * 2 ** 20, timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        let json: unknown;
        try {
          json = JSON.parse(stdout);
        } catch {
          json = undefined;
        }
        resolve({ code, stdout, stderr, json });
      });
    });

  /** Asserts success, and that the operator key never reaches the output. */
  const ok = async (args: string[], env?: Record<string, string | undefined>): Promise<Out> => {
    const r = await cli(args, env);
    expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(op);
    return r;
  };

  let agentId: string;
  let agentToken: string;
  const txIds: string[] = [];

  it("agents create, list, update guardrails, rotate-key", async () => {
    const created = await ok([
      "agents",
      "create",
      "--name",
      "ops-bot",
      "--intents-enabled",
      "true",
      "--max-value",
      "0.5",
      "--allowed-chains",
      "local",
    ]);
    expect(created.json.api_key).toMatch(/^ocv_/);
    expect(created.json.agent).toMatchObject({
      name: "ops-bot",
      intents_api_enabled: true,
      tx_max_value: "0.5",
      tx_allowed_chains: ["local"],
    });
    agentId = created.json.agent.id;

    const [list, table] = await Promise.all([ok(["agents", "list"]), ok(["agents", "list", "--format", "table"])]);
    expect(list.json.agents.map((a: { id: string }) => a.id)).toContain(agentId);
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+NAME\s+IS_ACTIVE/);
    expect(table.stdout).toMatch(new RegExp(`${agentId}\\s+ops-bot\\s+true\\s+true\\s+0\\.5`));

    const updated = await ok([
      "agents",
      "update",
      agentId,
      "--daily-limit",
      "2",
      "--max-per-day",
      "10",
      "--max-value",
      "none",
      "--to-allowlist",
      DEAD,
    ]);
    expect(updated.json).toMatchObject({ id: agentId, tx_daily_limit: "2", tx_max_per_day: 10, tx_to_allowlist: [DEAD.toLowerCase()] });
    expect("tx_max_value" in updated.json).toBe(false);
    const fees = await ok(["agents", "update", agentId, "--max-fee", "0.02", "--daily-fee-budget", "none", "--max-gas-limit", "500000"]);
    expect(fees.json).toMatchObject({ tx_max_fee: "0.02", tx_daily_fee_budget: null, tx_max_gas_limit: 500000 });

    const rotated = await ok(["agents", "rotate-key", agentId]);
    expect(rotated.json).toMatchObject({ agent_id: agentId });
    expect(rotated.json.api_key).not.toBe(created.json.api_key);
    expect((await call(svc.app, "POST", "/v1/auth/agent-token", { body: { api_key: created.json.api_key } })).status).toBe(401);
    const tok = await call(svc.app, "POST", "/v1/auth/agent-token", { body: { api_key: rotated.json.api_key } });
    expect(tok.status).toBe(200);
    agentToken = tok.body.access_token;

    // Failures and usage mistakes.
    const [bad, none, unknown, noKey, wrongKey, extra] = await Promise.all([
      cli(["agents", "update", agentId, "--max-value", "lots"]),
      cli(["agents", "update", agentId]),
      cli(["agents", "frobnicate"]),
      cli(["agents", "list"], { INTENTS_OPERATOR_KEY: undefined }),
      cli(["agents", "list"], { INTENTS_OPERATOR_KEY: "1ck_" + "x".repeat(40) }),
      cli(["agents", "list", "--path", "x"]),
    ]);
    expect([bad.code, none.code, unknown.code, noKey.code, wrongKey.code, extra.code]).toEqual([1, 2, 2, 2, 1, 2]);
    expect(bad.stderr).toMatch(/400.*tx_max_value/);
    expect(wrongKey.stderr).toMatch(/401/);
    expect(wrongKey.stderr).not.toContain("x".repeat(40));
    expect(unknown.stderr).toMatch(/unknown command/);
  });

  it("keys create and list; chains list", async () => {
    const created = await ok(["keys", "create", "--path", "keys/cli-treasury", "--chain", "local"]);
    expect(created.json).toMatchObject({ path: "keys/cli-treasury", chain: "local", curve: "secp256k1" });
    expect(created.json.address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    const [list, dup, chains, chainsTable] = await Promise.all([
      ok(["keys", "list"]),
      cli(["keys", "create", "--path", "keys/cli-treasury"]),
      ok(["chains", "list"]),
      ok(["chains", "list", "--format", "table"]),
    ]);
    expect(list.json.keys.map((k: { path: string }) => k.path)).toEqual(expect.arrayContaining(["keys/cli-treasury", "keys/local-signer"]));
    expect(JSON.stringify(list.json)).not.toMatch(/private|secret/i);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/409/);
    expect(chains.json.chains).toEqual(expect.arrayContaining([expect.objectContaining({ name: "local", chain_id: 31337 })]));
    expect(chainsTable.stdout).toMatch(/\nlocal\s+31337\s/);
  });

  it("tx list, show and export (through the service and with --db)", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await call(svc.app, "POST", `/v1/agents/${agentId}/transactions`, {
        token: agentToken,
        body: { to: DEAD, value: "0.01", chain: "local" },
      });
      expect(r.status).toBe(201);
      txIds.unshift(r.body.id); // newest first
    }
    const [list, page1, show, showSigned, jsonl, csvDb] = await Promise.all([
      ok(["tx", "list", "--agent-id", agentId]),
      ok(["tx", "list", "--agent-id", agentId, "--limit", "2"]),
      ok(["tx", "show", txIds[0]]),
      ok(["tx", "show", txIds[0], "--include-signed-tx"]),
      ok(["tx", "export", "--agent-id", agentId]),
      ok(["tx", "export", "--db", "--format", "csv", "--agent-id", agentId, "--include-signed-tx"]),
    ]);
    expect(list.json.transactions.map((t: { id: string }) => t.id)).toEqual(txIds);
    expect(page1.json.transactions).toHaveLength(2);
    const page2 = await ok(["tx", "list", "--agent-id", agentId, "--limit", "2", "--cursor", page1.json.next_cursor]);
    expect(page2.json.transactions.map((t: { id: string }) => t.id)).toEqual([txIds[2]]);
    expect(page2.json.next_cursor).toBeNull();
    expect(show.json).toMatchObject({ id: txIds[0], agent_id: agentId, status: "broadcast" });
    expect("signed_tx" in show.json).toBe(false);
    expect(showSigned.json.signed_tx).toMatch(/^0x02/);
    expect(
      jsonl.stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l).id),
    ).toEqual(txIds);

    // The same export through the service into a file, byte for byte what --db wrote.
    const file = path.join(tmp, "export.csv");
    await ok(["tx", "export", "--format", "csv", "--agent-id", agentId, "--include-signed-tx", "-o", file]);
    const text = fs.readFileSync(file, "utf8");
    expect(text).toBe(csvDb.stdout);
    const lines = text.split("\r\n");
    expect(lines[0]).toBe(csvColumns(true).join(","));
    expect(lines.slice(1, -1).map((l) => l.split(",")[0])).toEqual(txIds);
    expect(lines[lines.length - 1]).toBe("");
    // An existing file is not overwritten; a bad format is a usage error.
    const [again, badFormat, table] = await Promise.all([
      cli(["tx", "export", "-o", file]),
      cli(["tx", "export", "--format", "xml"]),
      ok(["tx", "list", "--agent-id", agentId, "--format", "table"]),
    ]);
    expect([again.code, badFormat.code]).toEqual([2, 2]);
    expect(table.stdout.split("\n")[1]).toContain(txIds[0]);
  });

  it("audit verify and verify-tx against the database while the service runs", async () => {
    const [audit, verify] = await Promise.all([ok(["audit", "verify"]), ok(["verify-tx", txIds[0]])]);
    expect(audit.json).toMatchObject({ chain_valid: true, broken_at_event_id: null });
    expect(verify.json.ok).toBe(true);
    expect(verify.json.signer.toLowerCase()).toBe(verify.json.checks.find((c: { check: string }) => c.check === "signer").expected);
    expect(verify.json.checks.map((c: { check: string }) => c.check)).toEqual(
      expect.arrayContaining(["signer", "tx_hash", "to", "value_wei", "nonce", "chain_id"]),
    );
    expect(verify.json.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
  });

  it("init prepares a fresh database, HSM token and local signing key, idempotently", async () => {
    const fresh = await createTestDatabase();
    try {
      const env = {
        DATABASE_URL: fresh.url,
        DATA_DIR: path.join(tmp, "init-data"),
        ADMIN_API_KEY: op,
        PKCS11_PIN: "1234-cli-test",
        PKCS11_TOKEN_LABEL: "cli-init",
        CHAIN_LOCAL_RPC_URLS: svc.ctx.localChainUrl!,
        LOG_LEVEL: "silent",
        TRACKER: "off",
        INTENTS_OPERATOR_KEY: undefined,
      };
      const first = await cli(["init"], env);
      expect(first.code, first.stderr).toBe(0);
      expect(first.json.local_signer.address).toMatch(/^0x[0-9a-fA-F]{40}$/);
      expect(first.json.operator_key).toBeUndefined();
      const second = await cli(["init"], env);
      expect(second.code, second.stderr).toBe(0);
      expect(second.json.local_signer.address).toBe(first.json.local_signer.address);
    } finally {
      await fresh.drop();
    }
  });

  it("without DATABASE_URL: finds the embedded cluster under DATA_DIR, running or not", async () => {
    const dataDir = path.join(tmp, "embedded");
    fs.mkdirSync(dataDir, { mode: 0o755 });
    fs.chmodSync(tmp, 0o755); // PostgreSQL runs as the postgres user when the tests run as root
    const pgEmb = await startEmbeddedPostgres({ dataDir });
    let running = true;
    try {
      const pool = createPool(pgEmb.url, { max: 1 });
      await migrate(pool);
      await pool.end();
      const env = { DATABASE_URL: undefined, DATA_DIR: dataDir };
      // Running (as under `npm start`): port from postmaster.pid, password from postgres-password.
      const up = await ok(["audit", "verify"], env);
      expect(up.json).toMatchObject({ chain_valid: true, events_checked: 0 });
      expect(up.stderr).toBe("");
      await pgEmb.stop();
      running = false;
      // Stopped: the CLI starts the cluster for the command and stops it again.
      const down = await ok(["audit", "verify", "--data-dir", dataDir], { DATABASE_URL: undefined });
      expect(down.json).toMatchObject({ chain_valid: true });
      expect(down.stderr).toMatch(/starting the embedded PostgreSQL/);
      expect(fs.existsSync(path.join(dataDir, "postgres", "postmaster.pid"))).toBe(false);
      // No database at all: a clear failure.
      const none = await cli(["audit", "verify", "--data-dir", path.join(tmp, "nothing")], { DATABASE_URL: undefined });
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/no database: set DATABASE_URL/);
    } finally {
      if (running) await pgEmb.stop();
    }
  });

  it("with the service down: audit verify, verify-tx and export --db still work; tampering exits 1", async () => {
    // Seal what the service wrote, then stop it (the database stays).
    while ((await sealAuditEvents(svc.ctx.pool)) > 0) {
      /* drain */
    }
    await svc.close();

    const [audit, verify, exp, apiDown] = await Promise.all([
      ok(["audit", "verify"]),
      ok(["verify-tx", txIds[1]]),
      ok(["tx", "export", "--db", "--agent-id", agentId]),
      cli(["agents", "list"]),
    ]);
    expect(audit.json).toMatchObject({ chain_valid: true, events_unsealed: 0 });
    expect(audit.json.events_verified).toBeGreaterThan(5);
    expect(verify.json.ok).toBe(true);
    expect(
      exp.stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l).id),
    ).toEqual(txIds);
    expect(apiDown.code).toBe(1);
    expect(apiDown.stderr).toMatch(/cannot reach the service/);

    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      // An audit event edited behind the append-only trigger's back.
      const { rows } = await c.query("SELECT id, action FROM audit_events WHERE chain_seq IS NOT NULL ORDER BY chain_seq OFFSET 3 LIMIT 1");
      const target = rows[0];
      await c.query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update");
      await c.query(`UPDATE audit_events SET details = details || '{"tampered": true}' WHERE id = $1`, [target.id]);
      await c.query("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update");
      // A stored signed_tx swapped for another transaction's, and a row whose recipient was edited.
      await c.query("UPDATE transactions SET signed_tx = (SELECT signed_tx FROM transactions WHERE id = $2) WHERE id = $1", [
        txIds[0],
        txIds[1],
      ]);
      await c.query("UPDATE transactions SET to_address = '0x1111111111111111111111111111111111111111' WHERE id = $1", [txIds[2]]);

      const [broken, swapped, redirected, intact, missing] = await Promise.all([
        cli(["audit", "verify"]),
        cli(["verify-tx", txIds[0]]),
        cli(["verify-tx", txIds[2]]),
        cli(["verify-tx", txIds[1]]),
        cli(["verify-tx", "00000000-0000-4000-8000-000000000000"]),
      ]);
      expect(broken.code).toBe(1);
      expect(broken.json).toMatchObject({
        chain_valid: false,
        broken_at_event_id: target.id,
        events_verified: 3,
        broken_event: { id: target.id, action: target.action },
      });
      expect(broken.stderr).toContain(target.id);
      expect(broken.stderr).toContain(target.action);

      expect(swapped.code).toBe(1);
      expect(swapped.json.ok).toBe(false);
      const failed = swapped.json.checks.filter((x: { ok: boolean }) => !x.ok).map((x: { check: string }) => x.check);
      expect(failed).toEqual(expect.arrayContaining(["tx_hash", "nonce"]));
      expect(swapped.stderr).toMatch(/MISMATCH/);
      expect(redirected.code).toBe(1);
      expect(redirected.json.checks.filter((x: { ok: boolean }) => !x.ok).map((x: { check: string }) => x.check)).toEqual(["to"]);
      expect(intact.code).toBe(0);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/no transaction/);
    } finally {
      await c.end();
    }
  });
});
