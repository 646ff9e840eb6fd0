import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, MIGRATIONS_DIR, readMigrations } from "../../src/db/migrate.js";
import { createPool } from "../../src/db/pool.js";
import { createEmptyDatabase } from "../helpers/db.js";

describe("migrations", () => {
  let db: Awaited<ReturnType<typeof createEmptyDatabase>>;
  beforeAll(async () => {
    db = await createEmptyDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it("are numbered files applied in order", () => {
    const ms = readMigrations();
    expect(ms.length).toBeGreaterThan(0);
    expect(ms.map((m) => m.version)).toEqual([...ms.map((m) => m.version)].sort((a, b) => a - b));
    expect(new Set(ms.map((m) => m.version)).size).toBe(ms.length);
    expect(fs.existsSync(MIGRATIONS_DIR)).toBe(true);
  });

  it("two concurrent runs leave one consistent schema, and a later run is a no-op", async () => {
    const a = createPool(db.url, { max: 2 });
    const b = createPool(db.url, { max: 2 });
    try {
      const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
      const all = readMigrations().map((m) => m.name);
      // Exactly one of the two applied everything; the other found nothing to do.
      expect([...ra, ...rb].sort()).toEqual([...all].sort());
      expect(ra.length === 0 || rb.length === 0).toBe(true);

      const recorded = await a.query("SELECT version FROM schema_migrations ORDER BY version");
      expect(recorded.rows.map((r) => r.version)).toEqual(readMigrations().map((m) => m.version));
      const tables = await a.query(
        "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('agents','transactions','nonces','audit_events')",
      );
      expect(tables.rows[0].n).toBe(4);

      const schemaBefore = await a.query(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema='public' ORDER BY 1,2",
      );
      expect(await migrate(a)).toEqual([]);
      const schemaAfter = await a.query(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema='public' ORDER BY 1,2",
      );
      expect(schemaAfter.rows).toEqual(schemaBefore.rows);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("a failing migration rolls back whole and is not recorded", async () => {
    const dir = fs.mkdtempSync("/tmp/migr-");
    for (const m of readMigrations()) fs.writeFileSync(`${dir}/${m.name}.sql`, m.sql);
    fs.writeFileSync(`${dir}/9999_broken.sql`, "CREATE TABLE half_done (x int); SELECT no_such_function();");
    const p = createPool(db.url, { max: 1 });
    try {
      await expect(migrate(p, dir)).rejects.toThrow(/9999_broken/);
      const t = await p.query("SELECT to_regclass('half_done') AS t");
      expect(t.rows[0].t).toBeNull();
      const v = await p.query("SELECT count(*)::int AS n FROM schema_migrations WHERE version = 9999");
      expect(v.rows[0].n).toBe(0);
    } finally {
      await p.end();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
