// The authentication hook and the token routes. Every route is authenticated unless it declares
// `config: { public: true }`; the hook runs before the body is parsed or validated, so an
// unauthenticated caller learns nothing about the body's shape (401 comes before 400).
import { z } from "zod";
import { appendAudit } from "../audit.js";
import type { AuthService } from "../auth/service.js";
import type { AuthFailureLimiter } from "../auth/failures.js";
import { ServiceError } from "../errors.js";
import { requireOperator, requirePrincipal } from "../auth/principal.js";
import type { Pool } from "../db/pool.js";
import type { App } from "./types.js";

declare module "fastify" {
  interface FastifyContextConfig {
    public?: boolean;
    /** Operator-only: agents get 403 before their body is even validated. */
    operatorOnly?: boolean;
  }
}

export function registerAuthHook(app: App, auth: AuthService, failures: AuthFailureLimiter): void {
  app.addHook("onRequest", async (req) => {
    if (req.routeOptions.config?.public) return;
    if (!req.routeOptions.url) return; // unknown route: let the 404 handler answer
    if (req.routeOptions.url.startsWith("/docs")) return; // the OpenAPI description and its UI are public
    const wait = failures.blockedFor(req.ip);
    if (wait > 0) {
      throw new ServiceError("too_many_failed_authentications", 429, "Too many failed authentications from this address; retry later.", { retryAfterSeconds: wait });
    }
    try {
      req.principal = await auth.authenticate(req.headers.authorization);
    } catch (err) {
      if (err instanceof ServiceError && err.status === 401) failures.recordFailure(req.ip);
      throw err;
    }
  });
  app.addHook("preValidation", async (req) => {
    if (req.routeOptions.config?.operatorOnly) requireOperator(req);
  });
}

const AgentTokenRequest = z.strictObject({
  api_key: z.string().min(1).max(200),
  agent_id: z.uuid().optional(),
});

const TokenResponse = z.object({
  access_token: z.string(),
  token_type: z.literal("Bearer"),
  expires_in: z.number().int(),
  agent_id: z.uuid(),
});

export async function authRoutes(app: App, deps: { auth: AuthService; pool: Pool }): Promise<void> {
  app.post(
    "/v1/auth/agent-token",
    {
      config: { public: true, rateLimit: { max: 30, timeWindow: "1 minute" } },
      schema: { tags: ["Auth"], summary: "Exchange an agent API key for a JWT", body: AgentTokenRequest, response: { 200: TokenResponse } },
    },
    async (req) => {
      const out = await deps.auth.issueAgentToken(req.body.api_key, req.body.agent_id);
      await appendAudit(deps.pool, {
        action: "agent.token_issued",
        actor: { type: "agent", id: out.agent_id } as never,
        resourceType: "agent",
        resourceId: out.agent_id,
        details: { expires_in: out.expires_in },
        requestId: req.id,
        ip: req.ip,
      });
      return out;
    },
  );

  app.delete(
    "/v1/auth/token",
    { schema: { tags: ["Auth"], summary: "Revoke the presented access token" } },
    async (req, reply) => {
      const p = requirePrincipal(req);
      await deps.auth.revoke(p);
      await appendAudit(deps.pool, { action: "agent.token_revoked", actor: p, resourceType: "agent", resourceId: p.id, requestId: req.id, ip: req.ip });
      return reply.code(204).send();
    },
  );
}
