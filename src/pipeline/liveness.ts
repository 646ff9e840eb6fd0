// Which processes are alive, as PostgreSQL sees them. Each process holds, for its whole life, a
// session-level advisory lock (class LIVENESS_LOCK_CLASS, a random key) on one dedicated connection.
// When the process dies, however it dies, its connection closes and PostgreSQL drops the lock: a
// claim stamped with that key (idempotency_keys.owner_key) is then known to be orphaned within the
// time the server needs to see the connection closed (at once for a killed process on a live host;
// TCP keepalive bounds a vanished host). No heartbeat to tune, no clock to trust.
// If the dedicated connection is lost while the process lives (a PostgreSQL restart), the lock is
// taken again on a new connection with the same key.
import { randomInt } from "node:crypto";
import pg from "pg";
import type { Logger } from "pino";

export const LIVENESS_LOCK_CLASS = 7371;

/** SQL true when the claim owner named by `column` (an owner_key) holds no liveness lock in this database. */
export const ownerGone = (column: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ${LIVENESS_LOCK_CLASS} AND l.objsubid = 2
                  AND l.objid = ${column}::oid
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`;

export class ProcessLiveness {
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  private constructor(
    readonly key: number,
    private readonly databaseUrl: string,
    private readonly log: Logger,
  ) {}

  static async start(databaseUrl: string, log: Logger): Promise<ProcessLiveness> {
    const live = new ProcessLiveness(randomInt(1, 2 ** 31 - 1), databaseUrl, log);
    await live.connect();
    return live;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl, keepAlive: true, application_name: "intents-liveness" });
    client.on("error", () => {}); // reported through "end"
    client.on("end", () => {
      if (this.stopped || this.client !== client) return;
      this.log.warn("liveness connection lost; taking the lock again");
      this.client = undefined;
      this.schedule();
    });
    await client.connect();
    await client.query("SELECT pg_advisory_lock($1, $2)", [LIVENESS_LOCK_CLASS, this.key]);
    this.client = client;
  }

  private schedule(): void {
    this.retry = setTimeout(() => {
      this.connect().catch(() => !this.stopped && this.schedule());
    }, 500);
    this.retry.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.client?.end().catch(() => {});
  }
}
