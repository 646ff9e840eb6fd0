// The PostgreSQL pool and the one transaction helper every writer uses.
import pg from "pg";

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = pg.Pool | pg.PoolClient;

export function createPool(url: string, opts: { max?: number; applicationName?: string } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 20,
    application_name: opts.applicationName ?? "intents-signer",
    // Fail fast when the database is unreachable, so callers answer 503 instead of hanging.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection (database restart) must not crash the process.
  pool.on("error", () => {});
  return pool;
}

/** Runs `fn` inside BEGIN … COMMIT on one client; rolls back on any error. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // While a client is checked out the pool's own error listener is detached, so an error the server
  // sends between two queries (57P01 when PostgreSQL stops or restarts) would be an unhandled 'error'
  // event and kill the process. The query in progress is rejected anyway; here the error is only
  // remembered, and the broken client is destroyed on release instead of going back to the pool.
  let lost: Error | undefined;
  const onError = (err: Error) => {
    lost = err;
  };
  client.on("error", onError);
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    if (!lost) await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.removeListener("error", onError);
    client.release(lost);
  }
}
