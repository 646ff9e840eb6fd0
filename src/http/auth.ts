// The authentication hook and the token routes. Every route is authenticated unless it declares
// `config: { public: true }`; the hook runs before the body is parsed or validated, so an
// unauthenticated caller learns nothing about the body's shape (401 comes before 400).
import type { FastifyRequest } from "fastify";
import type { JWK } from "jose";
import { appendAudit } from "../db/audit.js";
import type { AuthService, RequestBinding } from "../auth/service.js";
import { dpopError, jwkThumbprint } from "../auth/dpop.js";
import { credentialKey, type AuthFailureLimiter } from "../auth/failures.js";
import type { RequestBudget } from "../quotas.js";
import { forbidden, ServiceError, unauthorized } from "../errors.js";
import { hashApiKey, sameHash } from "../auth/keys.js";
import { requireOperator, requirePrincipal } from "../auth/principal.js";
import type { Pool } from "../db/pool.js";
import type { App } from "./types.js";
import { AgentTokenRequest, ApiKeyTokenRequest, OperatorTokenResponse, TokenResponse } from "./schemas/auth.js";

declare module "fastify" {
  interface FastifyContextConfig {
    public?: boolean;
    /** Operator-only: agents get 403 before their body is even validated. */
    operatorOnly?: boolean;
    /** Any other authorization check that must answer 401/403 before the body is validated. */
    guard?: (req: FastifyRequest) => void;
  }
}

export function registerAuthHook(app: App, auth: AuthService, failures: AuthFailureLimiter, budget?: RequestBudget): void {
  app.addHook("onRequest", async (req) => {
    if (req.routeOptions.config?.public) return;
    // Set already by the in-process MCP server (src/mcp/http.ts), which authenticated the /mcp request
    // itself and spent its budget there.
    if (req.principal) return;
    if (!req.routeOptions.url) return; // unknown route: let the 404 handler answer
    if (req.routeOptions.url.startsWith("/docs")) return; // the OpenAPI description and its UI are public
    req.principal = await authenticateLimited(auth, failures, req.headers.authorization, req.ip, requestBinding(req));
    // Every request an agent makes spends its budget, before the body is read: refused ones too.
    if (req.principal.type === "agent") budget?.spend(req.principal.agent);
  });
  app.addHook("preValidation", async (req) => {
    if (req.routeOptions.config?.operatorOnly) requireOperator(req);
    req.routeOptions.config?.guard?.(req);
  });
}

/**
 * The request as the client addressed it, for DPoP's `htm`/`htu`. The scheme and host are the
 * connection's, or X-Forwarded-Proto/-Host when TRUST_PROXY trusts the proxy that set them.
 */
function requestBinding(req: FastifyRequest): RequestBinding {
  return { method: req.method, url: `${req.protocol}://${req.host}${req.url}`, proof: req.headers.dpop };
}

/**
 * auth.authenticate under the failed-authentication limits (src/auth/failures.ts): a credential that
 * keeps failing is refused before it is looked up; past its address's limit a failure answers 429
 * instead of 401; a credential that verifies is served whatever its address did.
 */
export function authenticateLimited(
  auth: AuthService,
  failures: AuthFailureLimiter,
  authorization: string | undefined,
  ip: string,
  binding?: RequestBinding,
) {
  return withFailureLimits(
    failures,
    () => credentialKey(authorization),
    ip,
    () => auth.authenticate(authorization, binding),
  );
}

/**
 * Runs a credential check `fn` under the failed-authentication limits; its 401s are counted. The
 * credential's hash is computed only when some credential failed lately or this one fails: the
 * common case (no failures anywhere) costs nothing.
 */
async function withFailureLimits<T>(
  failures: AuthFailureLimiter,
  credentialOf: () => string | undefined,
  ip: string,
  fn: () => Promise<T>,
): Promise<T> {
  let credential: string | undefined;
  if (failures.anyCredentialFailures) {
    credential = credentialOf();
    const wait = failures.credentialBlockedFor(credential);
    if (wait > 0) throw tooManyFailures("with this credential", wait);
  }
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof ServiceError) || err.status !== 401) throw err;
    credential ??= credentialOf();
    const after = failures.recordFailure(ip, credential);
    if (after > 0)
      throw tooManyFailures(failures.credentialBlockedFor(credential) > 0 ? "with this credential" : "from this address", after);
    throw err;
  }
}

/**
 * Who may read /metrics: a bearer METRICS_TOKEN or an operator key; without either, only a loopback
 * client of a service that listens on loopback, and only while no METRICS_TOKEN is set. Anything
 * exposed beyond this machine (HOST=0.0.0.0, a proxy in TRUST_PROXY) therefore needs a credential.
 */
export async function authorizeMetrics(
  auth: AuthService,
  failures: AuthFailureLimiter,
  opts: { metricsToken?: string; host: string },
  req: { headers: { authorization?: string }; ip: string },
): Promise<void> {
  const presented = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "")?.[1];
  if (presented === undefined) {
    if (!opts.metricsToken && isLoopback(opts.host) && isLoopback(req.ip)) return;
    throw unauthorized("/metrics needs METRICS_TOKEN or an operator key.");
  }
  if (opts.metricsToken && sameHash(hashApiKey(presented), hashApiKey(opts.metricsToken))) return;
  const p = await authenticateLimited(auth, failures, req.headers.authorization, req.ip);
  if (p.type !== "operator") throw forbidden("/metrics is for operators.");
}

function isLoopback(address: string): boolean {
  return (
    address === "localhost" || address === "::1" || address === "[::1]" || address.startsWith("127.") || address.startsWith("::ffff:127.")
  );
}

/** The exchange's rate-limit subject: the presented key's hash (never the key itself). */
const exchangeKey = (body: unknown) =>
  credentialKey(`Bearer ${String((body as { api_key?: unknown } | undefined)?.api_key ?? "")}`) ?? "none";

const tooManyFailures = (what: string, wait: number) =>
  new ServiceError("too_many_failed_authentications", 429, `Too many failed authentications ${what}; retry later.`, {
    retryAfterSeconds: wait,
  });

/**
 * At a token endpoint a DPoP proof, when sent, binds the new token to its key (RFC 9449 §5); a bad
 * proof is 400 `invalid_dpop_proof` there. `dpop_jwk` without a proof is refused: the key holder
 * must show it holds the key.
 */
async function tokenBinding(auth: AuthService, req: FastifyRequest, dpopJwk: JWK | undefined): Promise<string | undefined> {
  const b = requestBinding(req);
  if (b.proof === undefined) {
    if (dpopJwk !== undefined) throw dpopError("dpop_jwk needs a DPoP proof header signed with that key.", "invalid_dpop_proof", 400);
    return undefined;
  }
  const jkt = await auth.dpop.verify({ proof: b.proof, method: b.method, url: b.url, status: 400 });
  if (dpopJwk !== undefined && (await jwkThumbprint(dpopJwk)) !== jkt) {
    throw dpopError("dpop_jwk is not the key that signed the DPoP proof.", "invalid_dpop_proof", 400);
  }
  return jkt;
}

export async function authRoutes(app: App, deps: { auth: AuthService; pool: Pool; failures?: AuthFailureLimiter }): Promise<void> {
  app.post(
    "/v1/auth/agent-token",
    {
      // 30 exchanges a minute per key (after the body is read: the key is the limit's subject), so one
      // busy agent behind a shared address cannot use up the others' exchanges; wrong keys are failed
      // authentications, limited per key and per address like any other.
      config: {
        public: true,
        rateLimit: { max: 30, timeWindow: "1 minute", hook: "preHandler", keyGenerator: (req) => exchangeKey(req.body) },
      },
      schema: { tags: ["Auth"], summary: "Exchange an agent API key for a JWT", body: AgentTokenRequest, response: { 200: TokenResponse } },
    },
    async (req) => {
      const jkt = await tokenBinding(deps.auth, req, req.body.dpop_jwk as JWK | undefined);
      const issue = () => deps.auth.issueAgentToken(req.body.api_key, req.body.agent_id, jkt);
      const out = deps.failures
        ? await withFailureLimits(deps.failures, () => credentialKey(`Bearer ${req.body.api_key}`), req.ip, issue)
        : await issue();
      await appendAudit(deps.pool, {
        action: "agent.token_issued",
        actor: { type: "agent", id: out.agent_id } as never,
        resourceType: "agent",
        resourceId: out.agent_id,
        details: { expires_in: out.expires_in, dpop_bound: jkt !== undefined },
        requestId: req.id,
        ip: req.ip,
      });
      return out;
    },
  );

  app.post(
    "/v1/auth/api-key-token",
    {
      config: {
        public: true,
        rateLimit: { max: 30, timeWindow: "1 minute", hook: "preHandler", keyGenerator: (req) => exchangeKey(req.body) },
      },
      schema: {
        tags: ["Auth"],
        summary: "Exchange an operator API key (1ck_) for a short-lived operator JWT",
        body: ApiKeyTokenRequest,
        response: { 200: OperatorTokenResponse },
      },
    },
    async (req) => {
      const jkt = await tokenBinding(deps.auth, req, undefined);
      const issue = () => deps.auth.issueOperatorToken(req.body.api_key, jkt);
      const out = deps.failures
        ? await withFailureLimits(deps.failures, () => credentialKey(`Bearer ${req.body.api_key}`), req.ip, issue)
        : await issue();
      await appendAudit(deps.pool, {
        action: "operator.token_issued",
        actor: { type: "operator", id: out.operator_key_id },
        resourceType: "operator_key",
        resourceId: out.operator_key_id,
        details: { expires_in: out.expires_in, dpop_bound: jkt !== undefined },
        requestId: req.id,
        ip: req.ip,
      });
      return out;
    },
  );

  app.delete("/v1/auth/token", { schema: { tags: ["Auth"], summary: "Revoke the presented access token" } }, async (req, reply) => {
    const p = requirePrincipal(req);
    await deps.auth.revoke(p);
    const action = p.type === "agent" ? "agent.token_revoked" : "operator.token_revoked";
    await appendAudit(deps.pool, {
      action,
      actor: p,
      resourceType: p.type === "agent" ? "agent" : "operator_key",
      resourceId: p.id,
      requestId: req.id,
      ip: req.ip,
    });
    return reply.code(204).send();
  });
}
