// Where the CLI's database commands (audit verify, verify-tx, tx export --db) find PostgreSQL,
// without the service running:
//   1. --database-url, else DATABASE_URL: that database.
//   2. Else the embedded cluster under DATA_DIR (--data-dir, default ./.data), as `npm start` made it:
//      a. running (the service is up): the port is line 4 of <DATA_DIR>/postgres/postmaster.pid, the
//         password is in <DATA_DIR>/postgres-password;
//      b. not running: the CLI starts it itself and stops it again when the command ends.
// While (b) runs the CLI holds the data folder's lock, so a service started meanwhile exits at once.
import fs from "node:fs";
import path from "node:path";
import { createPool, type Pool } from "../db/pool.js";
import { CommandFailed } from "./args.js";

export interface CliDatabase {
  pool: Pool;
  /** How it was found, for messages: "DATABASE_URL", "running embedded cluster", "embedded cluster started by the CLI". */
  source: string;
  close(): Promise<void>;
}

const EMBEDDED_DB = "intents";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by another user (postgres)
  }
}

/** The URL of a running embedded cluster, or undefined when none runs under dataDir. */
export function runningEmbeddedUrl(dataDir: string): string | undefined {
  let lines: string[];
  try {
    lines = fs.readFileSync(path.join(dataDir, "postgres", "postmaster.pid"), "utf8").split("\n");
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0 || !alive(pid)) return undefined;
  const password = fs.readFileSync(path.join(dataDir, "postgres-password"), "utf8").trim();
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${EMBEDDED_DB}`;
}

export async function openDatabase(opts: {
  databaseUrl?: string;
  dataDir?: string;
  notice?: (line: string) => void;
}): Promise<CliDatabase> {
  const connect = async (url: string, source: string, stop?: () => Promise<void>): Promise<CliDatabase> => {
    const pool = createPool(url, { max: 2, applicationName: "intents-cli" });
    try {
      await pool.query("SELECT 1");
    } catch (err) {
      await pool.end().catch(() => {});
      await stop?.().catch(() => {});
      throw new CommandFailed(`cannot connect to the database (${source}): ${(err as Error).message}`);
    }
    return {
      pool,
      source,
      close: async () => {
        await pool.end().catch(() => {});
        await stop?.();
      },
    };
  };

  if (opts.databaseUrl) return connect(opts.databaseUrl, "DATABASE_URL");

  const dataDir = path.resolve(opts.dataDir ?? "./.data");
  const running = runningEmbeddedUrl(dataDir);
  if (running) return connect(running, `running embedded cluster in ${dataDir}`);
  if (!fs.existsSync(path.join(dataDir, "postgres", "PG_VERSION"))) {
    throw new CommandFailed(
      `no database: set DATABASE_URL (or --database-url), or run from the folder whose ${path.relative(process.cwd(), dataDir) || dataDir} holds the embedded cluster (--data-dir)`,
    );
  }
  // The CLI owns the folder while its cluster runs: a service started meanwhile exits at once
  // (data-dir-lock.ts) instead of stopping this cluster under the command.
  const { lockDataDir } = await import("../data-dir-lock.js");
  let lock;
  try {
    lock = lockDataDir(dataDir);
  } catch (err) {
    throw new CommandFailed((err as Error).message);
  }
  opts.notice?.(`starting the embedded PostgreSQL in ${dataDir} for this command`);
  const { startEmbeddedPostgres } = await import("../db/embedded.js");
  const pg = await startEmbeddedPostgres({ dataDir, database: EMBEDDED_DB }).catch((err) => {
    lock.release();
    throw err;
  });
  return connect(pg.url, `embedded cluster in ${dataDir} (started by the CLI)`, async () => {
    await pg.stop();
    lock.release();
  });
}
