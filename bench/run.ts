// `npm run bench`: the service measured against the physical limits of its own parts, in one run.
//
// Starts its own stack (embedded PostgreSQL, a SoftHSM token, anvil with automine, the service on a
// free port, all under a temporary folder), then measures, in this order:
//   1. baselines: the HSM's signed-transaction rate (serialize + sign + low-s + yParity, in a loop) and
//      PostgreSQL's row-lock rate (BEGIN; SELECT … FOR UPDATE; UPDATE; COMMIT on one row, 8 clients);
//   2. end to end over HTTP (a separate load process, keep-alive sockets): N submits by C concurrent
//      clients on one signing address, then on A addresses, each until every transaction is mined;
//   3. idempotent replay latency; 4. list latency on a table seeded by SQL to 1,000,000 rows;
//   5. the per-stage breakdown from the service's own histograms (lock wait, sign, commit, broadcast).
// Prints a human table on stderr and one JSON document on stdout (`npm run -s bench > bench.json`, or
// --json FILE). Exit status 1 only when an answer was wrong (a submit refused, a nonce duplicated or
// skipped, the chain and the database disagreeing); missed performance targets are printed as MISS.
//
// Flags: --n 2000 --concurrency 32 --addresses 8 --list-rows 1000000 --replays 1000 --list-samples 300
//        --quick (CI smoke: small sizes, well under a minute) --json FILE (also write the JSON there)
//        --skip baselines,single,multi,replay,list (leave phases out, e.g. for A/B runs)
//        --keep (keep the data folder) --profile FILE (V8 CPU profile of the service during the
//        one-address run, written to FILE, heaviest functions in the JSON). Environment variables the service reads (PKCS11_POOL_SIZE,
//        LOG_LEVEL, MAX_INFLIGHT_PER_ADDRESS, …) are passed through; DATABASE_URL is ignored.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { monitorEventLoopDelay } from "node:perf_hooks";
import pg from "pg";
import pino from "pino";
import { createPublicClient, http, type Address, type TransactionSerializable } from "viem";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createContext, type Context } from "../src/context.js";
import { createLogger } from "../src/log.js";
import type { App } from "../src/http/types.js";
import { VERSION } from "../src/version.js";
import { cpuDelta, cpuSnapshot, machineSnapshot, stealShare, startProfile } from "./cpu.js";
import { LoadClient, type Outcome, type RequestSpec } from "./load.js";
import { histogramByLabel, round, summarize, type StageFigures, type Summary } from "./stats.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";

const { values: flags } = parseArgs({
  options: {
    n: { type: "string" },
    concurrency: { type: "string" },
    addresses: { type: "string" },
    "list-rows": { type: "string" },
    replays: { type: "string" },
    "list-samples": { type: "string" },
    quick: { type: "boolean", default: false },
    json: { type: "string" },
    profile: { type: "string" },
    keep: { type: "boolean", default: false },
    skip: { type: "string" },
  },
  strict: true,
});

const quick = flags.quick === true;
const num = (v: string | undefined, dflt: number, name: string) => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
};
const opts = {
  n: num(flags.n, quick ? 200 : 2000, "n"),
  concurrency: num(flags.concurrency, 32, "concurrency"),
  addresses: num(flags.addresses, 8, "addresses"),
  listRows: num(flags["list-rows"], quick ? 20_000 : 1_000_000, "list-rows"),
  replays: num(flags.replays, quick ? 100 : 1000, "replays"),
  listSamples: num(flags["list-samples"], quick ? 50 : 300, "list-samples"),
  warmup: quick ? 40 : 100,
  hsmSigns: quick ? 300 : 3000,
  pgSeconds: quick ? 1 : 3,
};

const PHASES = ["baselines", "single", "multi", "replay", "list"];
const skip = new Set(
  (flags.skip ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean),
);
for (const p of skip) if (!PHASES.includes(p)) throw new Error(`--skip: unknown phase '${p}' (phases: ${PHASES.join(", ")})`);

const TARGETS = {
  single_tps: 300,
  single_vs_baseline: 0.5,
  multi_vs_single: 1.3,
  p99_ms: 250,
  replay_p50_ms: 3,
  list_p99_ms: 50,
};

const progress = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Stack {
  ctx: Context;
  app: App;
  baseUrl: string;
  dataDir: string;
  operatorKey: string;
  close(): Promise<void>;
}

async function startStack(): Promise<Stack> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "intents-bench-"));
  fs.chmodSync(dataDir, 0o755); // the embedded PostgreSQL runs as `postgres` when we are root
  const operatorKey = "1ck_" + randomBytes(32).toString("base64url");
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ["DATABASE_URL", "PKCS11_MODULE", "PKCS11_PIN", "CHAIN_LOCAL_RPC_URLS", "CHAINS_FILE"]) delete env[k];
  const config = loadConfig({
    ...env,
    DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: "0",
    ADMIN_API_KEY: operatorKey,
    LOCAL_CHAIN: "anvil",
    // The bench's chain is thrown away: no periodic state dumps (they would load anvil's CPU figures).
    LOCAL_CHAIN_STATE_INTERVAL_SECONDS: "0",
    PKCS11_TOKEN_LABEL: "bench",
    LOG_LEVEL: env.LOG_LEVEL ?? "info",
  });
  // Logged as in production (default level info), but to a file so the bench output stays readable.
  const logFile = path.join(dataDir, "service.log");
  const log = createLogger(config.logLevel, pino.destination({ dest: logFile, sync: false, mkdir: true }));
  const ctx = await createContext(config, log);
  const app = await buildApp(ctx);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    ctx,
    app,
    baseUrl: `http://127.0.0.1:${port}`,
    dataDir,
    operatorKey,
    close: async () => {
      await app.close();
      await ctx.close();
      if (!flags.keep) fs.rmSync(dataDir, { recursive: true, force: true });
      else progress(`data kept in ${dataDir}`);
    },
  };
}

/* ---------------------------------------------- baselines ---------------------------------------------- */

async function hsmBaseline(
  ctx: Context,
): Promise<{ sequential_tx_per_s: number; concurrent4_tx_per_s: number; signs: number; mean_ms: number }> {
  const keyPath = "bench/baseline";
  await ctx.signer.createKey(keyPath);
  const tx = (nonce: number): TransactionSerializable => ({
    chainId: 31337,
    nonce,
    to: DEAD,
    value: BigInt(nonce),
    gas: 21_000n,
    maxFeePerGas: 2_000_000_000n,
    maxPriorityFeePerGas: 1_000_000n,
    type: "eip1559",
  });
  for (let i = 0; i < 200; i++) await ctx.signer.signTransaction(keyPath, tx(i)); // warm-up
  const n = opts.hsmSigns;
  let t0 = performance.now();
  for (let i = 0; i < n; i++) await ctx.signer.signTransaction(keyPath, tx(i));
  const seqMs = performance.now() - t0;
  let next = 0;
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < n) await ctx.signer.signTransaction(keyPath, tx(next++));
    }),
  );
  const concMs = performance.now() - t0;
  return {
    sequential_tx_per_s: round((n / seqMs) * 1000, 0),
    concurrent4_tx_per_s: round((n / concMs) * 1000, 0),
    signs: n,
    mean_ms: round(seqMs / n, 3),
  };
}

async function pgBaseline(url: string): Promise<{ tx_per_s: number; clients: number; latency: Summary; lost_updates: number }> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query("CREATE TABLE IF NOT EXISTS bench_row_lock (id int PRIMARY KEY, n bigint NOT NULL)");
  await admin.query("INSERT INTO bench_row_lock VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0");
  const clients = await Promise.all(
    Array.from({ length: 8 }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  const samples: number[] = [];
  let done = 0;
  const loop = async (c: pg.Client, until: number, record: boolean) => {
    while (performance.now() < until) {
      const t = performance.now();
      await c.query("BEGIN");
      const { rows } = await c.query<{ n: string }>("SELECT n FROM bench_row_lock WHERE id = 1 FOR UPDATE");
      await c.query("UPDATE bench_row_lock SET n = $1 WHERE id = 1", [BigInt(rows[0].n) + 1n]);
      await c.query("COMMIT");
      if (record) {
        samples.push(performance.now() - t);
        done++;
      }
    }
  };
  await Promise.all(clients.map((c) => loop(c, performance.now() + 300, false))); // warm-up
  const before = Number((await admin.query("SELECT n FROM bench_row_lock WHERE id = 1")).rows[0].n);
  const t0 = performance.now();
  await Promise.all(clients.map((c) => loop(c, t0 + opts.pgSeconds * 1000, true)));
  const ms = performance.now() - t0;
  const after = Number((await admin.query("SELECT n FROM bench_row_lock WHERE id = 1")).rows[0].n);
  await Promise.all(clients.map((c) => c.end()));
  await admin.query("DROP TABLE bench_row_lock");
  await admin.end();
  return { tx_per_s: round((done / ms) * 1000, 0), clients: 8, latency: summarize(samples), lost_updates: done - (after - before) };
}

/* ---------------------------------------------- API setup ---------------------------------------------- */

async function api<T = any>(stack: Stack, method: string, url: string, token: string, body?: unknown): Promise<T> {
  const r = await fetch(stack.baseUrl + url, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

interface BenchAgent {
  id: string;
  token: string;
}

async function createBenchAgent(stack: Stack, name: string): Promise<BenchAgent> {
  // Fee limits stay on (the default path: spend lock and rolling sums per commit group), with a daily
  // fee budget large enough for every run's thousands of transfers. The request budget is far above the
  // bench's rate, so it is counted on every request (its cost is measured) but never refuses one.
  const created = await api<{ agent: { id: string }; api_key: string }>(stack, "POST", "/v1/agents", stack.operatorKey, {
    name,
    intents_api_enabled: true,
    tx_daily_fee_budget: "1000",
    requests_per_minute: 10_000_000,
  });
  const tok = await fetch(`${stack.baseUrl}/v1/auth/agent-token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ api_key: created.api_key, agent_id: created.agent.id }),
  });
  const { access_token } = (await tok.json()) as { access_token: string };
  return { id: created.agent.id, token: access_token };
}

/** Signing keys for the bench agent: created, granted to it (keys are granted, not guessed) and funded. */
async function createFundedKeys(stack: Stack, agentId: string, count: number): Promise<Array<{ path: string; address: Address }>> {
  const chain = createPublicClient({ transport: http(stack.ctx.localChainUrl!) });
  const keys: Array<{ path: string; address: Address }> = [];
  for (let i = 0; i < count; i++) {
    const p = `keys/bench-${i}`;
    const k = await api<{ id: string; address: Address }>(stack, "POST", "/v1/signing-keys", stack.operatorKey, {
      path: p,
      chain: "local",
    });
    await api(stack, "POST", `/v1/signing-keys/${k.id}/grants`, stack.operatorKey, { agent_id: agentId });
    await chain.request({ method: "anvil_setBalance" as never, params: [k.address, "0xd3c21bcecceda1000000"] as never });
    keys.push({ path: p, address: k.address });
  }
  return keys;
}

/* ---------------------------------------------- end to end ---------------------------------------------- */

interface E2eResult {
  n: number;
  concurrency: number;
  addresses: number;
  throughput_tx_per_s: number;
  answered_tx_per_s: number;
  wall_s: number;
  /** How long after the last answer the last transaction was mined (the node's and tracker's share). */
  mined_after_last_answer_ms: number;
  /** PostgreSQL transactions (commits + rollbacks, autocommit statements included) per submission, tracker and sealer included. */
  postgres_transactions_per_tx: number;
  latency: Summary;
  statuses: Record<string, number>;
  ratio_to_smaller_baseline?: number;
  consistency: { mined: number; expected: number; duplicate_nonces: number; nonce_gaps: number; chain_matches_db: boolean };
  stages: Record<string, StageFigures>;
  hsm_sign: Record<string, StageFigures>;
  /** CPU used during the run, per process kind: total seconds and milliseconds per transaction. */
  cpu?: { seconds: Record<string, number>; ms_per_tx: Record<string, number>; machine_utilisation: number; steal_share?: number };
  profile?: Array<{ fn: string; self_pct: number }>;
  /** Sends during the run by outcome (accepted, already_known, rejected, nonce_used, unknown). */
  broadcasts: Record<string, number>;
  /** The service's own view: mean time inside the submit route, and how late its event loop ran. */
  server: {
    submit_route_mean_ms: number;
    pipeline_stages_mean_ms: number;
    /** Route time no stage histogram covers: authentication, validation, the idempotency claim and the
     *  answer. Approximate: per-group stages (commit, broadcast) are one observation per group. */
    untimed_mean_ms: number;
    event_loop_delay_ms: { p50: number; p99: number; max: number };
  };
}

function submitRequests(agent: BenchAgent, keys: Array<{ path: string }>, n: number, tag: string): RequestSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    method: "POST",
    path: `/v1/agents/${agent.id}/transactions`,
    headers: { authorization: `Bearer ${agent.token}`, "idempotency-key": `${tag}-${i}` },
    body: JSON.stringify({ to: DEAD, value: "0.000001", chain: "local", signing_key_path: keys[i % keys.length].path }),
  }));
}

function countStatuses(outcomes: Outcome[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [status, , detail] of outcomes) {
    const k = `${status}${detail ? ` ${detail}` : ""}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

async function waitMined(stack: Stack, expected: Map<Address, number>, timeoutMs = 120_000): Promise<number> {
  const chain = createPublicClient({ transport: http(stack.ctx.localChainUrl!) });
  const end = Date.now() + timeoutMs;
  for (;;) {
    const counts = await Promise.all([...expected.keys()].map((a) => chain.getTransactionCount({ address: a, blockTag: "latest" })));
    if ([...expected.values()].every((want, i) => counts[i] >= want)) return Date.now();
    if (Date.now() > end)
      throw new Error(
        `not all transactions mined after ${timeoutMs} ms: ${JSON.stringify(counts)} vs ${JSON.stringify([...expected.values()])}`,
      );
    await sleep(10);
  }
}

async function chainCounts(stack: Stack, addresses: Address[]): Promise<Map<Address, number>> {
  const chain = createPublicClient({ transport: http(stack.ctx.localChainUrl!) });
  const m = new Map<Address, number>();
  for (const a of addresses) m.set(a, await chain.getTransactionCount({ address: a, blockTag: "pending" }));
  return m;
}

/** Every signing address: DB nonces distinct and consecutive from 0, and the chain's count equal to the DB's. */
async function checkConsistency(
  stack: Stack,
  addresses: Address[],
): Promise<{ duplicate_nonces: number; nonce_gaps: number; chain_matches_db: boolean; mined: number }> {
  const chain = createPublicClient({ transport: http(stack.ctx.localChainUrl!) });
  let dup = 0;
  let gaps = 0;
  let matches = true;
  let mined = 0;
  for (const a of addresses) {
    const { rows } = await stack.ctx.pool.query<{ n: string; d: string; mx: string | null; mn: string | null }>(
      `SELECT count(*) AS n, count(DISTINCT nonce) AS d, max(nonce) AS mx, min(nonce) AS mn FROM transactions
        WHERE chain_id = 31337 AND from_address = $1 AND status IN ('broadcast', 'signed')`,
      [a.toLowerCase()],
    );
    const n = Number(rows[0].n);
    const d = Number(rows[0].d);
    dup += n - d;
    // Fresh keys: the nonces must be exactly 0 … d-1.
    if (n > 0) gaps += Number(rows[0].mx) + 1 - d;
    const onChain = await chain.getTransactionCount({ address: a, blockTag: "latest" });
    if (onChain !== d) matches = false;
    mined += onChain;
  }
  return { duplicate_nonces: dup, nonce_gaps: gaps, chain_matches_db: matches, mined };
}

async function e2e(
  stack: Stack,
  load: LoadClient,
  agent: BenchAgent,
  keys: Array<{ path: string; address: Address }>,
  n: number,
  concurrency: number,
  tag: string,
  profileFile?: string,
): Promise<E2eResult> {
  const addresses = keys.map((k) => k.address);
  const before = await chainCounts(stack, addresses);
  const expected = new Map(addresses.map((a, i) => [a, before.get(a)! + Math.floor(n / keys.length) + (i < n % keys.length ? 1 : 0)]));
  const requests = submitRequests(agent, keys, n, tag);
  stack.ctx.metrics.stageDuration.reset();
  stack.ctx.metrics.hsmSignDuration.reset();
  stack.ctx.metrics.httpDuration.reset();
  stack.ctx.metrics.broadcastResults.reset();
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  const stopProfile = profileFile ? await startProfile() : undefined;
  const pgXacts = async () =>
    Number(
      (await stack.ctx.pool.query("SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()"))
        .rows[0].n,
    );
  const xactsBefore = await pgXacts();
  const cpuBefore = cpuSnapshot(load.pid);
  const machineBefore = machineSnapshot();
  const done = await load.run(stack.baseUrl, concurrency, requests);
  // A refused submit is a wrong answer: say which at once rather than wait for blocks that cannot come.
  if (done.outcomes.some((o) => o[0] !== 201))
    throw new Error(`${tag}: submits not accepted: ${JSON.stringify(countStatuses(done.outcomes))}`);
  const minedAt = await waitMined(stack, expected);
  const cpuUsed = cpuDelta(cpuBefore, cpuSnapshot(load.pid));
  const steal = stealShare(machineBefore, machineSnapshot());
  // Every statement outside BEGIN…COMMIT is a transaction of its own, so this counts round trips that commit.
  const pgTransactionsPerTx = round(((await pgXacts()) - xactsBefore) / n, 2);
  const profile = stopProfile ? await stopProfile(profileFile) : undefined;
  loopDelay.disable();
  const http = await histogramByLabel(stack.ctx.metrics.httpDuration as never, "route");
  const stages = await histogramByLabel(stack.ctx.metrics.stageDuration as never, "stage");
  const wallS = (minedAt - done.startedAt) / 1000;
  const consistency = await checkConsistency(stack, addresses);
  // Every send of the run, by the node's answer (first sends and the tracker's resends): a slow
  // "until mined" is explained here (an unknown outcome waits for the tracker's resend).
  const broadcasts = Object.fromEntries(
    (await stack.ctx.metrics.broadcastResults.get()).values.map((v) => [String(v.labels.outcome), v.value]),
  );
  const cpu = cpuUsed && {
    seconds: cpuUsed,
    ms_per_tx: Object.fromEntries(Object.entries(cpuUsed).map(([k, v]) => [k, round((v * 1000) / n, 2)])),
    // service_kernel is part of service, not added again.
    machine_utilisation: round(
      Object.entries(cpuUsed)
        .filter(([k]) => k !== "service_kernel")
        .reduce((a, [, b]) => a + b, 0) /
        (wallS * os.availableParallelism()),
      2,
    ),
    /** CPU time the hypervisor gave other guests during the run: high values explain a slow run. */
    steal_share: steal === undefined ? undefined : round(steal, 3),
  };
  return {
    cpu,
    profile,
    broadcasts,
    n,
    concurrency,
    addresses: keys.length,
    throughput_tx_per_s: round(n / wallS, 0),
    answered_tx_per_s: round((n / done.wallMs) * 1000, 0),
    wall_s: round(wallS, 2),
    mined_after_last_answer_ms: round(minedAt - done.startedAt - done.wallMs, 0),
    postgres_transactions_per_tx: pgTransactionsPerTx,
    latency: summarize(done.outcomes.map((o) => o[1])),
    statuses: countStatuses(done.outcomes),
    consistency: { ...consistency, expected: [...expected.values()].reduce((a, b) => a + b, 0) },
    stages,
    server: {
      submit_route_mean_ms: http["/v1/agents/:agent_id/transactions"]?.mean_ms ?? NaN,
      pipeline_stages_mean_ms: round(
        Object.values(stages).reduce((a, b) => a + b.mean_ms, 0),
        2,
      ),
      untimed_mean_ms: round(
        (http["/v1/agents/:agent_id/transactions"]?.mean_ms ?? NaN) - Object.values(stages).reduce((a, b) => a + b.mean_ms, 0),
        2,
      ),
      event_loop_delay_ms: {
        p50: round(loopDelay.percentile(50) / 1e6),
        p99: round(loopDelay.percentile(99) / 1e6),
        max: round(loopDelay.max / 1e6),
      },
    },
    hsm_sign: await histogramByLabel(stack.ctx.metrics.hsmSignDuration as never, "none"),
  };
}

/* ---------------------------------------------- replay and list ---------------------------------------------- */

async function replay(
  stack: Stack,
  load: LoadClient,
  agent: BenchAgent,
  key: string,
): Promise<Summary & { statuses: Record<string, number> }> {
  const spec: RequestSpec = {
    method: "POST",
    path: `/v1/agents/${agent.id}/transactions`,
    headers: { authorization: `Bearer ${agent.token}`, "idempotency-key": `replay-${randomBytes(8).toString("hex")}` },
    body: JSON.stringify({ to: DEAD, value: "0.000002", chain: "local", signing_key_path: key }),
  };
  const first = await load.run(stack.baseUrl, 1, [spec]);
  if (first.outcomes[0][0] !== 201) throw new Error(`replay: first submit answered ${first.outcomes[0][0]}`);
  await load.run(
    stack.baseUrl,
    1,
    Array.from({ length: 50 }, () => spec),
  ); // warm-up
  const done = await load.run(
    stack.baseUrl,
    1,
    Array.from({ length: opts.replays }, () => spec),
  );
  return { ...summarize(done.outcomes.map((o) => o[1])), statuses: countStatuses(done.outcomes) };
}

/** Seeds `rows` transactions by SQL, spread over 10 agents (the bench agent is one of them). */
async function seedTransactions(
  stack: Stack,
  agentId: string,
  rows: number,
): Promise<{ seconds: number; table_rows: number; agent_rows: number }> {
  const t0 = performance.now();
  const agents = [agentId, ...Array.from({ length: 9 }, () => crypto.randomUUID())];
  const batch = 100_000;
  // A plausible EIP-1559 signed transaction: the list serializes it only when asked, but the row size counts.
  const signed = "0x02f8" + "ab".repeat(110);
  for (let start = 0; start < rows; start += batch) {
    const end = Math.min(rows, start + batch);
    await stack.ctx.pool.query(
      `INSERT INTO transactions (id, agent_id, chain, chain_id, from_address, to_address, value_wei, nonce, gas_limit,
          max_fee_per_gas, max_priority_fee_per_gas, tx_type, signing_key_path, status, tx_hash, signed_tx,
          chain_status, block_number, confirmations, broadcast_attempts, created_at, signed_at, updated_at)
       SELECT gen_random_uuid(), ($3::uuid[])[1 + i % 10], 'local', 31337, '0x' || lpad(to_hex(i % 10), 40, '0'), $4,
              (i % 1000) * 1000000000000, i / 10, 21000, 2000000000, 1000000, 'eip1559', 'keys/seeded',
              CASE WHEN i % 20 = 0 THEN 'failed' WHEN i % 20 = 1 THEN 'sign_only' ELSE 'broadcast' END,
              '0x' || md5(i::text) || md5((i + 7)::text), $5,
              CASE WHEN i % 20 < 2 THEN NULL ELSE 'confirmed' END, CASE WHEN i % 20 < 2 THEN NULL ELSE i END, 12, 1,
              now() - interval '1 hour' - i * interval '1 second', now() - interval '1 hour' - i * interval '1 second', now()
         FROM generate_series($1::int, $2::int - 1) AS i`,
      [start, end, agents, DEAD.toLowerCase(), signed],
    );
    progress(`seeded ${end.toLocaleString("en-US")} / ${rows.toLocaleString("en-US")} rows`);
  }
  await stack.ctx.pool.query("VACUUM ANALYZE transactions");
  const { rows: c } = await stack.ctx.pool.query<{ t: string; a: string }>(
    "SELECT (SELECT count(*) FROM transactions) AS t, (SELECT count(*) FROM transactions WHERE agent_id = $1) AS a",
    [agentId],
  );
  return { seconds: round((performance.now() - t0) / 1000, 1), table_rows: Number(c[0].t), agent_rows: Number(c[0].a) };
}

async function listLatency(
  stack: Stack,
  load: LoadClient,
  agent: BenchAgent,
): Promise<Record<string, Summary & { statuses: Record<string, number> }>> {
  const agentAuth = { authorization: `Bearer ${agent.token}` };
  const opAuth = { authorization: `Bearer ${stack.operatorKey}` };
  // A cursor deep in the agent's history: the page after its 50,000th row (or its middle).
  const { rows } = await stack.ctx.pool.query<{ created_at: Date; id: string }>(
    `SELECT created_at, id FROM transactions WHERE agent_id = $1 ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1`,
    [agent.id, Math.min(50_000, Math.floor(opts.listRows / 20))],
  );
  const deep = rows[0] ? Buffer.from(`${rows[0].created_at.toISOString()}|${rows[0].id}`).toString("base64url") : undefined;
  const cases: Record<string, { path: string; headers: Record<string, string> }> = {
    agent_first_page: { path: `/v1/agents/${agent.id}/transactions`, headers: agentAuth },
    agent_limit_500: { path: `/v1/agents/${agent.id}/transactions?limit=500`, headers: agentAuth },
    agent_status_failed: { path: `/v1/agents/${agent.id}/transactions?status=failed`, headers: agentAuth },
    agent_chain_status_confirmed: { path: `/v1/agents/${agent.id}/transactions?chain_status=confirmed&chain=local`, headers: agentAuth },
    operator_all_agents: { path: `/v1/transactions`, headers: opAuth },
  };
  if (deep) cases.agent_deep_cursor = { path: `/v1/agents/${agent.id}/transactions?cursor=${deep}`, headers: agentAuth };
  const out: Record<string, Summary & { statuses: Record<string, number> }> = {};
  for (const [name, c] of Object.entries(cases)) {
    const spec: RequestSpec = { method: "GET", path: c.path, headers: c.headers };
    await load.run(
      stack.baseUrl,
      1,
      Array.from({ length: 20 }, () => spec),
    ); // warm-up (plans, buffers)
    const done = await load.run(
      stack.baseUrl,
      1,
      Array.from({ length: opts.listSamples }, () => spec),
    );
    out[name] = { ...summarize(done.outcomes.map((o) => o[1])), statuses: countStatuses(done.outcomes) };
  }
  return out;
}

/* ---------------------------------------------- report ---------------------------------------------- */

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ")).join("\n");
}

type Target = { name: string; target: string; value: number | string; pass: boolean };

async function main(): Promise<void> {
  const t0 = Date.now();
  const loadavgStart = os.loadavg();
  progress(
    `starting stack (embedded PostgreSQL, SoftHSM, anvil) — ${JSON.stringify(opts)}${skip.size ? ` skipping ${[...skip].join(",")}` : ""}`,
  );
  const stack = await startStack();
  const load = new LoadClient();
  try {
    let hsm: Awaited<ReturnType<typeof hsmBaseline>> | undefined;
    let pgb: Awaited<ReturnType<typeof pgBaseline>> | undefined;
    if (!skip.has("baselines")) {
      progress("baseline: HSM signed-transaction rate");
      hsm = await hsmBaseline(stack.ctx);
      progress(`  ${hsm.sequential_tx_per_s} tx/s sequential, ${hsm.concurrent4_tx_per_s} tx/s with 4 callers`);
      progress("baseline: PostgreSQL row-lock rate (8 clients)");
      pgb = await pgBaseline(stack.ctx.databaseUrl);
      progress(`  ${pgb.tx_per_s} tx/s, p99 ${pgb.latency.p99_ms} ms, lost updates ${pgb.lost_updates}`);
    }
    const smaller = hsm && pgb ? Math.min(hsm.sequential_tx_per_s, pgb.tx_per_s) : undefined;

    const agent = await createBenchAgent(stack, "bench");
    const keys = await createFundedKeys(stack, agent.id, Math.max(1, opts.addresses));
    progress(`warm-up: ${2 * opts.warmup} submits`);
    await e2e(stack, load, agent, keys.slice(0, 1), opts.warmup, 8, "warm-a");
    await e2e(stack, load, agent, keys, opts.warmup, 8, "warm-b");

    let single: E2eResult | undefined;
    let multi: E2eResult | undefined;
    if (!skip.has("single")) {
      progress(`end to end: ${opts.n} submits, ${opts.concurrency} clients, 1 signing address`);
      single = await e2e(stack, load, agent, keys.slice(0, 1), opts.n, opts.concurrency, "single", flags.profile);
      if (smaller) single.ratio_to_smaller_baseline = round(single.throughput_tx_per_s / smaller, 2);
      progress(`  ${single.throughput_tx_per_s} tx/s mined, p99 ${single.latency.p99_ms} ms`);
    }
    if (!skip.has("multi")) {
      progress(`end to end: ${opts.n} submits, ${opts.concurrency} clients, ${keys.length} signing addresses`);
      multi = await e2e(stack, load, agent, keys, opts.n, opts.concurrency, "multi");
      if (smaller) multi.ratio_to_smaller_baseline = round(multi.throughput_tx_per_s / smaller, 2);
      progress(`  ${multi.throughput_tx_per_s} tx/s mined, p99 ${multi.latency.p99_ms} ms`);
    }

    let rep: Awaited<ReturnType<typeof replay>> | undefined;
    if (!skip.has("replay")) {
      progress(`idempotent replay: ${opts.replays} sequential replays`);
      rep = await replay(stack, load, agent, keys[0].path);
    }

    let seeded: Awaited<ReturnType<typeof seedTransactions>> | undefined;
    let list: Awaited<ReturnType<typeof listLatency>> | undefined;
    if (!skip.has("list")) {
      progress(`seeding ${opts.listRows.toLocaleString("en-US")} transactions by SQL`);
      seeded = await seedTransactions(stack, agent.id, opts.listRows);
      progress(`list latency: ${opts.listSamples} sequential requests per case`);
      list = await listLatency(stack, load, agent);
    }

    const targets: Target[] = [];
    if (single) {
      targets.push({
        name: "one address throughput",
        target: `>= ${TARGETS.single_tps} tx/s`,
        value: single.throughput_tx_per_s,
        pass: single.throughput_tx_per_s >= TARGETS.single_tps,
      });
      if (single.ratio_to_smaller_baseline !== undefined) {
        targets.push({
          name: "one address vs smaller baseline",
          target: `>= ${TARGETS.single_vs_baseline} x`,
          value: single.ratio_to_smaller_baseline,
          pass: single.ratio_to_smaller_baseline >= TARGETS.single_vs_baseline,
        });
      }
    }
    if (single && multi) {
      const ratio = round(multi.throughput_tx_per_s / single.throughput_tx_per_s, 2);
      targets.push({
        name: `${keys.length} addresses vs one`,
        target: `>= ${TARGETS.multi_vs_single} x`,
        value: ratio,
        pass: ratio >= TARGETS.multi_vs_single,
      });
    }
    if (single)
      targets.push({
        name: `p99 at ${opts.concurrency} clients, one address`,
        target: `< ${TARGETS.p99_ms} ms`,
        value: single.latency.p99_ms,
        pass: single.latency.p99_ms < TARGETS.p99_ms,
      });
    if (multi)
      targets.push({
        name: `p99 at ${opts.concurrency} clients, ${keys.length} addresses`,
        target: `< ${TARGETS.p99_ms} ms`,
        value: multi.latency.p99_ms,
        pass: multi.latency.p99_ms < TARGETS.p99_ms,
      });
    if (rep)
      targets.push({
        name: "idempotent replay p50",
        target: `< ${TARGETS.replay_p50_ms} ms`,
        value: rep.p50_ms,
        pass: rep.p50_ms < TARGETS.replay_p50_ms,
      });
    if (list && seeded)
      targets.push({
        name: `list p99 at ${seeded.table_rows.toLocaleString("en-US")} rows`,
        target: `< ${TARGETS.list_p99_ms} ms`,
        value: list.agent_first_page.p99_ms,
        pass: list.agent_first_page.p99_ms < TARGETS.list_p99_ms,
      });
    const runs = [single, multi].filter((r): r is E2eResult => r !== undefined);
    if (runs.length) {
      const dup = runs.reduce((a, r) => a + r.consistency.duplicate_nonces, 0);
      const gaps = runs.reduce((a, r) => a + r.consistency.nonce_gaps, 0);
      const same = runs.every((r) => r.consistency.chain_matches_db);
      targets.push({
        name: "no duplicate nonce, no gap, chain = DB",
        target: "0 / 0 / true",
        value: `${dup} / ${gaps} / ${same}`,
        pass: dup === 0 && gaps === 0 && same,
      });
    }

    const result = {
      bench: "intents-signer",
      version: VERSION,
      at: new Date().toISOString(),
      quick,
      machine: {
        cores: os.availableParallelism(),
        cpu: os.cpus()[0]?.model ?? "unknown",
        memory_gb: round(os.totalmem() / 2 ** 30, 1),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
        // Other work on the machine skews every figure: the 1-minute load average before and after.
        loadavg_1m: { start: round(loadavgStart[0]), end: round(os.loadavg()[0]) },
      },
      options: {
        n: opts.n,
        concurrency: opts.concurrency,
        addresses: keys.length,
        list_rows: opts.listRows,
        replays: opts.replays,
        list_samples: opts.listSamples,
        log_level: stack.ctx.config.logLevel,
        pkcs11_pool_size: stack.ctx.config.pkcs11.poolSize,
        skipped: [...skip],
      },
      baselines: hsm && pgb ? { hsm_signed_tx: hsm, postgres_row_lock: pgb, smaller_tx_per_s: smaller } : undefined,
      e2e: { single_address: single, multi_address: multi },
      replay: rep,
      list: list && seeded ? { seeded, cases: list } : undefined,
      targets,
      all_targets_pass: targets.every((t) => t.pass),
      duration_s: round((Date.now() - t0) / 1000, 1),
    };

    const rows: string[][] = [["measure", "tx/s", "p50 ms", "p95 ms", "p99 ms", "note"]];
    if (hsm)
      rows.push([
        "HSM signed tx (sequential)",
        String(hsm.sequential_tx_per_s),
        String(hsm.mean_ms),
        "",
        "",
        `${hsm.concurrent4_tx_per_s} tx/s with 4 callers`,
      ]);
    if (pgb)
      rows.push([
        "Postgres row lock (8 clients)",
        String(pgb.tx_per_s),
        String(pgb.latency.p50_ms),
        String(pgb.latency.p95_ms),
        String(pgb.latency.p99_ms),
        `lost updates ${pgb.lost_updates}`,
      ]);
    if (single)
      rows.push([
        `submit, 1 address, ${opts.concurrency} clients`,
        String(single.throughput_tx_per_s),
        String(single.latency.p50_ms),
        String(single.latency.p95_ms),
        String(single.latency.p99_ms),
        single.ratio_to_smaller_baseline !== undefined ? `${single.ratio_to_smaller_baseline} x baseline` : "",
      ]);
    if (multi)
      rows.push([
        `submit, ${keys.length} addresses, ${opts.concurrency} clients`,
        String(multi.throughput_tx_per_s),
        String(multi.latency.p50_ms),
        String(multi.latency.p95_ms),
        String(multi.latency.p99_ms),
        single ? `${round(multi.throughput_tx_per_s / single.throughput_tx_per_s, 2)} x one address` : "",
      ]);
    if (rep) rows.push(["idempotent replay", "", String(rep.p50_ms), String(rep.p95_ms), String(rep.p99_ms), `${opts.replays} sequential`]);
    if (list && seeded)
      for (const [k, v] of Object.entries(list))
        rows.push([
          `list ${k}`,
          "",
          String(v.p50_ms),
          String(v.p95_ms),
          String(v.p99_ms),
          `${seeded.table_rows.toLocaleString("en-US")} rows`,
        ]);

    const stageRow = (r: E2eResult) =>
      ["queue_wait", "lock_wait", "sign", "commit", "broadcast", "chain_read", "guardrails"]
        .map((st) => (r.stages[st] ? `${st} ${r.stages[st].mean_ms}` : ""))
        .filter(Boolean)
        .join(", ");
    const detail: string[] = [];
    for (const [label, r] of [
      ["1 address", single],
      [`${keys.length} addresses`, multi],
    ] as const) {
      if (!r) continue;
      detail.push(`stages, mean ms (${label}): ${stageRow(r)}`);
      detail.push(
        `server view (${label}): ${r.server.submit_route_mean_ms} ms mean in the route = ${r.server.pipeline_stages_mean_ms} ms in timed stages + ${r.server.untimed_mean_ms} ms untimed (auth, validation, idempotency claim); event-loop delay p99 ${r.server.event_loop_delay_ms.p99} ms`,
      );
      detail.push(
        `answered at ${r.answered_tx_per_s} tx/s; the last transaction mined ${r.mined_after_last_answer_ms} ms after the last answer; ${r.postgres_transactions_per_tx} PostgreSQL transactions per submission`,
      );
      detail.push(
        `broadcasts (${label}): ${
          Object.entries(r.broadcasts)
            .map(([k, v]) => `${k} ${v}`)
            .join(", ") || "none"
        }`,
      );
      if (r.cpu)
        detail.push(
          `CPU ms per tx (${label}): ${Object.entries(r.cpu.ms_per_tx)
            .map(([k, v]) => `${k} ${v}`)
            .join(
              ", ",
            )}; machine ${Math.round(r.cpu.machine_utilisation * 100)}% busy with this stack${r.cpu.steal_share !== undefined ? `, ${Math.round(r.cpu.steal_share * 100)}% stolen by the hypervisor` : ""}`,
        );
    }
    const human = [
      `machine: ${result.machine.cores} cores, ${result.machine.cpu}, node ${result.machine.node}, load average ${result.machine.loadavg_1m.start} → ${result.machine.loadavg_1m.end}`,
      "",
      table(rows),
      "",
      ...detail,
      "",
      table([["target", "wanted", "measured", ""], ...targets.map((t) => [t.name, t.target, String(t.value), t.pass ? "PASS" : "MISS"])]),
      "",
    ].join("\n");
    process.stderr.write("\n" + human + "\n");
    const json = JSON.stringify(result, null, 2);
    process.stdout.write(json + "\n");
    if (flags.json) fs.writeFileSync(flags.json, json + "\n");
    // Missed performance targets are reported, not fatal; a wrong answer is (CI smoke runs rely on it).
    const wrong = runs.filter(
      (r) =>
        !Object.keys(r.statuses).every((k) => k.startsWith("201")) ||
        r.consistency.duplicate_nonces ||
        r.consistency.nonce_gaps ||
        !r.consistency.chain_matches_db,
    );
    if (wrong.length) {
      progress("FAILED: a submit was not accepted, or the chain and the database disagree (see statuses / consistency)");
      process.exitCode = 1;
    }
  } finally {
    load.close();
    await stack.close();
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
