// Authentication: turns an Authorization header into a Principal, issues and revokes agent tokens,
// and makes sure an operator key exists. Keys are looked up by their SHA-256 only.
import { randomUUID } from "node:crypto";
import { withTransaction, type Pool } from "../db/pool.js";
import { getAgentByKeyHash, getAgentForToken, type AgentRow } from "../db/agents.js";
import { badRequest, unauthorized } from "../errors.js";
import { JwtService, type AgentTokenClaims } from "./jwt.js";
import { dpopError, DpopVerifier } from "./dpop.js";
import { AGENT_KEY_PREFIX, generateApiKey, hashApiKey, keyPrefix, OPERATOR_KEY_PREFIX, sameHash } from "./keys.js";
import type { Principal } from "./principal.js";

/** Lifetime of an operator access token from POST /v1/auth/api-key-token: short, the key stays the credential. */
export const OPERATOR_TOKEN_TTL_SECONDS = 900;

/** What a DPoP proof is checked against: the request as the client addressed it. */
export interface RequestBinding {
  method: string;
  /** External URL: scheme://host[:port]/path (the query is ignored). */
  url: string;
  /** The `DPoP` header(s), as received. */
  proof: string | string[] | undefined;
}

export class AuthService {
  readonly dpop: DpopVerifier;

  constructor(
    private readonly pool: Pool,
    readonly jwt: JwtService,
    private readonly defaultTtlSeconds: number,
  ) {
    this.dpop = new DpopVerifier(pool);
  }

  static async create(pool: Pool, defaultTtlSeconds: number): Promise<AuthService> {
    return new AuthService(pool, await JwtService.load(pool), defaultTtlSeconds);
  }

  /**
   * Makes sure an operator can log in. ADMIN_API_KEY is registered (idempotently); with none given and
   * no operator key stored yet, one is generated and returned so the caller can print it once.
   */
  async bootstrapOperator(adminApiKey?: string): Promise<{ generated?: string }> {
    if (adminApiKey) {
      await this.pool.query(
        `INSERT INTO operator_keys (id, name, key_hash, key_prefix) VALUES ($1, 'ADMIN_API_KEY', $2, $3)
         ON CONFLICT (key_hash) DO NOTHING`,
        [randomUUID(), hashApiKey(adminApiKey), keyPrefix(adminApiKey)],
      );
      return {};
    }
    const key = generateApiKey(OPERATOR_KEY_PREFIX);
    // Only when no operator key exists at all. The advisory lock is taken before the INSERT's snapshot,
    // so two replicas starting together cannot both generate one.
    const rowCount = await withTransaction(this.pool, async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock(7369)");
      const r = await tx.query(
        `INSERT INTO operator_keys (id, name, key_hash, key_prefix)
         SELECT $1, 'generated at first start', $2, $3
          WHERE NOT EXISTS (SELECT 1 FROM operator_keys WHERE revoked_at IS NULL)`,
        [randomUUID(), hashApiKey(key), keyPrefix(key)],
      );
      return r.rowCount;
    });
    return rowCount ? { generated: key } : {};
  }

  async createOperatorKey(name: string): Promise<string> {
    const key = generateApiKey(OPERATOR_KEY_PREFIX);
    await this.pool.query("INSERT INTO operator_keys (id, name, key_hash, key_prefix) VALUES ($1, $2, $3, $4)", [
      randomUUID(),
      name,
      hashApiKey(key),
      keyPrefix(key),
    ]);
    return key;
  }

  /**
   * Bearer or DPoP credentials → Principal; throws 401 for anything missing, malformed, expired or
   * revoked. A token bound to a DPoP key (`cnf.jkt`) needs a valid proof from that key with every
   * request, whichever scheme names it: `DPoP <token>` (RFC 9449) or `Bearer <token>` plus a `DPoP`
   * header, which is what the official 1Claw SDK sends. Without a proof a bound token is refused.
   * API keys and unbound tokens ignore a DPoP header (RFC 9449 §7.2), but not the DPoP scheme.
   */
  async authenticate(authorization: string | undefined, request?: RequestBinding): Promise<Principal> {
    const m = /^(Bearer|DPoP)\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (!m) throw unauthorized("Missing bearer credentials.");
    const dpopScheme = m[1].toLowerCase() === "dpop";
    const credential = m[2];
    if (dpopScheme && (credential.startsWith(OPERATOR_KEY_PREFIX) || credential.startsWith(AGENT_KEY_PREFIX))) {
      throw dpopError("The DPoP scheme needs a DPoP-bound access token, not an API key.", "invalid_token");
    }
    if (credential.startsWith(OPERATOR_KEY_PREFIX)) return this.operatorFromKey(credential);
    if (credential.startsWith(AGENT_KEY_PREFIX)) return this.agentFromKey(credential);
    const claims = await this.jwt.verify(credential);
    if (!claims) throw unauthorized("Invalid or expired token.");
    if (claims.jkt !== undefined) {
      if (!request) throw dpopError("A DPoP proof is required with this token.", "invalid_token");
      await this.dpop.verify({ proof: request.proof, method: request.method, url: request.url, jkt: claims.jkt, accessToken: credential });
    } else if (dpopScheme) {
      throw dpopError("The DPoP scheme needs a DPoP-bound access token.", "invalid_token");
    }
    return claims.role === "operator" ? this.operatorFromJwt(claims) : this.agentFromJwt(claims);
  }

  /** An operator token is valid while its operator key is not revoked and the token itself was not revoked. */
  private async operatorFromJwt(claims: AgentTokenClaims): Promise<Principal> {
    const { rows } = await this.pool.query<{ live: boolean; revoked: boolean }>(
      `SELECT k.revoked_at IS NULL AS live, EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = $2) AS revoked
         FROM operator_keys k WHERE k.id = $1`,
      [claims.agentId, claims.jti],
    );
    if (!rows[0]?.live || rows[0].revoked) throw unauthorized("The token has been revoked.");
    return { type: "operator", id: claims.agentId, via: "jwt", jti: claims.jti, exp: claims.exp };
  }

  private async operatorFromKey(key: string): Promise<Principal> {
    const hash = hashApiKey(key);
    // Read on every request, never cached, so a revocation holds at once on every replica. last_used_at
    // is written at most once a minute per key (a listing shows it to the minute), not on every request.
    const { rows } = await this.pool.query<{ id: string; key_hash: Buffer }>(
      `WITH k AS (
         SELECT id, key_hash, last_used_at FROM operator_keys
          WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
       ), touched AS (
         UPDATE operator_keys o SET last_used_at = now() FROM k
          WHERE o.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
       )
       SELECT id, key_hash FROM k`,
      [hash],
    );
    if (!rows[0] || !sameHash(rows[0].key_hash, hash)) throw unauthorized("Invalid API key.");
    return { type: "operator", id: rows[0].id, via: "api_key" };
  }

  private async agentFromKey(key: string): Promise<Principal> {
    const agent = await this.agentForKey(key);
    return { type: "agent", id: agent.id, agent, via: "api_key" };
  }

  /** The live agent owning an `ocv_` key, or 401. */
  async agentForKey(key: string, expectedAgentId?: string): Promise<AgentRow> {
    const hash = hashApiKey(key);
    const agent = await getAgentByKeyHash(this.pool, hash);
    if (!agent || !sameHash(agent.api_key_hash, hash)) throw unauthorized("Invalid API key.");
    if (expectedAgentId && expectedAgentId !== agent.id) throw unauthorized("Invalid API key.");
    this.assertUsable(agent);
    if (agent.api_key_expires_at && agent.api_key_expires_at.getTime() <= Date.now()) throw unauthorized("The API key has expired.");
    return agent;
  }

  private async agentFromJwt(claims: AgentTokenClaims): Promise<Principal> {
    const { agent, revoked } = await getAgentForToken(this.pool, claims.agentId, claims.jti);
    if (!agent || revoked) throw unauthorized("The token has been revoked.");
    if (claims.issuedAtMs < agent.tokens_valid_after.getTime()) throw unauthorized("The token has been revoked.");
    this.assertUsable(agent);
    return { type: "agent", id: agent.id, agent, via: "jwt", jti: claims.jti, exp: claims.exp };
  }

  private assertUsable(agent: AgentRow): void {
    if (!agent.is_active) throw unauthorized("The agent is deactivated.");
    if (agent.expires_at && agent.expires_at.getTime() <= Date.now()) throw unauthorized("The agent has expired.");
  }

  /** POST /v1/auth/agent-token. With `jkt` (a verified DPoP proof's key) the token is bound to that key. */
  async issueAgentToken(
    apiKey: string,
    agentId?: string,
    jkt?: string,
  ): Promise<{ access_token: string; token_type: "Bearer" | "DPoP"; expires_in: number; agent_id: string }> {
    if (!apiKey.startsWith(AGENT_KEY_PREFIX)) throw unauthorized("Invalid API key.");
    const agent = await this.agentForKey(apiKey, agentId);
    const ttl = agent.token_ttl_seconds ?? this.defaultTtlSeconds;
    const { token } = await this.jwt.issue(agent.id, ttl, { jkt });
    await this.pool.query("UPDATE agents SET last_active_at = now() WHERE id = $1", [agent.id]);
    return { access_token: token, token_type: jkt ? "DPoP" : "Bearer", expires_in: ttl, agent_id: agent.id };
  }

  /**
   * POST /v1/auth/api-key-token: an operator `1ck_` key → a short-lived operator JWT carrying the key's
   * id. Every use checks the key again, so revoking the key ends its tokens at once.
   */
  async issueOperatorToken(
    apiKey: string,
    jkt?: string,
  ): Promise<{ access_token: string; token_type: "Bearer" | "DPoP"; expires_in: number; operator_key_id: string }> {
    if (!apiKey.startsWith(OPERATOR_KEY_PREFIX)) throw unauthorized("Invalid API key.");
    const op = await this.operatorFromKey(apiKey);
    const ttl = Math.min(OPERATOR_TOKEN_TTL_SECONDS, this.defaultTtlSeconds);
    const { token } = await this.jwt.issue(op.id, ttl, { role: "operator", jkt });
    return { access_token: token, token_type: jkt ? "DPoP" : "Bearer", expires_in: ttl, operator_key_id: op.id };
  }

  /** DELETE /v1/auth/token: revokes the presented JWT until it would have expired anyway. */
  async revoke(principal: Principal): Promise<void> {
    if (principal.via !== "jwt" || !principal.jti || !principal.exp) {
      throw badRequest("Only an access token (JWT) can be revoked; rotate an API key instead.");
    }
    await this.pool.query(
      "INSERT INTO revoked_tokens (jti, agent_id, expires_at) VALUES ($1, $2, to_timestamp($3)) ON CONFLICT DO NOTHING",
      [principal.jti, principal.type === "agent" ? principal.id : null, principal.exp],
    );
  }
}
