// DPoP (RFC 9449): proof-of-possession for access tokens. A token requested with a DPoP proof is
// bound to the proof's public key (`cnf.jkt`, its RFC 7638 SHA-256 thumbprint); every later request
// with that token must carry a fresh proof signed by the same key, for that method and URL.
//
// Takes the compact proof from the `DPoP` header, the request's method and external URL; returns the
// key's thumbprint; throws DpopError (401 with `WWW-Authenticate: DPoP`, or 400 at the token
// endpoints). Writes one row per accepted proof to `dpop_proofs` (jkt, jti) so that a proof is
// accepted once across every replica sharing the database; rows expire with the proof's window.
//
// Checks, in order: size; a JWS with `typ: dpop+jwt`, an allowed `alg` and a public `jwk` in its
// header whose signature verifies; `htm` and `htu` (scheme, host, port and path; query and fragment
// ignored, RFC 9449 §4.3); `iat` within DPOP_WINDOW_SECONDS of now, either side; `ath` when present
// (the SDK sends none: it is optional here) equal to base64url(SHA-256(access token)); the key's
// thumbprint equal to the token's `cnf.jkt`; then the (jkt, jti) pair not seen before.
import { createHash } from "node:crypto";
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK } from "jose";
import { ServiceError } from "../errors.js";
import type { Queryable } from "../db/pool.js";

/** Signature algorithms accepted in proofs: the SDK's ES256 and the other asymmetric ones RFC 9449 clients use. */
export const DPOP_ALGS = ["ES256", "ES384", "EdDSA", "PS256", "RS256"] as const;
/** How far a proof's `iat` may be from the server's clock, either side (seconds). */
export const DPOP_WINDOW_SECONDS = 60;
/** A proof is a small JWS (a P-256 proof is ~500 bytes); anything this large is refused unparsed. */
const MAX_PROOF_BYTES = 8192;
const MAX_JTI_CHARS = 256;
/** Expired replay rows are deleted by whichever request comes first after this long. */
const SWEEP_EVERY_MS = 60_000;

const WWW_ALGS = `algs="${DPOP_ALGS.join(" ")}"`;

/** A DPoP failure: 401 with a `WWW-Authenticate: DPoP` challenge on resource requests. */
export function dpopError(
  detail: string,
  error: "invalid_dpop_proof" | "invalid_token" = "invalid_dpop_proof",
  status = 401,
): ServiceError {
  return new ServiceError(error, status, detail, {
    headers:
      status === 401
        ? { "www-authenticate": `DPoP error="${error}", error_description="${detail.replace(/"/g, "'")}", ${WWW_ALGS}` }
        : undefined,
  });
}

/** The RFC 7638 thumbprint of a public JWK, or undefined when it is not a usable public key. */
export async function jwkThumbprint(jwk: JWK): Promise<string | undefined> {
  if ("d" in jwk || "p" in jwk || "k" in jwk) return undefined; // private or symmetric material: never a DPoP key
  try {
    return await calculateJwkThumbprint(jwk, "sha256");
  } catch {
    return undefined;
  }
}

/** RFC 9449 §4.3: compare URIs without query and fragment, after normalising scheme, host and default port. */
export function normalizeHtu(url: string): string | undefined {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return undefined;
  }
}

export interface ProofCheck {
  proof: string | string[] | undefined;
  method: string;
  /** The request's external URL (scheme://host[:port]/path), as the client addressed it. */
  url: string;
  /** The token's `cnf.jkt`; omitted at a token endpoint, where the proof's key becomes the binding. */
  jkt?: string;
  /** The access token the proof accompanies; its hash is checked against `ath` when the proof has one. */
  accessToken?: string;
  /** 401 (resource requests) or 400 (token endpoints, RFC 9449 §5). */
  status?: 400 | 401;
}

export class DpopVerifier {
  private lastSweep = 0;

  constructor(
    private readonly db: Queryable,
    private readonly now: () => number = Date.now,
  ) {}

  /** Verifies one proof and records its jti; returns the proof key's thumbprint. */
  async verify(c: ProofCheck): Promise<string> {
    const status = c.status ?? 401;
    const fail = (detail: string) => dpopError(detail, "invalid_dpop_proof", status);
    if (c.proof === undefined || c.proof === "") throw dpopError("A DPoP proof is required with this token.", "invalid_token", status);
    if (typeof c.proof !== "string" || c.proof.includes(",")) throw fail("Exactly one DPoP header is allowed.");
    if (c.proof.length > MAX_PROOF_BYTES) throw fail("The DPoP proof is too large.");

    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(c.proof);
    } catch {
      throw fail("The DPoP proof is not a JWS.");
    }
    if (header.typ !== "dpop+jwt") throw fail('The DPoP proof\'s typ must be "dpop+jwt".');
    if (!DPOP_ALGS.includes(header.alg as (typeof DPOP_ALGS)[number]))
      throw fail(`The DPoP proof's alg must be one of ${DPOP_ALGS.join(", ")}.`);
    if (!header.jwk || typeof header.jwk !== "object") throw fail("The DPoP proof carries no public jwk.");
    const jkt = await jwkThumbprint(header.jwk);
    if (!jkt) throw fail("The DPoP proof's jwk is not a public key.");

    let payload: Record<string, unknown>;
    try {
      // EmbeddedJWK verifies with the header's own jwk (and refuses a private one); algorithms and typ
      // are checked again here so a proof cannot pick its own rules.
      ({ payload } = await jwtVerify(c.proof, EmbeddedJWK, { typ: "dpop+jwt", algorithms: [...DPOP_ALGS] }));
    } catch {
      throw fail("The DPoP proof's signature does not verify.");
    }

    if (payload.htm !== c.method.toUpperCase()) throw fail("The DPoP proof is for another HTTP method.");
    const htu = typeof payload.htu === "string" ? normalizeHtu(payload.htu) : undefined;
    if (!htu || htu !== normalizeHtu(c.url)) throw fail("The DPoP proof is for another URL.");
    const nowS = Math.floor(this.now() / 1000);
    if (typeof payload.iat !== "number" || !Number.isFinite(payload.iat)) throw fail("The DPoP proof has no iat.");
    if (Math.abs(payload.iat - nowS) > DPOP_WINDOW_SECONDS) throw fail("The DPoP proof is too old or from the future.");
    if (typeof payload.jti !== "string" || payload.jti.length === 0 || payload.jti.length > MAX_JTI_CHARS)
      throw fail("The DPoP proof needs a jti of 1 to 256 characters.");
    if (payload.ath !== undefined) {
      const expected = c.accessToken !== undefined ? createHash("sha256").update(c.accessToken, "ascii").digest("base64url") : undefined;
      if (payload.ath !== expected) throw fail("The DPoP proof's ath does not match the access token.");
    }
    if (c.jkt !== undefined && c.jkt !== jkt) throw fail("The DPoP proof is signed by another key than the token is bound to.");

    await this.sweep();
    // The primary key (jkt, jti) makes the second use of a proof fail on any replica: whichever
    // INSERT commits first wins, the other inserts nothing. Kept until the proof is out of its window.
    const r = await this.db.query(
      `INSERT INTO dpop_proofs (jkt, jti, expires_at) VALUES ($1, $2, to_timestamp($3))
       ON CONFLICT (jkt, jti) DO NOTHING`,
      [jkt, payload.jti, payload.iat + DPOP_WINDOW_SECONDS + 1],
    );
    if (r.rowCount === 0) throw fail("The DPoP proof has been used before.");
    return jkt;
  }

  /** Deletes expired replay rows at most once a minute per process; a failure is retried next time. */
  private async sweep(): Promise<void> {
    const t = this.now();
    if (t - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = t;
    await this.db.query("DELETE FROM dpop_proofs WHERE expires_at < now()").catch(() => {
      this.lastSweep = 0;
    });
  }
}
