// Property-based fuzzing (fast-check) of every route the app registers: the list comes from the
// OpenAPI description the app generates (so routes added later are fuzzed without touching this
// file), plus the undocumented /metrics and the /docs static files. For each route: random and
// near-valid bodies (a valid body with one field mutated), random path parameters (unicode, long,
// path traversal, encoded and raw), random query strings, and Authorization / Idempotency-Key /
// Content-Type variants. Every answer must be:
//   - never a 5xx, and an RFC 7807 problem body whenever it is an error;
//   - 401 on a protected route whenever the credentials are not valid;
//   - 4xx for a transaction body the request schema rejects;
//   - without a signature, a new transaction row or a used nonce whenever it is not a success;
//   - free of secrets (the HSM PIN, the operator key);
// and the service must still answer /v1/health (healthy) at the end.
// FUZZ_RUNS scales the runs per route and category (default 25: ~2,500 requests, ~30 s on 2 cores);
// FUZZ_SEED changes the (fixed by default, so CI is repeatable) seed; FUZZ_ONLY=<regex> picks routes.
import fc from "fast-check";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TransactionRequestSchema } from "../../src/http/schemas/transactions.js";
import { call, type TestAgent } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 25);
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 0x1c1aa;
const DEAD = "0x000000000000000000000000000000000000dEaD";
const METHODS_WITH_BODY = new Set(["POST", "PUT", "PATCH"]);

type Method = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS";

interface Route {
  method: Method;
  /** OpenAPI form: /v1/agents/{agent_id}/transactions */
  path: string;
  params: string[];
}

interface Fixtures {
  agent: TestAgent;
  other: TestAgent;
  txId: string;
  webhookId: string;
  /** A key of its own for the grant routes (never the shared signer, which PATCH could switch off). */
  keyId: string;
  /** A disposable operator key (DELETE /v1/auth/api-keys/{key_id} may revoke it; never `op`). */
  operatorKeyId: string;
}

/* ------------------------------------------------ arbitraries ------------------------------------------------ */

const printable = (s: string) => /^[\x20-\x7e]*$/.test(s);
/** Header values must be encodable as latin1 without control characters, or the client itself refuses them. */
const headerSafe = (s: string) => /^[\t\x20-\x7e\x80-\xff]*$/.test(s);

const weirdString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 30 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.constantFrom(
    "",
    " ",
    "0",
    "-1",
    "1e309",
    "NaN",
    "Infinity",
    "-0",
    "00",
    "0.5",
    "1.",
    ".1",
    "0x",
    "0x0",
    "0xZZ",
    "null",
    "true",
    "undefined",
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "%00",
    "\u0000",
    "\ud800",
    "🚀",
    "é",
    "\u202e",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "a".repeat(5000),
    "1" + "0".repeat(100),
    "0." + "0".repeat(30) + "1",
    "0x" + "f".repeat(64),
    "0x" + "0".repeat(40),
    DEAD,
    DEAD.toLowerCase(),
    "local",
    "31337",
    "ethereum",
    "keys/local-signer",
    "agents/../keys/x",
    "keys/../../etc",
    "http://127.0.0.1:9/x",
    "javascript:alert(1)",
    "2025-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
  ),
);

const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  weirdString,
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(0, -1, 1, 1.5, 2 ** 53, -(2 ** 53), 1e308, -1e308, Number.MIN_VALUE, 21000, 20999, 4294967296),
  fc.constantFrom(null, true, false, [], {}, [null], [DEAD], { a: { b: { c: [] } } }),
  fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }).map(String),
);

/** A JSON object text from entries, so keys like __proto__ and duplicated keys survive. */
const objectText = (entries: Array<[string, unknown]>) =>
  `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? "null"}`).join(",")}}`;

function nearValid(base: Record<string, unknown>, extraKeys: string[]): fc.Arbitrary<string> {
  const keys = [...new Set([...Object.keys(base), ...extraKeys])];
  const entries = Object.entries(base);
  return fc.oneof(
    // One field set to something odd (possibly a field the base does not have).
    fc
      .tuple(fc.constantFrom(...keys, "unknown_field", "__proto__", "constructor", ""), weirdValue)
      .map(([k, v]) => objectText([...entries.filter(([e]) => e !== k), [k, v]])),
    // One field removed.
    fc.constantFrom(...Object.keys(base)).map((k) => objectText(entries.filter(([e]) => e !== k))),
    // A field given twice (JSON.parse keeps the last).
    fc.tuple(fc.constantFrom(...Object.keys(base)), weirdValue).map(([k, v]) => objectText([...entries, [k, v]])),
    // The body as something else entirely.
    fc.constantFrom(
      JSON.stringify([base]),
      JSON.stringify(JSON.stringify(base)),
      objectText(entries).slice(0, -1),
      `${objectText(entries)}garbage`,
    ),
    // Unchanged: valid requests must still behave.
    fc.constant(objectText(entries)),
  );
}

const randomBody: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 60 }),
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  fc.constantFrom(
    "",
    "{",
    "}",
    "[",
    "null",
    "[]",
    "{}",
    '""',
    "0",
    "-0",
    "1e999",
    '{"value":1e999}',
    "\ufeff{}",
    "\u0000",
    "[".repeat(5000) + "]".repeat(5000),
    '{"a":'.repeat(2000) + "1" + "}".repeat(2000),
    '{"__proto__":{"isAdmin":true}}',
    '{"constructor":{"prototype":{"x":1}}}',
    JSON.stringify({ a: "x".repeat(100_000) }),
  ),
);

const paramValue = (valid: string[]): fc.Arbitrary<{ value: string; raw: boolean }> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...valid).map((value) => ({ value, raw: false })) },
    { weight: 2, arbitrary: fc.uuid().map((value) => ({ value, raw: false })) },
    { weight: 3, arbitrary: weirdString.map((value) => ({ value, raw: false })) },
    { weight: 1, arbitrary: fc.string({ minLength: 100, maxLength: 3000 }).map((value) => ({ value, raw: false })) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(
          "..",
          "../..",
          "../../../../etc/passwd",
          "%2e%2e",
          "%2e%2e%2f%2e%2e",
          "..%2f..%2f",
          "%252e%252e",
          "%00",
          "%",
          "%zz",
          "%c0%ae",
          "~",
          ".",
          "//",
          "a/b",
          "%2F",
          "?x=1",
          "#frag",
          ";x",
          "*",
        )
        .map((value) => ({ value, raw: true })),
    },
    {
      weight: 1,
      arbitrary: valid.length
        ? fc.constantFrom(...valid).map((v) => ({ value: v.toUpperCase(), raw: false }))
        : fc.constant({ value: "X", raw: false }),
    },
  );

const QUERY_KEYS = [
  "limit",
  "cursor",
  "status",
  "chain",
  "chain_status",
  "from",
  "to",
  "include_signed_tx",
  "action",
  "actor_id",
  "resource_id",
  "format",
  "events",
  "offset",
];
const queryString: fc.Arbitrary<string> = fc.oneof(
  fc.constant(""),
  fc
    .array(fc.tuple(fc.oneof(fc.constantFrom(...QUERY_KEYS), fc.string({ maxLength: 10 })), weirdString), { maxLength: 4 })
    .map((pairs) =>
      pairs.length
        ? "?" + pairs.map(([k, v]) => `${encodeURIComponent(k.toWellFormed())}=${encodeURIComponent(v.toWellFormed())}`).join("&")
        : "",
    ),
  fc.constantFrom(
    "?limit=1&limit=2",
    "?limit=0",
    "?limit=501",
    "?limit=-1",
    "?limit=1e3",
    "?cursor=%ff%fe",
    "?cursor=" + "A".repeat(400),
    "?include_signed_tx=true",
    "?&&&=&=",
    "?a[b]=1",
    "?__proto__[x]=1",
    "?status[]=failed",
    "?from=yesterday",
  ),
);

/* ------------------------------------------------ the test ------------------------------------------------ */

describe("fuzzing every route", () => {
  let pin: string;
  let routes: Route[] = [];
  const publicRoutes = new Set<string>();
  const knownGaps = new Set<string>();
  const chainsDir = fs.mkdtempSync(path.join(os.tmpdir(), "intents-fuzz-chains-"));
  // Registered before the service's hooks: the folder is removed after the service has stopped.
  afterAll(() => fs.rmSync(chainsDir, { recursive: true, force: true }));

  const svc = useService({
    env: () => {
      // Only the local chain: a valid-looking request for a public chain would otherwise wait on an
      // unreachable RPC (a legitimate 502/503, not what this file looks for).
      const all = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, "../../chains.json"), "utf8"));
      const chainsFile = path.join(chainsDir, "chains.json");
      fs.writeFileSync(chainsFile, JSON.stringify({ chains: all.chains.filter((c: { name: string }) => c.name === "local") }));
      // The same bad credential is sent thousands of times and one agent makes thousands of requests:
      // the per-credential failure limit and the request budget are tested in limits/quotas.test.ts.
      return { CHAINS_FILE: chainsFile, TRACKER: "off", AUTH_FAILURES_PER_CREDENTIAL_PER_MINUTE: "0", AGENT_REQUESTS_PER_MINUTE: "0" };
    },
  });
  const { op } = svc;

  beforeAll(async () => {
    pin = fs.readFileSync(path.join(svc.dataDir, "softhsm", "pin"), "utf8").trim();

    const spec = (svc.app as unknown as { swagger(): { paths: Record<string, Record<string, unknown>> } }).swagger();
    for (const [p, ops] of Object.entries(spec.paths)) {
      for (const m of Object.keys(ops)) {
        routes.push({ method: m.toUpperCase() as Method, path: p, params: [...p.matchAll(/\{([^}]+)\}/g)].map((x) => x[1]) });
      }
    }
    routes.push(
      { method: "GET", path: "/metrics", params: [] },
      { method: "GET", path: "/docs/json", params: [] },
      { method: "GET", path: "/docs/static/{file}", params: ["file"] },
    );
    routes = routes.sort((a, b) => `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`));
    // Which routes answer without credentials (found, not assumed).
    const f = await fixtures();
    for (const r of routes) {
      const res = await svc.app.inject({
        method: r.method,
        url: urlFor(r, f, {}),
        headers: METHODS_WITH_BODY.has(r.method) ? { "content-type": "application/json" } : {},
        payload: METHODS_WITH_BODY.has(r.method) ? "{}" : undefined,
      });
      if (res.statusCode !== 401) publicRoutes.add(key(r));
    }
  }, 120_000);

  const key = (r: Route) => `${r.method} ${r.path}`;

  /** A fresh agent (and another one), a transaction of the agent, a webhook: per route, since some routes damage them. */
  /** An agent with its key and a JWT; the token is issued directly, not through the rate-limited route. */
  async function newAgent(): Promise<TestAgent> {
    const created = await call(svc.app, "POST", "/v1/agents", { token: op, body: { name: "fuzz", intents_api_enabled: true } });
    expect(created.status, created.raw).toBe(201);
    const { access_token } = await svc.ctx.auth.issueAgentToken(created.body.api_key, created.body.agent.id);
    return { id: created.body.agent.id, apiKey: created.body.api_key, token: access_token };
  }

  async function fixtures(): Promise<Fixtures> {
    const agent = await newAgent();
    const other = await newAgent();
    const tx = await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, {
      token: agent.token,
      body: { to: DEAD, value: "0", chain: "local" },
    });
    expect(tx.status, tx.raw).toBe(201);
    const hook = await call(svc.app, "POST", "/v1/webhooks", { token: op, body: { url: "http://127.0.0.1:9/fuzz" } });
    const key = await call(svc.app, "POST", "/v1/signing-keys", {
      token: op,
      body: { path: `keys/fuzz-grants-${Math.random().toString(36).slice(2)}` },
    });
    expect(key.status, key.raw).toBe(201);
    const opKey = await call(svc.app, "POST", "/v1/auth/api-keys", { token: op, body: { name: "fuzz" } });
    expect(opKey.status, opKey.raw).toBe(201);
    return {
      agent,
      other,
      txId: tx.body.id,
      webhookId: hook.status === 201 ? hook.body.id : "00000000-0000-4000-8000-000000000000",
      keyId: key.body.id,
      operatorKeyId: opKey.body.key.id,
    };
  }

  const validParams = (name: string, f: Fixtures): string[] => {
    if (name === "agent_id") return [f.agent.id, f.other.id];
    if (name === "tx_id") return [f.txId];
    if (name === "key") return [f.keyId];
    if (name === "id") return [f.webhookId];
    if (name === "key_id") return [f.operatorKeyId];
    if (name === "chain_id") return ["fuzzchain"]; // admin routes may update or delete it: never `local`
    if (name === "identifier" || name === "chain") return ["local", "31337", "anvil"];
    if (name === "file") return ["index.html", "swagger-initializer.js"];
    return [];
  };

  function urlFor(r: Route, f: Fixtures, values: Record<string, { value: string; raw: boolean }>, query = ""): string {
    return (
      r.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
        const v = values[name] ?? { value: validParams(name, f)[0] ?? "x", raw: false };
        // Lone surrogates cannot be percent-encoded; the client would send U+FFFD in their place.
        return v.raw && printable(v.value) ? v.value : encodeURIComponent(v.value.toWellFormed());
      }) + query
    );
  }

  const validBody = (r: Route, f: Fixtures): { base: Record<string, unknown>; extra: string[] } | undefined => {
    const tx = { to: DEAD, value: "0.001", chain: "local" };
    const txExtra = [
      "data",
      "signing_key_path",
      "nonce",
      "gas_limit",
      "gas_price",
      "max_fee_per_gas",
      "max_priority_fee_per_gas",
      "simulate_first",
      "mode",
      "gasless",
      "memo",
    ];
    const p = r.path;
    if (/\/transactions(\/sign)?$/.test(p) && r.method === "POST") return { base: tx, extra: txExtra };
    if (p.endsWith("/simulate")) return { base: tx, extra: ["data", "signing_key_path", "gas_limit"] };
    if (p.endsWith("/simulate-bundle")) return { base: { transactions: [tx] }, extra: [] };
    if (p === "/v1/auth/agent-token") return { base: { api_key: f.other.apiKey, agent_id: f.other.id }, extra: [] };
    if (p === "/v1/agents" && r.method === "POST")
      return {
        base: { name: "fuzzed", intents_api_enabled: true },
        extra: ["tx_max_value", "tx_daily_limit", "tx_to_allowlist", "tx_allowed_chains", "token_ttl_seconds", "expires_at", "scopes"],
      };
    if (p === "/v1/agents/{agent_id}" && r.method === "PATCH")
      return {
        base: { description: "fuzzed" },
        extra: [
          "tx_max_value",
          "tx_max_value_eth",
          "tx_daily_limit",
          "tx_max_per_day",
          "tx_token_limits",
          "is_active",
          "intents_api_enabled",
          "name",
        ],
      };
    if (p === "/v1/signing-keys")
      return { base: { path: `keys/fuzz-${Math.random().toString(36).slice(2)}`, chain: "local" }, extra: ["agent_id"] };
    if (p === "/v1/agents/{agent_id}/signing-keys") return { base: { chain: "local" }, extra: [] };
    if (p === "/v1/signing-keys/{key}/grants" && r.method === "POST") return { base: { agent_id: f.other.id }, extra: [] };
    if (p === "/v1/signing-keys/{key}" && r.method === "PATCH") return { base: { is_active: true }, extra: [] };
    if (p === "/v1/admin/chains" && r.method === "POST")
      return {
        base: { name: "fuzzchain", display_name: "Fuzz", chain_id: 777777, rpc_url: "http://127.0.0.1:9" },
        extra: ["rpc_urls", "aliases", "confirmations", "eip1559", "is_enabled", "explorer_url"],
      };
    if (p === "/v1/admin/chains/{chain_id}")
      return { base: { display_name: "Fuzz 2" }, extra: ["rpc_urls", "is_enabled", "aliases", "confirmations"] };
    if (p === "/v1/webhooks" && r.method === "POST")
      return { base: { url: "http://127.0.0.1:9/fuzz", events: ["transaction.broadcast"] }, extra: ["description"] };
    return undefined;
  };

  const authVariants = (f: Fixtures): fc.Arbitrary<{ value?: string; valid: boolean }> =>
    fc.oneof(
      fc.constantFrom(
        { value: `Bearer ${f.agent.token}`, valid: true },
        { value: `Bearer ${f.agent.apiKey}`, valid: true },
        { value: `Bearer ${op}`, valid: true },
        { value: `Bearer ${f.other.token}`, valid: true },
        { value: `bearer ${f.agent.token}`, valid: true },
      ),
      fc.constantFrom(
        { value: undefined, valid: false },
        { value: "", valid: false },
        { value: "Bearer", valid: false },
        { value: "Bearer ", valid: false },
        { value: `Basic ${Buffer.from("admin:admin").toString("base64")}`, valid: false },
        { value: `Bearer ${f.agent.token}x`, valid: false },
        { value: `Bearer ${f.agent.token.slice(0, -4)}AAAA`, valid: false },
        { value: `Bearer ${f.agent.token} ${f.agent.token}`, valid: false },
        { value: `Bearer ${op}x`, valid: false },
        { value: `Bearer ${op.slice(0, 20)}`, valid: false },
        { value: `Bearer ocv_${"a".repeat(43)}`, valid: false },
        { value: `Bearer 1ck_${"a".repeat(43)}`, valid: false },
        { value: "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZ2VudDoxIn0.", valid: false },
        { value: `Bearer ${"a".repeat(20_000)}`, valid: false },
        { value: `Token ${op}`, valid: false },
      ),
      weirdString.filter(headerSafe).map((v) => ({ value: `Bearer ${v}`, valid: false })),
    );

  const headerVariants = (f: Fixtures) =>
    fc.record({
      auth: authVariants(f),
      idempotencyKey: fc.option(
        fc
          .oneof(fc.string({ maxLength: 40 }), fc.constantFrom("", " ", "k".repeat(255), "k".repeat(256), "é", "a\tb", "key-1"))
          .filter(headerSafe),
        { nil: undefined },
      ),
      contentType: fc.option(
        fc.constantFrom(
          "application/json",
          "application/json; charset=utf-8",
          "APPLICATION/JSON",
          "application/json; charset=utf-16",
          "application/json;;",
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "application/xml",
          "application/problem+json",
          "application/merge-patch+json",
          "*/*",
          "",
          "garbage",
          "application/json; charset=latin1",
        ),
        { nil: undefined },
      ),
      requestId: fc.option(fc.string({ maxLength: 300 }).filter(headerSafe), { nil: undefined }),
    });

  /* ---------------------------------------------- the oracle ---------------------------------------------- */

  const signCount = async () => {
    const { values } = await svc.ctx.metrics.hsmSignDuration.get();
    return values.find((v) => v.metricName?.endsWith("_count"))?.value ?? 0;
  };
  const state = async () => {
    const { rows } = await svc.ctx.pool.query<{ t: number; n: string }>(
      "SELECT (SELECT count(*)::int FROM transactions) AS t, (SELECT coalesce(sum(next_nonce), 0) FROM nonces) AS n",
    );
    return { signatures: await signCount(), transactions: rows[0].t, nonces: rows[0].n };
  };

  interface Probe {
    route: Route;
    method: Method;
    url: string;
    headers: Record<string, string>;
    payload?: string | Buffer;
    /** The request cannot be valid: it must be refused (4xx) and change nothing. */
    mustFail?: boolean;
    /** Credentials are invalid on a protected route with the route intact: must be 401. */
    mustBe401?: boolean;
  }

  async function check(p: Probe): Promise<void> {
    const before = await state();
    // A different client address each time: the credential exchange's rate limit is tested in limits.test.ts.
    const remoteAddress = `10.${(Math.random() * 255) | 0}.${(Math.random() * 255) | 0}.${1 + ((Math.random() * 250) | 0)}`;
    const res = await svc.app.inject({ method: p.method, url: p.url, headers: p.headers, payload: p.payload, remoteAddress });
    const what = `${p.method} ${p.url.slice(0, 200)} [${JSON.stringify(p.headers).slice(0, 300)}] ${String(p.payload ?? "").slice(0, 300)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
    expect(res.statusCode, what).toBeLessThan(500);
    const frameworkCode = /"code":"(FST_ERR_BAD_URL|FST_ERR_MAX_PARAM_LENGTH)"/.exec(res.body)?.[1];
    if (frameworkCode && !res.headers["content-type"]?.toString().startsWith("application/problem+json")) {
      // Known gap, reported: these two are answered by fastify's router before any hook or error
      // handler runs; only the `frameworkErrors` option of Fastify() (src/app.ts) can shape them.
      knownGaps.add(`${frameworkCode} (${res.statusCode}) on ${key(p.route)}`);
    } else if (res.statusCode >= 400 && p.method !== "HEAD") {
      expect(res.headers["content-type"], what).toMatch(/^application\/problem\+json/);
      const body = JSON.parse(res.body);
      expect(body.status, what).toBe(res.statusCode);
      expect(typeof body.type === "string" && typeof body.title === "string" && typeof body.detail === "string", what).toBe(true);
    }
    if (p.mustBe401) expect(res.statusCode, what).toBe(401);
    if (p.mustFail) expect(res.statusCode, what).toBeGreaterThanOrEqual(400);
    if (res.statusCode < 200 || res.statusCode >= 300 || p.mustFail) expect(await state(), what).toEqual(before);
    expect(res.body.includes(pin), what).toBe(false);
    expect(res.body.includes(op), what).toBe(false);
  }

  const runRoute = async (r: Route) => {
    const f = await fixtures();
    const isPublic = publicRoutes.has(key(r));
    const opts = { numRuns: RUNS, seed: SEED, endOnFailure: true };
    // The admin routes may delete or change the chain they name: never let them name the local chain,
    // which every other route's fixtures need (that would be a valid request doing what it says).
    const LOCAL = new Set(["local", "31337", "anvil", "localhost", "dev"]);
    const keepsLocal = (v: { value: string }) => !r.path.startsWith("/v1/admin/chains/") || !LOCAL.has(v.value.trim().toLowerCase());
    const paramArbs = Object.fromEntries(r.params.map((name) => [name, paramValue(validParams(name, f)).filter(keepsLocal)]));
    const withBody = METHODS_WITH_BODY.has(r.method);
    const valid = validBody(r, f);
    const isTxBody = /\/transactions(\/sign)?$/.test(r.path) && r.method === "POST";
    const goodAuth =
      r.path.startsWith("/v1/agents/{agent_id}/transactions") || r.path === "/v1/agents/me" ? `Bearer ${f.agent.token}` : `Bearer ${op}`;

    // 1. Bodies: random, and near-valid with one mutation (valid credentials and parameters).
    if (withBody) {
      const bodies: fc.Arbitrary<string | Buffer> = valid
        ? fc.oneof({ weight: 3, arbitrary: nearValid(valid.base, valid.extra) }, { weight: 1, arbitrary: randomBody })
        : randomBody;
      await fc.assert(
        fc.asyncProperty(bodies, async (payload) => {
          let mustFail = false;
          if (isTxBody) {
            try {
              mustFail = !TransactionRequestSchema.safeParse(JSON.parse(payload.toString())).success;
            } catch {
              mustFail = true;
            }
          }
          await check({
            route: r,
            method: r.method,
            url: urlFor(r, f, {}),
            headers: { authorization: goodAuth, "content-type": "application/json", "idempotency-key": `fz-${Math.random()}` },
            payload,
            mustFail,
          });
        }),
        opts,
      );
    }

    // 2. Path parameters and query strings.
    if (r.params.length || r.method === "GET") {
      const values = r.params.length ? fc.record(paramArbs) : fc.constant({} as Record<string, { value: string; raw: boolean }>);
      await fc.assert(
        fc.asyncProperty(
          values,
          queryString,
          fc.constantFrom<Method>(r.method, r.method === "GET" ? "HEAD" : r.method),
          async (vals, query, method) => {
            const payload = withBody && valid ? JSON.stringify(valid.base) : undefined;
            await check({
              route: r,
              method,
              url: urlFor(r, f, vals, query),
              headers: { authorization: goodAuth, ...(payload ? { "content-type": "application/json" } : {}) },
              payload,
            });
          },
        ),
        opts,
      );
    }

    // 3. Headers: credentials, Idempotency-Key, Content-Type, X-Request-Id.
    await fc.assert(
      fc.asyncProperty(headerVariants(f), fc.boolean(), async (h, sendBody) => {
        const headers: Record<string, string> = {};
        if (h.auth.value !== undefined) headers.authorization = h.auth.value;
        if (h.idempotencyKey !== undefined) headers["idempotency-key"] = h.idempotencyKey;
        if (h.contentType !== undefined) headers["content-type"] = h.contentType;
        if (h.requestId !== undefined) headers["x-request-id"] = h.requestId;
        const payload = withBody && (sendBody || valid) ? JSON.stringify(valid?.base ?? {}) : undefined;
        await check({
          route: r,
          method: r.method,
          url: urlFor(r, f, {}),
          headers,
          payload,
          mustBe401: !isPublic && !h.auth.valid,
          mustFail: !isPublic && !h.auth.valid,
        });
      }),
      opts,
    );
  };

  it("enumerates the app's routes (and finds the core ones)", () => {
    const keys = routes.map(key);
    for (const k of [
      "POST /v1/agents/{agent_id}/transactions",
      "POST /v1/agents/{agent_id}/transactions/sign",
      "GET /v1/agents/{agent_id}/transactions",
      "GET /v1/agents/{agent_id}/transactions/{tx_id}",
      "POST /v1/auth/agent-token",
      "POST /v1/agents",
      "PATCH /v1/agents/{agent_id}",
      "POST /v1/signing-keys",
      "GET /v1/health",
      "GET /v1/chains/{identifier}",
    ])
      expect(keys).toContain(k);
    expect(routes.length).toBeGreaterThanOrEqual(30);
  });

  it("fuzzes every route: no 5xx, errors are problem bodies, bad credentials are 401, nothing signed by a refused request", async () => {
    const failures: string[] = [];
    const only = process.env.FUZZ_ONLY ? new RegExp(process.env.FUZZ_ONLY) : undefined;
    for (const r of routes) {
      if (only && !only.test(key(r))) continue;
      try {
        await runRoute(r);
      } catch (err) {
        const cause = (err as { cause?: unknown }).cause;
        failures.push(`${key(r)}: ${cause instanceof Error ? cause.message.slice(0, 3000) : ""}\n${(err as Error).message.slice(0, 1500)}`);
      }
    }
    if (knownGaps.size) console.warn(`known gaps (not RFC 7807, see the comment in check()):\n  ${[...knownGaps].join("\n  ")}`);
    expect(failures).toEqual([]);
    // The service is still up and well.
    const health = await call(svc.app, "GET", "/v1/health");
    expect(health.status).toBe(200);
    expect(health.body.status).toBe("healthy");
  }, 300_000);

  it("a NUL character that reaches the database is a 400, not a 500 (found by this file)", async () => {
    const f = await fixtures();
    const cases: Array<[Method, string, unknown]> = [
      ["POST", "/v1/agents", { name: "a\u0000b" }],
      ["PATCH", `/v1/agents/${f.other.id}`, { description: "\u0000" }],
      ["PUT", "/v1/admin/chains/%00", { display_name: "x" }],
      ["DELETE", "/v1/admin/chains/a%00b", undefined],
      ["GET", "/v1/chains/%00", undefined],
      ["GET", "/v1/audit/events?actor_id=%00", undefined],
      ["POST", "/v1/webhooks", { url: "http://127.0.0.1:9/\u0000", description: "\u0000" }],
    ];
    for (const [method, url, body] of cases) {
      await check({
        route: { method, path: url, params: [] },
        method,
        url,
        headers: { authorization: `Bearer ${op}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        payload: body !== undefined ? JSON.stringify(body) : undefined,
      });
    }
  });

  it("/docs does not serve files outside its static folder", async () => {
    for (const p of [
      "../package.json",
      "..%2fpackage.json",
      "%2e%2e/%2e%2e/package.json",
      "../../../../etc/passwd",
      "..%2f..%2f..%2f..%2fetc%2fpasswd",
      "....//....//etc/passwd",
    ]) {
      const res = await svc.app.inject({ method: "GET", url: `/docs/static/${p}` });
      expect(res.statusCode, p).toBeLessThan(500);
      expect(res.body).not.toMatch(/root:x:0:0|"name": "intents-signer"|PKCS11_PIN/);
    }
  });
});
