// One embedded PostgreSQL for the whole run, with a migrated template database; each test file
// clones it into a fresh database (see helpers/db.ts), so files never see each other's rows.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { createPool } from "../src/db/pool.js";

declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
    templateDb: string;
  }
}

export const TEMPLATE_DB = "intents_template";

export default async function setup(project: TestProject) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "intents-test-pg-"));
  fs.chmodSync(dir, 0o755);
  const db = await startEmbeddedPostgres({ dataDir: dir, database: TEMPLATE_DB });
  const pool = createPool(db.url, { max: 2 });
  await migrate(pool);
  await pool.end();
  // A template must have no connections when cloned; mark it as such.
  const admin = new pg.Client({ connectionString: `${db.adminUrl}/postgres` });
  await admin.connect();
  await admin.query(`ALTER DATABASE ${TEMPLATE_DB} WITH is_template true`);
  await admin.end();

  project.provide("pgAdminUrl", db.adminUrl);
  project.provide("templateDb", TEMPLATE_DB);
  return async () => {
    await db.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
}
