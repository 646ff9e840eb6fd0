// DPoP (RFC 9449) with the official SDK's `dpop: true` and against an attacker holding a bound token:
// each forged, replayed or missing proof is 401 with `WWW-Authenticate: DPoP`, and nothing is signed.
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type * as S from "../../../shared/vendor/1claw-sdk/dist/types.js";
import { DPOP_WINDOW_SECONDS, DpopVerifier } from "../../src/auth/dpop.js";
import type { App } from "../../src/http/types.js";
import { startReplica, type Replica } from "../helpers/replica.js";
import { useService } from "../helpers/use-service.js";
import { ok } from "./helpers.js";
import { loadSdk } from "./sdk-types.js";

const sdk = await loadSdk();
const DEAD = "0x000000000000000000000000000000000000dEaD";
const TX = { to: DEAD, value: "0.001", chain: "local" };

interface Holder {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

async function newHolder(alg: "ES256" | "EdDSA" = "ES256"): Promise<Holder> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, "sha256") };
}

/** A proof as RFC 9449 describes it; every field can be overridden to forge a bad one. */
async function proof(
  h: Holder,
  htm: string,
  htu: string,
  o: { iat?: number; jti?: string; typ?: string; alg?: string; ath?: string; jwk?: JWK; omit?: string[] } = {},
): Promise<string> {
  const claims: Record<string, unknown> = { htm, htu, iat: o.iat ?? Math.floor(Date.now() / 1000), jti: o.jti ?? randomUUID() };
  if (o.ath) claims.ath = o.ath;
  for (const k of o.omit ?? []) delete claims[k];
  return new SignJWT(claims)
    .setProtectedHeader({ typ: o.typ ?? "dpop+jwt", alg: o.alg ?? (h.jwk.kty === "OKP" ? "EdDSA" : "ES256"), jwk: o.jwk ?? h.jwk })
    .sign(h.privateKey);
}

describe("DPoP-bound tokens", () => {
  // Failed authentications are this file's subject: the per-address limit would turn them into 429s.
  const svc = useService({ env: { AUTH_FAILURES_PER_MINUTE: "0" }, listen: true });
  let baseUrl: string;
  let agentId: string;
  let agentKey: string;
  const opKey = svc.op;
  const signedCount = async () => Number((await svc.ctx.pool.query("SELECT count(*) FROM transactions")).rows[0].count);

  beforeAll(async () => {
    baseUrl = svc.baseUrl;
    const op = sdk.createClient({ baseUrl, token: opKey });
    const created = ok<S.AgentCreatedResponse>(await op.agents.create({ name: "dpop", intents_api_enabled: true }), "AgentCreatedResponse");
    agentId = created.agent.id;
    agentKey = created.api_key!;
  });

  /** A token bound to `h`, requested the RFC way (and the SDK's: dpop_jwk in the body too). */
  async function boundToken(h: Holder): Promise<string> {
    const url = `${baseUrl}/v1/auth/agent-token`;
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", dpop: await proof(h, "POST", url) },
      body: JSON.stringify({ api_key: agentKey, agent_id: agentId, dpop_jwk: h.jwk }),
    });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { access_token: string; token_type: string };
    expect(body.token_type).toBe("DPoP");
    return body.access_token;
  }

  const txUrl = () => `${baseUrl}/v1/agents/${agentId}/transactions`;
  const submit = (headers: Record<string, string>) =>
    fetch(txUrl(), { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(TX) });

  async function expectDpop401(r: Response, error = /invalid_dpop_proof|invalid_token/): Promise<void> {
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate") ?? "").toMatch(/^DPoP /);
    expect(r.headers.get("www-authenticate") ?? "").toMatch(error);
    const body = (await r.json()) as { status: number };
    expect(body.status).toBe(401);
  }

  it("the SDK with dpop: true signs in, submits and reads back; its token is bound to its key", async () => {
    const client = sdk.createClient({ baseUrl, apiKey: agentKey, agentId, dpop: true });
    const self = ok<S.AgentSelfResponse>(await client.agents.getSelf(), "AgentSelfResponse");
    expect(self.id).toBe(agentId);
    const tx = ok<S.TransactionResponse>(
      await client.agents.submitTransaction(agentId, TX as S.SubmitTransactionRequest),
      "TransactionResponse",
    );
    expect(tx.status).toBe("broadcast");
    const back = ok<S.TransactionResponse>(
      await client.agents.getTransaction(agentId, tx.id, { includeSignedTx: true }),
      "TransactionResponse",
    );
    expect(back.signed_tx).toBe(tx.signed_tx);
    ok<S.TransactionListResponse>(await client.agents.listTransactions(agentId), "TransactionListResponse");
    ok<S.SimulationResponse>(await client.agents.simulateTransaction(agentId, TX as S.SimulateTransactionRequest), "SimulationResponse");

    const token = client.http.getToken()!;
    const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    const manager = (client.http as unknown as { dpopManager: InstanceType<typeof sdk.DPoPManager> }).dpopManager;
    expect(claims.cnf).toEqual({ jkt: manager.getThumbprint() });

    // Stolen: the same token from anyone without the SDK's private key is useless.
    const before = await signedCount();
    await expectDpop401(await submit({ authorization: `Bearer ${token}` }), /invalid_token/);
    await expectDpop401(await submit({ authorization: `DPoP ${token}` }), /invalid_token/);
    const thief = await newHolder();
    await expectDpop401(await submit({ authorization: `Bearer ${token}`, dpop: await proof(thief, "POST", txUrl()) }));
    // A proof the SDK made for one request, captured and replayed on another.
    const captured = await manager.generateProof("GET", `${baseUrl}/v1/agents/me`);
    expect((await fetch(`${baseUrl}/v1/agents/me`, { headers: { authorization: `Bearer ${token}`, dpop: captured } })).status).toBe(200);
    await expectDpop401(await fetch(`${baseUrl}/v1/agents/me`, { headers: { authorization: `Bearer ${token}`, dpop: captured } }));
    await expectDpop401(await submit({ authorization: `Bearer ${token}`, dpop: captured }));
    expect(await signedCount()).toBe(before);

    // Logging out works with DPoP too (the DELETE carries a proof), and ends the token.
    expect((await client.auth.logout()).meta?.status).toBe(204);
    const after = await fetch(`${baseUrl}/v1/agents/me`, {
      headers: { authorization: `Bearer ${token}`, dpop: await manager.generateProof("GET", `${baseUrl}/v1/agents/me`) },
    });
    expect(after.status).toBe(401);
  });

  it("operators' api-key-token with dpop: true gives an operator token bound to the SDK's key", async () => {
    // createClient({ apiKey: "1ck_…" }) runs its exchange in the background (not awaitable in the SDK).
    const client = sdk.createClient({ baseUrl, apiKey: opKey, dpop: true });
    await vi.waitFor(() => expect(client.http.getToken()).toBeTruthy());
    ok<S.AgentListResponse>(await client.agents.list(), "AgentListResponse");
    const token = client.http.getToken()!;
    const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    expect(claims.cnf?.jkt).toBeTypeOf("string");
    expect((await fetch(`${baseUrl}/v1/agents`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    const explicit = sdk.createClient({ baseUrl, dpop: true });
    const tok = ok<S.TokenResponse>(await explicit.auth.apiKeyToken({ api_key: opKey }), "TokenResponse");
    expect(tok.token_type).toBe("DPoP");
    ok<S.AgentListResponse>(await explicit.agents.list(), "AgentListResponse");
    expect((await fetch(`${baseUrl}/v1/agents`, { headers: { authorization: `Bearer ${tok.access_token}` } })).status).toBe(401);
  });

  it("refuses each bad proof with 401 and WWW-Authenticate: DPoP, and signs nothing", async () => {
    const h = await newHolder();
    const token = await boundToken(h);
    const auth = { authorization: `DPoP ${token}` };
    const now = Math.floor(Date.now() / 1000);
    const before = await signedCount();
    const { privateKey: hsKey } = { privateKey: new TextEncoder().encode("0123456789abcdef0123456789abcdef") };
    const hs256 = await new SignJWT({ htm: "POST", htu: txUrl(), iat: now, jti: randomUUID() })
      .setProtectedHeader({ typ: "dpop+jwt", alg: "HS256", jwk: h.jwk })
      .sign(hsKey);
    const cases: Array<[string, string]> = [
      ["another method", await proof(h, "GET", txUrl())],
      ["another URL", await proof(h, "POST", `${baseUrl}/v1/agents/${agentId}/transactions/sign`)],
      ["another host", await proof(h, "POST", txUrl().replace("127.0.0.1", "localhost"))],
      ["another scheme", await proof(h, "POST", txUrl().replace("http:", "https:"))],
      ["typ missing the dpop", await proof(h, "POST", txUrl(), { typ: "JWT" })],
      ["an alg outside the allowlist (HS256)", hs256],
      ["iat too old", await proof(h, "POST", txUrl(), { iat: now - 300 })],
      ["iat in the future", await proof(h, "POST", txUrl(), { iat: now + 300 })],
      ["no jti", await proof(h, "POST", txUrl(), { omit: ["jti"] })],
      ["no iat", await proof(h, "POST", txUrl(), { omit: ["iat"] })],
      ["a wrong ath", await proof(h, "POST", txUrl(), { ath: "A".repeat(43) })],
      ["signed by another key than its jwk", await proof(await newHolder(), "POST", txUrl(), { jwk: h.jwk })],
      ["another key, its own jwk", await proof(await newHolder(), "POST", txUrl())],
      ["not a JWS", "not.a.proof"],
      ["two proofs", `${await proof(h, "POST", txUrl())}, ${await proof(h, "POST", txUrl())}`],
    ];
    for (const [name, p] of cases) {
      const r = await submit({ ...auth, dpop: p });
      expect(r.status, name).toBe(401);
      await expectDpop401(r);
    }
    expect(await signedCount()).toBe(before);

    // The same key's good proof works, with and without ath (RFC 9449 ath = b64url(sha256(token))),
    // and the query string is not part of htu.
    const ath = Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token))).toString("base64url");
    expect((await submit({ ...auth, dpop: await proof(h, "POST", txUrl(), { ath }) })).status).toBe(201);
    expect((await submit({ authorization: `Bearer ${token}`, dpop: await proof(h, "POST", txUrl()) })).status).toBe(201);
    const listUrl = `${baseUrl}/v1/agents/${agentId}/transactions?limit=5`;
    expect(
      (await fetch(listUrl, { headers: { ...auth, dpop: await proof(h, "GET", `${baseUrl}/v1/agents/${agentId}/transactions#x`) } }))
        .status,
    ).toBe(200);
    // EdDSA proofs are allowed as well.
    const ed = await newHolder("EdDSA");
    const edToken = await boundToken(ed);
    expect(
      (
        await fetch(`${baseUrl}/v1/agents/me`, {
          headers: { authorization: `DPoP ${edToken}`, dpop: await proof(ed, "GET", `${baseUrl}/v1/agents/me`) },
        })
      ).status,
    ).toBe(200);
  });

  it("any change to a valid proof makes it invalid (property)", async () => {
    const h = await newHolder();
    const token = await boundToken(h);
    const before = await signedCount();
    let passed = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
        async (pos, ch) => {
          const good = await proof(h, "POST", txUrl());
          const i = pos % good.length;
          fc.pre(good[i] !== ch);
          const bad = good.slice(0, i) + ch + good.slice(i + 1);
          const r = await submit({ authorization: `DPoP ${token}`, dpop: bad });
          // A change in the signature's last character can leave the decoded bytes equal (base64url
          // padding bits); such a proof is the same proof and may pass.
          if (r.status !== 401) {
            expect(Buffer.from(bad.split(".")[2] ?? "", "base64url")).toEqual(Buffer.from(good.split(".")[2], "base64url"));
            passed += 1;
          }
          await r.body?.cancel();
        },
      ),
      { numRuns: 60 },
    );
    expect((await signedCount()) - before).toBe(passed);
  });

  it("the token endpoint checks the proof: dpop_jwk needs a proof from that key, for that URL", async () => {
    const h = await newHolder();
    const url = `${baseUrl}/v1/auth/agent-token`;
    const post = (headers: Record<string, string>, body: unknown) =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
    const base = { api_key: agentKey, agent_id: agentId };
    const noProof = await post({}, { ...base, dpop_jwk: h.jwk });
    expect(noProof.status).toBe(400);
    expect(((await noProof.json()) as { code: string }).code).toBe("invalid_dpop_proof");
    expect((await post({ dpop: await proof(await newHolder(), "POST", url) }, { ...base, dpop_jwk: h.jwk })).status).toBe(400);
    expect((await post({ dpop: await proof(h, "POST", `${baseUrl}/v1/auth/api-key-token`) }, { ...base, dpop_jwk: h.jwk })).status).toBe(
      400,
    );
    // A private key in dpop_jwk is refused, never stored or echoed.
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const privJwk = await exportJWK(privateKey);
    const priv = await post({ dpop: await proof(h, "POST", url) }, { ...base, dpop_jwk: privJwk });
    expect(priv.status).toBe(400);
    expect(await priv.text()).not.toContain(privJwk.d!);
    // Without DPoP at all, the token is a plain bearer token, as before.
    const plain = (await (await post({}, base)).json()) as { token_type: string; access_token: string };
    expect(plain.token_type).toBe("Bearer");
    expect(JSON.parse(Buffer.from(plain.access_token.split(".")[1], "base64url").toString()).cnf).toBeUndefined();
    // The DPoP scheme with an unbound token or an API key is refused.
    await expectDpop401(await submit({ authorization: `DPoP ${plain.access_token}`, dpop: await proof(h, "POST", txUrl()) }));
    await expectDpop401(await submit({ authorization: `DPoP ${agentKey}`, dpop: await proof(h, "POST", txUrl()) }));
  });

  it("the iat window is 60 s either side, and expired replay rows are swept", async () => {
    const h = await newHolder();
    const url = "https://intents.example/v1/agents/me";
    const t0 = 2_000_000_000; // a fixed clock, in seconds
    let now = t0 * 1000;
    const verifier = new DpopVerifier(svc.ctx.pool, () => now);
    const check = async (iat: number) =>
      verifier.verify({ proof: await proof(h, "GET", url, { iat }), method: "GET", url: `${url}?q=1`, jkt: h.jkt }).then(
        () => 200,
        (e: { status: number }) => e.status,
      );
    expect(await check(t0 - DPOP_WINDOW_SECONDS)).toBe(200);
    expect(await check(t0 + DPOP_WINDOW_SECONDS)).toBe(200);
    expect(await check(t0 - DPOP_WINDOW_SECONDS - 1)).toBe(401);
    expect(await check(t0 + DPOP_WINDOW_SECONDS + 1)).toBe(401);
    const count = async () => (await svc.ctx.pool.query("SELECT count(*)::int AS n FROM dpop_proofs WHERE jkt = $1", [h.jkt])).rows[0].n;
    expect(await count()).toBe(2);
    // Rows are kept until their proof is out of the window; the sweep (at most once a minute) drops them.
    await svc.ctx.pool.query("UPDATE dpop_proofs SET expires_at = now() - interval '1 second' WHERE jkt = $1", [h.jkt]);
    now += 61_000;
    expect(await check(Math.floor(now / 1000))).toBe(200);
    expect(await count()).toBe(1);
  });

  describe("across replicas", () => {
    let replica: Replica;
    let app2: App;
    beforeAll(async () => {
      replica = await startReplica(svc, 4);
      app2 = replica.app;
    });
    afterAll(async () => replica?.close());

    it("a proof accepted by one replica is refused by the other (jti recorded in PostgreSQL)", async () => {
      const h = await newHolder();
      const token = await boundToken(h);
      // Both replicas behind one address: inject addresses both as http://localhost:80.
      const p = await proof(h, "GET", "http://localhost/v1/agents/me");
      const headers = { authorization: `DPoP ${token}`, dpop: p };
      const [a, b] = await Promise.all([
        svc.app.inject({ method: "GET", url: "/v1/agents/me", headers }),
        app2.inject({ method: "GET", url: "/v1/agents/me", headers }),
      ]);
      expect([a.statusCode, b.statusCode].sort()).toEqual([200, 401]);
      expect((await app2.inject({ method: "GET", url: "/v1/agents/me", headers })).statusCode).toBe(401);
      const rows = await svc.ctx.pool.query("SELECT count(*)::int AS n FROM dpop_proofs WHERE jkt = $1", [h.jkt]);
      expect(rows.rows[0].n).toBe(2); // the token request's proof and this one
    });
  });
});
