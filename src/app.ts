// buildApp(ctx): the fastify instance with its plugins, routes and error handler. It never listens;
// src/server.ts does, and tests use app.inject or listen on port 0.
import Fastify, { type FastifyBaseLogger } from "fastify";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { Context } from "./context.js";
import { registerErrorHandling } from "./http/errors.js";
import { healthRoutes } from "./http/health.js";
import { authRoutes, registerAuthHook } from "./http/auth.js";
import { agentRoutes } from "./http/agents.js";
import { transactionRoutes } from "./http/transactions.js";
import { chainRoutes } from "./http/chains.js";
import { signingKeyRoutes } from "./http/signing-keys.js";
import { auditRoutes } from "./http/audit.js";
import type { App } from "./http/types.js";

export const BODY_LIMIT_BYTES = 5 * 1024 * 1024;

export async function buildApp(ctx: Context): Promise<App> {
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    requestIdHeader: "x-request-id",
    genReqId: () => crypto.randomUUID(),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  app.addHook("onSend", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });

  registerAuthHook(app, ctx.auth);
  await healthRoutes(app, ctx);
  await authRoutes(app, { auth: ctx.auth, pool: ctx.pool });
  await agentRoutes(app, { pool: ctx.pool });
  await transactionRoutes(app, ctx);
  await chainRoutes(app, ctx);
  await signingKeyRoutes(app, ctx);
  await auditRoutes(app, ctx);
  await app.ready();
  return app;
}
