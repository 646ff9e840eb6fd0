// Message and digest signing intents, and what operators see of every signature. Property tests: for
// random messages and random typed data, the signature recovers to the key's address with viem and
// has a low s. SIWE with a wrong domain, chain or address, or without a bounded expiry, is refused;
// blind signing (a bare digest, or bytes that are not text) needs raw_signing_enabled.
import fc from "fast-check";
import { createSiweMessage } from "viem/siwe";
import { hashMessage, parseSignature, recoverAddress, toHex, verifyMessage, verifyTypedData, type Address, type Hex } from "viem";
import { describe, expect, it } from "vitest";
import { sealAuditEvents } from "../../src/audit-chain.js";
import { fanoutWebhookEvents } from "../../src/webhooks/fanout.js";
import { call } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useIntentStack } from "./helpers.js";

const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
const RUNS = Number(process.env.FUZZ_RUNS ?? 25);

describe("message and digest signing intents", () => {
  const s = useIntentStack();

  const siwe = (address: Address, over: Partial<Parameters<typeof createSiweMessage>[0]> = {}) =>
    createSiweMessage({
      domain: "app.example.com",
      address,
      uri: "https://app.example.com/login",
      version: "1",
      chainId: 31337,
      nonce: "abcdef123456",
      issuedAt: new Date(),
      expirationTime: new Date(Date.now() + 10 * 60_000),
      statement: "Sign in",
      ...over,
    });

  it("property: random text and byte messages recover to the key's address, low-s, with message_hash = EIP-191 hash", async () => {
    const a = await s.agent({ raw_signing_enabled: true }, 0n);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc
            .string({ minLength: 1, maxLength: 200 })
            .filter((t) => !/^0x[0-9a-fA-F]*$/.test(t))
            .map((t) => ({ t })),
          fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => ({ b })),
        ),
        async (m) => {
          const message = "t" in m ? m.t : toHex(m.b);
          const raw = "t" in m ? new TextEncoder().encode(m.t) : m.b;
          const r = await s.sign(a, { intent_type: "personal_sign", message });
          expect(r.status, JSON.stringify(r.body)).toBe(200);
          assertMatchesReference("SignIntentResponse", r.body);
          expect(r.body.message_hash).toBe(hashMessage({ raw }));
          expect(await verifyMessage({ address: a.address, message: { raw }, signature: r.body.signature })).toBe(true);
          expect(BigInt(parseSignature(r.body.signature).s)).toBeLessThanOrEqual(HALF_N);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("property: random EIP-712 typed data recovers to the key's address with verifyTypedData", async () => {
    const a = await s.agent({}, 0n);
    const field = fc.constantFrom(
      ["uint256", fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }).map(String)],
      ["int64", fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map(String)],
      ["address", fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => toHex(b))],
      ["bool", fc.boolean()],
      ["string", fc.string({ maxLength: 40 })],
      ["bytes32", fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => toHex(b))],
      ["bytes", fc.uint8Array({ maxLength: 40 }).map((b) => toHex(b))],
    ) as fc.Arbitrary<[string, fc.Arbitrary<unknown>]>;
    const typedData = fc.array(field, { minLength: 1, maxLength: 6 }).chain((fields) =>
      fc.tuple(...fields.map(([, arb]) => arb)).map((values) => ({
        types: { Thing: fields.map(([type], i) => ({ name: `f${i}`, type })) },
        primaryType: "Thing",
        domain: { name: "Random", version: "1", chainId: 31337 },
        message: Object.fromEntries(values.map((v, i) => [`f${i}`, v])),
      })),
    );
    await fc.assert(
      fc.asyncProperty(typedData, async (td) => {
        const r = await s.sign(a, { intent_type: "typed_data", typed_data: td });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body.kind).toBe("typed_data_unknown");
        expect(await verifyTypedData({ ...(td as any), address: a.address, signature: r.body.signature })).toBe(true);
        expect(BigInt(parseSignature(r.body.signature).s)).toBeLessThanOrEqual(HALF_N);
      }),
      { numRuns: RUNS },
    );
  });

  it("SIWE: signed for an allowlisted domain on this chain; a wrong domain, chain, address or an unbounded expiry is 403", async () => {
    const a = await s.agent({ siwe_domain_allowlist: ["app.example.com"] }, 0n);
    const good = siwe(a.address);
    const ok = await s.sign(a, { intent_type: "personal_sign", message: good });
    expect(ok.status).toBe(200);
    expect(ok.body.kind).toBe("siwe");
    expect(await verifyMessage({ address: a.address, message: good, signature: ok.body.signature })).toBe(true);
    const denied = async (message: string) => (await s.sign(a, { intent_type: "personal_sign", message })).body.guardrail?.reason_code;
    expect(await denied(siwe(a.address, { domain: "evil.example.com" }))).toBe("siwe_domain_not_allowlisted");
    expect(await denied(siwe(a.address, { chainId: 1 }))).toBe("siwe_chain_mismatch");
    expect(await denied(siwe("0x00000000000000000000000000000000000a11ce"))).toBe("siwe_address_mismatch");
    expect(await denied(siwe(a.address, { expirationTime: undefined }))).toBe("siwe_expiry_missing");
    expect(await denied(siwe(a.address, { expirationTime: new Date(Date.now() + 30 * 86_400_000) }))).toBe("validity_too_long");
    // A near-miss of the format is not signed as plain text.
    expect(await denied(siwe(a.address).replace("\n", "\r\n"))).toBe("siwe_invalid");
    expect(await denied(siwe(a.address).replace("Version: 1", "Version: 2"))).toBe("siwe_invalid");
    // As hex bytes (the reference's encoding), the same rules apply.
    expect(
      (await s.sign(a, { intent_type: "personal_sign", message: toHex(siwe(a.address, { chainId: 10 })) })).body.guardrail.reason_code,
    ).toBe("siwe_chain_mismatch");
  });

  it("blind signing: eip712_digest and non-text messages need raw_signing_enabled; then they are signed and recorded as blind", async () => {
    const a = await s.agent({}, 0n);
    const digest = `0x${"ab".repeat(32)}` as Hex;
    const r = await s.sign(a, { intent_type: "eip712_digest", hash: digest });
    expect(r.status).toBe(403);
    expect(r.body.guardrail.reason_code).toBe("raw_signing_disabled");
    // A 32-byte hash sent as a "message" is blind signing too.
    expect((await s.sign(a, { intent_type: "personal_sign", message: digest })).body.guardrail.reason_code).toBe("raw_signing_disabled");
    await call(s.svc.app, "PATCH", `/v1/agents/${a.id}`, { token: s.op, body: { raw_signing_enabled: true } });
    const ok = await s.sign(a, { intent_type: "eip712_digest", hash: digest });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ typed_data_hash: digest, kind: "blind_digest" });
    expect(await recoverAddress({ hash: digest, signature: ok.body.signature })).toBe(a.address);
    const audit = await s.svc.ctx.pool.query("SELECT details FROM audit_events WHERE action = 'signature.create' AND resource_id = $1", [
      ok.body.id,
    ]);
    expect(audit.rows[0].details).toMatchObject({ intent_type: "eip712_digest", kind: "blind_digest", meaning: { blind: true, digest } });
    expect((await s.sign(a, { intent_type: "eip712_digest", hash: "0x1234" })).status).toBe(400);
  });

  it("operators see every signature with its meaning in the history and the export, and webhooks fire for it", async () => {
    const hook = await call(s.svc.app, "POST", "/v1/webhooks", {
      token: s.op,
      body: { url: "http://127.0.0.1:9/hook", events: ["agent.signature.created"] },
    });
    expect(hook.status).toBe(201);
    const a = await s.agent({ siwe_domain_allowlist: ["app.example.com"] }, 0n);
    const r = await s.sign(a, { intent_type: "personal_sign", message: siwe(a.address) });
    expect(r.status).toBe(200);

    const list = await call(s.svc.app, "GET", `/v1/signatures?agent_id=${a.id}`, { token: s.op });
    expect(list.status).toBe(200);
    expect(list.body.signatures).toHaveLength(1);
    expect(list.body.signatures[0]).toMatchObject({
      id: r.body.id,
      intent_type: "personal_sign",
      kind: "siwe",
      from: a.address.toLowerCase(),
      meaning: { domain: "app.example.com", chain_id: 31337 },
    });
    expect(list.body.signatures[0].signature).toBeUndefined();
    const own = await call(s.svc.app, "GET", `/v1/agents/${a.id}/signatures?include_signature=true`, { token: a.token });
    expect(own.body.signatures[0].signature).toBe(r.body.signature);
    const otherAgent = await s.agent({}, 0n);
    expect((await call(s.svc.app, "GET", `/v1/agents/${a.id}/signatures`, { token: otherAgent.token })).status).toBe(403);
    expect((await call(s.svc.app, "GET", "/v1/signatures", { token: a.token })).status).toBe(403);

    const jsonl = await call(s.svc.app, "GET", `/v1/signatures/export?agent_id=${a.id}`, { token: s.op });
    expect(
      jsonl.raw
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).id),
    ).toEqual([r.body.id]);
    const csv = await call(s.svc.app, "GET", `/v1/signatures/export?format=csv&agent_id=${a.id}`, { token: s.op });
    expect(csv.raw.split("\r\n")[0]).toBe(
      "id,agent_id,intent_type,kind,chain,chain_id,from,signing_key_path,digest,valid_until,created_at,meaning",
    );
    expect(csv.raw).toContain(r.body.id);

    // The service's own sealer and fan-out run beside these calls (a sealing pass in flight makes ours
    // find nothing to seal), so look again until the delivery is there or 10 s have passed.
    let mine: Array<{ event_type: string; payload: { data: Record<string, unknown> } }> = [];
    for (let i = 0; i < 100 && mine.length === 0; i++) {
      if (i > 0) await new Promise((res) => setTimeout(res, 100));
      while ((await sealAuditEvents(s.svc.ctx.pool)) > 0);
      await fanoutWebhookEvents(s.svc.ctx.pool);
      const deliveries = await s.svc.ctx.pool.query("SELECT event_type, payload FROM webhook_deliveries WHERE endpoint_id = $1", [
        hook.body.id,
      ]);
      mine = deliveries.rows.filter((d) => d.payload.data.signature_id === r.body.id);
    }
    expect(mine).toHaveLength(1);
    expect(mine[0].event_type).toBe("agent.signature.created");
    expect(mine[0].payload.data).toMatchObject({ agent_id: a.id, kind: "siwe", meaning: { domain: "app.example.com" } });
  });

  it("an agent without the Intents API, another agent's id, or an operator cannot sign", async () => {
    const a = await s.agent({}, 0n);
    const b = await s.agent({}, 0n);
    const body = { intent_type: "personal_sign", message: "hello", chain: "local" };
    expect((await call(s.svc.app, "POST", `/v1/agents/${a.id}/sign`, { token: b.token, body })).status).toBe(403);
    expect((await call(s.svc.app, "POST", `/v1/agents/${a.id}/sign`, { token: s.op, body })).status).toBe(403);
    await call(s.svc.app, "PATCH", `/v1/agents/${a.id}`, { token: s.op, body: { intents_api_enabled: false } });
    expect((await s.sign(a, body)).status).toBe(403);
    const c = await s.agent({ tx_allowed_chains: ["ethereum"] }, 0n);
    expect((await s.sign(c, body)).body.guardrail.reason_code).toBe("chain_not_allowed");
  });

  it("the service's OpenAPI documents the sign route, the signature history and the agents' signing fields", async () => {
    const r = await call(s.svc.app, "GET", "/docs/json");
    expect(r.status).toBe(200);
    const sign = JSON.stringify(r.body.paths["/v1/agents/{agent_id}/sign"].post);
    for (const t of ["personal_sign", "typed_data", "eip712_digest", "transaction"]) expect(sign).toContain(t);
    expect(r.body.paths["/v1/signatures"].get).toBeDefined();
    expect(r.body.paths["/v1/signatures/export"].get).toBeDefined();
    const patch = JSON.stringify(r.body.paths["/v1/agents/{agent_id}"].patch);
    const fields = [
      "typed_data_unknown",
      "siwe_domain_allowlist",
      "verifying_contract_allowlist",
      "raw_signing_enabled",
      "eip7702_delegate_allowlist",
      "eip7702_allow_chain_id_zero",
      "sign_max_validity_seconds",
    ];
    for (const f of fields) expect(patch).toContain(f);
    const a = await s.agent({}, 0n);
    const me = await call(s.svc.app, "GET", `/v1/agents/${a.id}`, { token: a.token });
    expect(me.body).toMatchObject({
      typed_data_unknown: null,
      siwe_domain_allowlist: [],
      verifying_contract_allowlist: [],
      raw_signing_enabled: false,
      eip7702_delegate_allowlist: [],
      eip7702_allow_chain_id_zero: false,
      sign_max_validity_seconds: 3600,
    });
    const bad = await call(s.svc.app, "PATCH", `/v1/agents/${a.id}`, { token: s.op, body: { sign_max_validity_seconds: 10 } });
    expect(bad.status).toBe(400);
    // An agent cannot turn on its own blind signing.
    expect((await call(s.svc.app, "PATCH", `/v1/agents/${a.id}`, { token: a.token, body: { raw_signing_enabled: true } })).status).toBe(
      403,
    );
  });
});
