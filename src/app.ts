// buildApp(ctx): the fastify instance with its plugins, routes and error handler. It never listens;
// src/server.ts does, and tests use app.inject or listen on port 0.
import Fastify, { type FastifyBaseLogger, type FastifyReply } from "fastify";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { VERSION } from "./version.js";
import type { Context } from "./context.js";
import { registerErrorHandling, toProblem } from "./http/errors.js";
import { healthRoutes } from "./http/health.js";
import { authRoutes, registerAuthHook } from "./http/auth.js";
import { AuthFailureLimiter } from "./auth/failures.js";
import { agentRoutes } from "./http/agents.js";
import { transactionRoutes } from "./http/transactions.js";
import { operatorKeyRoutes } from "./http/operator-keys.js";
import { chainRoutes } from "./http/chains.js";
import { signingKeyRoutes } from "./http/signing-keys.js";
import { auditRoutes } from "./http/audit.js";
import { webhookRoutes } from "./http/webhooks.js";
import { historyRoutes } from "./http/history.js";
import { operatorTransactionRoutes } from "./http/operator-transactions.js";
import type { App } from "./http/types.js";

export const BODY_LIMIT_BYTES = 5 * 1024 * 1024;

export async function buildApp(ctx: Context): Promise<App> {
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    requestIdHeader: "x-request-id",
    genReqId: () => crypto.randomUUID(),
    // Behind a reverse proxy the client address (rate limits, failed-authentication limits, audit
    // `ip_address`) comes from X-Forwarded-For, but only when the operator says the proxy is trusted.
    trustProxy: ctx.config.trustProxy,
    // Errors fastify raises before routing (bad percent-encoding, an over-long path parameter) get
    // the same RFC 7807 body as every other error, without echoing the path.
    frameworkErrors: (err, _req, reply) => {
      const { status, body, headers } = toProblem(err);
      void (reply as FastifyReply).code(status).headers(headers).type("application/problem+json").send(body);
    },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // The OpenAPI description is generated from the routes' zod schemas; registered before any route.
  await app.register(swagger, {
    openapi: {
      info: { title: "Intents signer", description: "EVM transaction intents: guardrails, HSM signing, broadcast and tracking.", version: VERSION },
      components: {
        securitySchemes: {
          BearerAuth: { type: "http", scheme: "bearer", description: "Agent JWT, agent key (ocv_…) or operator key (1ck_…)" },
        },
      },
      security: [{ BearerAuth: [] }],
    },
    // Public routes (health, chain list, the credential exchange) need no bearer: `security: []`.
    transform: (input) => {
      const out = jsonSchemaTransform(input);
      const isPublic = (input.route as { config?: { public?: boolean } } | undefined)?.config?.public === true;
      return isPublic ? { ...out, schema: { ...out.schema, security: [] } } : out;
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  // Only routes that declare `config.rateLimit` are limited (the credential exchanges).
  await app.register(rateLimit, { global: false });
  registerErrorHandling(app);
  app.addHook("onSend", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });

  app.addHook("onResponse", async (req, reply) => {
    ctx.metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? "unmatched", status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  app.get("/metrics", { config: { public: true }, schema: { hide: true } }, async (_req, reply) => {
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
  registerAuthHook(app, ctx.auth, new AuthFailureLimiter(ctx.config.authFailuresPerMinute));
  await healthRoutes(app, ctx);
  await authRoutes(app, { auth: ctx.auth, pool: ctx.pool });
  await agentRoutes(app, { pool: ctx.pool });
  await transactionRoutes(app, ctx);
  await chainRoutes(app, ctx);
  await signingKeyRoutes(app, ctx);
  await auditRoutes(app, ctx);
  await webhookRoutes(app, ctx);
  await historyRoutes(app, ctx);
  await operatorTransactionRoutes(app, ctx);
  await operatorKeyRoutes(app, ctx);
  await app.ready();
  return app;
}
