// A fresh database per test file, cloned from the migrated template made by global-setup.ts.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, inject } from "vitest";
import { createPool, type Pool } from "../../src/db/pool.js";

export async function createTestDatabase(): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const adminUrl = inject("pgAdminUrl");
  const template = inject("templateDb");
  const name = `t_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: `${adminUrl}/postgres` });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await admin.end();
  }
  return {
    url: `${adminUrl}/${name}`,
    name,
    drop: async () => {
      const c = new pg.Client({ connectionString: `${adminUrl}/postgres` });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A fresh database and a pool on it for tests without the service: made before the file's (or describe's) tests, dropped after them. */
export function useTestDatabase(poolSize = 10): { readonly url: string; readonly pool: Pool } {
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let pool: Pool | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
    pool = createPool(db.url, { max: poolSize });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("useTestDatabase: read the database inside a test or hook");
    return v;
  };
  return {
    get url() {
      return need(db).url;
    },
    get pool() {
      return need(pool);
    },
  };
}

/** An empty database (no migrations), for testing the migrator itself. */
export async function createEmptyDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = inject("pgAdminUrl");
  const name = `e_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: `${adminUrl}/postgres` });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    url: `${adminUrl}/${name}`,
    drop: async () => {
      const c = new pg.Client({ connectionString: `${adminUrl}/postgres` });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
