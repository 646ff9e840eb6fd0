// Starts the real service stack for a test file: a fresh database cloned from the template, a SoftHSM
// token in a temporary folder, the local anvil chain on a free port, and the fastify app.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createContext, type Context } from "../../src/context.js";
import pino from "pino";
import { createLogger } from "../../src/log.js";
import type { App } from "../../src/http/types.js";
import { createTestDatabase } from "./db.js";

export interface TestService {
  ctx: Context;
  app: App;
  dataDir: string;
  databaseUrl: string;
  close(): Promise<void>;
}

export async function startTestService(
  env: Record<string, string> = {},
  opts: { databaseUrl?: string; dataDir?: string; logFile?: string } = {},
): Promise<TestService> {
  const db = opts.databaseUrl ? undefined : await createTestDatabase();
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "intents-test-"));
  const config = loadConfig({
    DATA_DIR: dataDir,
    DATABASE_URL: opts.databaseUrl ?? db!.url,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    PKCS11_TOKEN_LABEL: "intents-test",
    ...env,
  });
  const log = createLogger(config.logLevel, opts.logFile ? pino.destination({ dest: opts.logFile, sync: true }) : undefined);
  const ctx = await createContext(config, log);
  const app = await buildApp(ctx);
  return {
    ctx,
    app,
    dataDir,
    databaseUrl: config.databaseUrl!,
    close: async () => {
      await app.close();
      await ctx.close();
      await db?.drop().catch(() => {});
      if (!opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
