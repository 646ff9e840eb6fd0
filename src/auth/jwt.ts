// Agent access tokens: EdDSA (Ed25519) JWTs signed with jose. The key pair lives in the database so
// every replica issues and accepts the same tokens; it is created once, by whichever replica is first.
import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK } from "jose";
import type { Queryable } from "../db/pool.js";

const ISSUER = "intents-signer";
const AUDIENCE = "intents-api";

export interface AgentTokenClaims {
  /** The agent id, or for an operator token the operator key's id. */
  agentId: string;
  /** Who the token is for: an agent, or an operator (exchanged from a `1ck_` key). */
  role: "agent" | "operator";
  jti: string;
  /** RFC 9449 `cnf.jkt`: the SHA-256 thumbprint of the DPoP key the token is bound to. */
  jkt?: string;
  /** Issue time in milliseconds: finer than `iat`, so a rotation in the same second is exact. */
  issuedAtMs: number;
  exp: number;
}

/** Verified tokens remembered, so a client's next request with the same token skips the signature check. */
const VERIFIED_CACHE_MAX = 10_000;

export class JwtService {
  /**
   * Token string → its claims, for tokens whose signature already verified. Keyed by the exact
   * string (signature included), so a hit is the same bytes verified with the same key; expiry is
   * checked on every hit, and revocation is not cached (the caller checks it in the database).
   */
  private readonly verified = new Map<string, AgentTokenClaims>();

  private constructor(
    private readonly kid: string,
    private readonly privateKey: CryptoKey,
    private readonly publicKey: CryptoKey,
  ) {}

  static async load(db: Queryable): Promise<JwtService> {
    let row = (
      await db.query<{ kid: string; private_jwk: JWK; public_jwk: JWK }>("SELECT * FROM jwt_keys ORDER BY created_at, kid LIMIT 1")
    ).rows[0];
    if (!row) {
      const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
      const kid = randomUUID();
      // Two replicas starting together: both insert, the conflict keeps the first, both re-read it.
      await db.query(
        `INSERT INTO jwt_keys (kid, private_jwk, public_jwk)
         SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM jwt_keys)`,
        [kid, await exportJWK(privateKey), await exportJWK(publicKey)],
      );
      row = (await db.query<{ kid: string; private_jwk: JWK; public_jwk: JWK }>("SELECT * FROM jwt_keys ORDER BY created_at, kid LIMIT 1"))
        .rows[0];
    }
    const priv = (await importJWK(row.private_jwk, "EdDSA")) as CryptoKey;
    const pub = (await importJWK(row.public_jwk, "EdDSA")) as CryptoKey;
    return new JwtService(row.kid, priv, pub);
  }

  async issue(
    agentId: string,
    ttlSeconds: number,
    opts: { role?: "agent" | "operator"; jkt?: string } = {},
  ): Promise<{ token: string; claims: AgentTokenClaims }> {
    const now = Date.now();
    const jti = randomUUID();
    const exp = Math.floor(now / 1000) + ttlSeconds;
    const role = opts.role ?? "agent";
    const token = await new SignJWT({ iat_ms: now, ...(opts.jkt ? { cnf: { jkt: opts.jkt } } : {}) })
      .setProtectedHeader({ alg: "EdDSA", kid: this.kid, typ: "JWT" })
      .setSubject(`${role}:${agentId}`)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(this.privateKey);
    return { token, claims: { agentId, role, jti, issuedAtMs: now, exp, ...(opts.jkt ? { jkt: opts.jkt } : {}) } };
  }

  /** Verifies signature, issuer, audience and expiry; returns undefined for anything invalid. */
  async verify(token: string): Promise<AgentTokenClaims | undefined> {
    const hit = this.verified.get(token);
    if (hit) {
      if (hit.exp * 1000 > Date.now()) return hit;
      this.verified.delete(token);
      return undefined;
    }
    const claims = await this.verifySignature(token);
    if (claims) {
      if (this.verified.size >= VERIFIED_CACHE_MAX) this.verified.delete(this.verified.keys().next().value as string);
      this.verified.set(token, claims);
    }
    return claims;
  }

  private async verifySignature(token: string): Promise<AgentTokenClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.publicKey, { issuer: ISSUER, audience: AUDIENCE, algorithms: ["EdDSA"] });
      const m = /^(agent|operator):([0-9a-f-]{36})$/.exec(payload.sub ?? "");
      if (!m || typeof payload.jti !== "string" || typeof payload.exp !== "number") return undefined;
      const issuedAtMs = typeof payload.iat_ms === "number" ? payload.iat_ms : (payload.iat ?? 0) * 1000;
      const cnf = payload.cnf as { jkt?: unknown } | undefined;
      if (cnf !== undefined && typeof cnf?.jkt !== "string") return undefined;
      const claims: AgentTokenClaims = {
        agentId: m[2],
        role: m[1] as "agent" | "operator",
        jti: payload.jti,
        issuedAtMs,
        exp: payload.exp,
      };
      if (cnf) claims.jkt = cnf.jkt as string;
      return claims;
    } catch {
      return undefined;
    }
  }
}
