// The process: config, context, app, listen, and a graceful close on SIGINT/SIGTERM that stops
// everything this process started (embedded PostgreSQL, anvil, HSM sessions).
import { buildApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { createContext } from "./context.js";
import { createLogger } from "./log.js";
import { startBanner } from "./banner.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const ctx = await createContext(config, log);
  const app = await buildApp(ctx);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, "shutting down");
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    await app.close().catch((err) => log.error({ err }, "error closing the HTTP server"));
    await ctx.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));

  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const shownHost = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const baseUrl = `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${port}`;
  log.info({ url: baseUrl }, "intents service listening");
  // Written to stdout directly, never through the logger: the generated key must not become a log line.
  process.stdout.write(startBanner({ baseUrl, generatedOperatorKey: ctx.generatedOperatorKey, localChain: ctx.chains.resolve("local")?.is_enabled === true }));
}

main().catch((err) => {
  process.stderr.write(`Start failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
