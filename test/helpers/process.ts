// The service as its own process, started the way `npm start` starts it (one node process with tsx as
// a loader, so signals reach the service itself), for tests of start-up, signals and crashes. The
// testing kit (src/testing.ts) starts its services with the same function.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll } from "vitest";
import { startAnvil, type AnvilNode, type AnvilOptions } from "../../src/chains/anvil.js";
import { spawnServiceProcess, type ServiceChild } from "../../src/testing.js";
import { newOperatorKey } from "./api.js";
import { createTestDatabase } from "./db.js";

export const ROOT = path.resolve(import.meta.dirname, "../..");

export type ServiceProcess = ServiceChild;

/** Every process below `pid` (PostgreSQL's postmaster and backends, anvil), from `ps`. */
export function descendants(pid: number): number[] {
  const out = execFileSync("ps", ["-e", "-o", "pid=,ppid="], { encoding: "utf8" });
  const pairs = out
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/).map(Number));
  const result: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of pairs) if (pp === p) (result.push(c), walk(c));
  };
  walk(pid);
  return result;
}

export function spawnService(env: Record<string, string>): ServiceProcess {
  return spawnServiceProcess(env);
}

export interface ProcessBench {
  /** The operator key every process gets (ADMIN_API_KEY). */
  readonly op: string;
  /** A temporary folder, removed at the end. */
  readonly dir: string;
  readonly anvil: AnvilNode;
  /** A database cloned from the template (outlives every process; dropped at the end) and a client on it. */
  readonly db: { url: string };
  readonly client: pg.Client;
  /** The processes spawned so far, in order. */
  readonly procs: ServiceProcess[];
  /** Spawns the service with the bench's database, chain and operator key, and `env`. */
  spawn(env: Record<string, string>): ServiceProcess;
}

/**
 * What tests of service processes (kill -9, several processes) share, made before the file's (or
 * describe's) tests: an anvil of their own, a database with a client on it, an operator key and a
 * folder; at the end every process still running is killed (-9) and the rest released.
 */
export function useProcessBench(opts: { anvil?: AnvilOptions; dirPrefix: string }): ProcessBench {
  const op = newOperatorKey();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), opts.dirPrefix));
  const procs: ServiceProcess[] = [];
  let anvil: AnvilNode | undefined;
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let client: pg.Client | undefined;
  beforeAll(async () => {
    anvil = await startAnvil(opts.anvil ?? {});
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    for (const p of procs) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill("SIGKILL");
    await client?.end();
    await db?.drop();
    await anvil?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("useProcessBench: read it inside a test or hook");
    return v;
  };
  return {
    op,
    dir,
    procs,
    get anvil() {
      return need(anvil);
    },
    get db() {
      return need(db);
    },
    get client() {
      return need(client);
    },
    spawn(env) {
      const p = spawnService({ DATABASE_URL: need(db).url, ADMIN_API_KEY: op, CHAIN_LOCAL_RPC_URLS: need(anvil).url, ...env });
      procs.push(p);
      return p;
    },
  };
}
