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
import { authorizeMetrics, authRoutes, registerAuthHook } from "./http/auth.js";
import { AuthFailureLimiter } from "./auth/failures.js";
import { RequestBudget } from "./quotas.js";
import { agentRoutes } from "./http/agents.js";
import { transactionRoutes } from "./http/transactions.js";
import { operatorKeyRoutes } from "./http/operator-keys.js";
import { chainRoutes } from "./http/chains.js";
import { signingKeyRoutes } from "./http/signing-keys.js";
import { auditRoutes } from "./http/audit.js";
import { webhookRoutes } from "./http/webhooks.js";
import { historyRoutes } from "./http/history.js";
import { operatorTransactionRoutes } from "./http/operator-transactions.js";
import { signatureRoutes } from "./http/signatures.js";
import { approvalRoutes } from "./http/approvals.js";
import { consoleRoutes } from "./http/console.js";
import { chainHealthRoutes } from "./http/chain-health.js";
import { mcpRoutes } from "./mcp/http.js";
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
  // An empty body with a JSON content type is no body (the 1Claw SDKs send the header on every request,
  // DELETEs and body-less POSTs included). Routes that need a body still answer 400: their schema
  // refuses a missing one. Anything else goes to fastify's own parser (prototype-poisoning checks kept).
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    if (body === "") return done(null, undefined);
    return parseJson(req, body as string, done);
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // The OpenAPI description is generated from the routes' zod schemas; registered before any route.
  await app.register(swagger, {
    openapi: {
      info: {
        title: "Intents signer",
        description: "EVM transaction intents: guardrails, HSM signing, broadcast and tracking.",
        version: VERSION,
      },
      components: {
        securitySchemes: {
          BearerAuth: {
            type: "http",
            scheme: "bearer",
            description:
              "Agent or operator JWT, agent key (ocv_…) or operator key (1ck_…); a DPoP-bound JWT (cnf.jkt) also needs a DPoP proof header (RFC 9449), with the Bearer or DPoP scheme",
          },
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
  const failures = new AuthFailureLimiter(ctx.config.authFailuresPerMinute, ctx.config.authFailuresPerCredential);
  app.get("/metrics", { config: { public: true }, schema: { hide: true } }, async (req, reply) => {
    await authorizeMetrics(ctx.auth, failures, ctx.config, req);
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
  // Request budgets: counted here, shared with the other replicas through PostgreSQL every second.
  const budget = new RequestBudget({ defaultPerMinute: ctx.config.agentRequestsPerMinute, pool: ctx.pool });
  const stopBudget = budget.start(1000, (err) => ctx.log.warn({ err }, "request budget sync failed; will retry"));
  app.addHook("onClose", stopBudget);
  app.decorate("requestBudget", budget);
  // MCP at /mcp: its hook, which gives in-process tool calls their principal, runs before the auth hook.
  await mcpRoutes(app);
  registerAuthHook(app, ctx.auth, failures, budget);
  await healthRoutes(app, ctx);
  await authRoutes(app, { auth: ctx.auth, pool: ctx.pool, failures });
  await agentRoutes(app, { pool: ctx.pool });
  await transactionRoutes(app, ctx);
  await chainRoutes(app, ctx);
  await signingKeyRoutes(app, ctx);
  await auditRoutes(app, ctx);
  await webhookRoutes(app, ctx);
  await historyRoutes(app, ctx);
  await operatorTransactionRoutes(app, ctx);
  await signatureRoutes(app, ctx);
  await operatorKeyRoutes(app, ctx);
  await approvalRoutes(app, ctx);
  await chainHealthRoutes(app, ctx);
  await consoleRoutes(app);
  await app.ready();
  return app;
}
