// Malformed requests: each a 400 with field errors, and nothing written (no transaction, no nonce, no
// audit event, no idempotency record).
import { describe, expect, it } from "vitest";
import { call } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";

const TO = "0x000000000000000000000000000000000000dEaD";
const ok = { to: TO, value: "0.01", chain: "local" };

const BODIES: Array<[string, unknown]> = [
  ["missing to", { value: "1", chain: "local" }],
  ["missing value", { to: TO, chain: "local" }],
  ["missing chain", { to: TO, value: "1" }],
  ["empty object", {}],
  ["array body", [ok]],
  ["null body", null],
  ["string body", "hello"],
  ["number body", 42],
  ["short address", { ...ok, to: "0x1234" }],
  ["long address", { ...ok, to: TO + "00" }],
  ["address without 0x", { ...ok, to: TO.slice(2) }],
  ["non-hex address", { ...ok, to: "0xZZ0000000000000000000000000000000000dEaD" }],
  ["bad checksum", { ...ok, to: "0x000000000000000000000000000000000000DeAd" }],
  ["address as number", { ...ok, to: 123 }],
  ["odd hex data", { ...ok, data: "0xabc" }],
  ["data without 0x", { ...ok, data: "abcd" }],
  ["non-hex data", { ...ok, data: "0xzz" }],
  ["data as number", { ...ok, data: 1234 }],
  ["value with 19 decimals", { ...ok, value: "0.0000000000000000001" }],
  ["negative value", { ...ok, value: "-1" }],
  ["exponent value", { ...ok, value: "1e80" }],
  ["huge value", { ...ok, value: "1" + "0".repeat(80) }],
  ["value as number", { ...ok, value: 0.5 }],
  ["value with spaces", { ...ok, value: " 1" }],
  ["value hex", { ...ok, value: "0x10" }],
  ["value empty", { ...ok, value: "" }],
  ["value leading dot", { ...ok, value: ".5" }],
  ["value trailing dot", { ...ok, value: "5." }],
  ["value with comma", { ...ok, value: "0,5" }],
  ["value NaN", { ...ok, value: "NaN" }],
  ["value Infinity", { ...ok, value: "Infinity" }],
  ["unknown chain", { ...ok, chain: "narnia" }],
  ["unknown chain id", { ...ok, chain: "999999999" }],
  ["chain as object", { ...ok, chain: { id: 1 } }],
  ["empty chain", { ...ok, chain: "" }],
  ["unknown field", { ...ok, gaslimit: 21000 }],
  ["prototype pollution", JSON.parse(`{"to":"${TO}","value":"1","chain":"local","__proto__":{"x":1}}`)],
  ["negative nonce", { ...ok, nonce: -1 }],
  ["fractional nonce", { ...ok, nonce: 1.5 }],
  ["nonce as string", { ...ok, nonce: "1" }],
  ["gas_limit too low", { ...ok, gas_limit: 20999 }],
  ["gas_limit as string", { ...ok, gas_limit: "21000" }],
  ["gas_price negative", { ...ok, gas_price: "-1" }],
  ["gas_price decimal", { ...ok, gas_price: "1.5" }],
  ["gas_price with 1559 fields", { ...ok, gas_price: "1", max_fee_per_gas: "2", max_priority_fee_per_gas: "1" }],
  ["max fee without priority", { ...ok, max_fee_per_gas: "2" }],
  ["priority above max fee", { ...ok, max_fee_per_gas: "1", max_priority_fee_per_gas: "2" }],
  ["fee over 2^256", { ...ok, gas_price: (1n << 256n).toString() }],
  ["simulate_first as string", { ...ok, simulate_first: "yes" }],
  ["signing_key_path with spaces", { ...ok, signing_key_path: "keys/a b" }],
  ["smart account mode", { ...ok, mode: "smart_account" }],
  ["gasless", { ...ok, gasless: true }],
  ["non-EVM field", { ...ok, memo: "hi" }],
];

describe("malformed transaction requests", () => {
  const svc = useService({ agent: true });

  const counts = async () =>
    (
      await svc.ctx.pool.query(
        `SELECT (SELECT count(*) FROM transactions) AS t, (SELECT count(*) FROM nonces) AS n,
              (SELECT count(*) FROM idempotency_keys) AS i,
              (SELECT count(*) FROM audit_events WHERE action LIKE 'transaction.%') AS a`,
      )
    ).rows[0];

  it(`has at least 40 cases`, () => expect(BODIES.length).toBeGreaterThanOrEqual(40));

  it.each(BODIES)("%s → 400 with field errors, nothing written", async (_name, body) => {
    const before = await counts();
    for (const path of ["/transactions", "/transactions/sign"]) {
      const r = await call(svc.app, "POST", `/v1/agents/${svc.agent.id}${path}`, {
        token: svc.agent.token,
        body: typeof body === "string" ? JSON.stringify(body) : body,
        headers: { "idempotency-key": "k-" + Math.random() },
      });
      expect(r.status).toBe(400);
      assertMatchesReference("ProblemDetails", r.body);
      expect(r.body.detail.length).toBeGreaterThan(0);
      expect(Array.isArray(r.body.errors)).toBe(true);
      expect(r.body.errors.length).toBeGreaterThan(0);
      for (const e of r.body.errors) expect(typeof e.field).toBe("string");
    }
    expect(await counts()).toEqual(before);
  });

  it("invalid JSON and a body over 5 MB are rejected without writing", async () => {
    const before = await counts();
    const bad = await call(svc.app, "POST", `/v1/agents/${svc.agent.id}/transactions`, { token: svc.agent.token, body: "{not json" });
    expect(bad.status).toBe(400);
    assertMatchesReference("ProblemDetails", bad.body);
    const big = await call(svc.app, "POST", `/v1/agents/${svc.agent.id}/transactions`, {
      token: svc.agent.token,
      body: JSON.stringify({ ...ok, data: "0x" + "ab".repeat(3 * 1024 * 1024) }),
    });
    expect(big.status).toBe(413);
    assertMatchesReference("ProblemDetails", big.body);
    const badKey = await call(svc.app, "POST", `/v1/agents/${svc.agent.id}/transactions`, {
      token: svc.agent.token,
      body: ok,
      headers: { "idempotency-key": "x".repeat(300) },
    });
    expect(badKey.status).toBe(400);
    expect(await counts()).toEqual(before);
  });

  it("errors raised before routing are RFC 7807 too and do not echo the path", async () => {
    for (const url of [`/v1/agents/${svc.agent.id}/transactions/%E0%A4%A`, `/v1/agents/${"x".repeat(150)}/transactions`]) {
      const r = await call(svc.app, "GET", url, { token: svc.agent.token });
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      assertMatchesReference("ProblemDetails", r.body);
      expect(r.headers["content-type"]).toMatch(/problem\+json/);
      expect(r.raw).not.toContain("xxxxxxxxxx");
    }
  });
});
