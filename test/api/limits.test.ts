// Guardrails at their boundaries and under concurrency, and Idempotency-Key semantics.
import { describe, expect, it } from "vitest";
import { call, createAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const OTHER = "0x1111111111111111111111111111111111111111";

describe("guardrails and idempotency", () => {
  const svc = useService();
  const { op } = svc;

  const submit = (agent: { id: string; token: string }, body: Record<string, unknown>, headers?: Record<string, string>) =>
    call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, {
      token: agent.token,
      body: { to: DEAD, chain: "local", ...body },
      headers,
    });
  const signedCount = async (agentId: string) =>
    Number((await svc.ctx.pool.query("SELECT count(*) FROM transactions WHERE agent_id = $1", [agentId])).rows[0].count);

  it("tx_max_value: equal passes, one wei over is 403 with guardrail", async () => {
    const a = await createAgent(svc.app, op, { tx_max_value: "0.5" });
    expect((await submit(a, { value: "0.5" })).status).toBe(201);
    const over = await submit(a, { value: "0.500000000000000001" });
    expect(over.status).toBe(403);
    assertMatchesReference("ProblemDetails", over.body);
    expect(over.body.guardrail).toEqual({
      reason_code: "max_value_exceeded",
      limit: "0.5",
      current: null,
      attempted: "0.500000000000000001",
    });
    expect(await signedCount(a.id)).toBe(1);
    const denied = await svc.ctx.pool.query("SELECT * FROM audit_events WHERE action = 'transaction.denied' AND actor_id = $1", [a.id]);
    expect(denied.rows).toHaveLength(1);
    expect(denied.rows[0].details.reason_code).toBe("max_value_exceeded");
  });

  it("tx_daily_limit: reaching it exactly passes, one wei more is denied", async () => {
    const a = await createAgent(svc.app, op, { tx_daily_limit_eth: "1" });
    expect((await submit(a, { value: "0.6" })).status).toBe(201);
    expect((await submit(a, { value: "0.4" })).status).toBe(201);
    const over = await submit(a, { value: "0.000000000000000001" });
    expect(over.status).toBe(403);
    expect(over.body.guardrail).toEqual({
      reason_code: "daily_limit_exceeded",
      limit: "1",
      current: "1",
      attempted: "0.000000000000000001",
    });
    expect((await submit(a, { value: "0" })).status).toBe(201);
    const me = await call(svc.app, "GET", `/v1/agents/${a.id}`, { token: a.token });
    expect(me.body).toMatchObject({ tx_spent_today: "1", tx_count_today: 3 });
  });

  it("tx_max_per_day counts today's transactions", async () => {
    const a = await createAgent(svc.app, op, { tx_max_per_day: 2 });
    expect((await submit(a, { value: "0" })).status).toBe(201);
    expect((await submit(a, { value: "0" })).status).toBe(201);
    const third = await submit(a, { value: "0" });
    expect(third.status).toBe(403);
    expect(third.body.guardrail).toMatchObject({ reason_code: "max_per_day_exceeded", limit: 2, current: 2, attempted: 3 });
  });

  it("tx_to_allowlist is case-insensitive; other recipients are denied", async () => {
    const a = await createAgent(svc.app, op, { tx_to_allowlist: [DEAD.toUpperCase().replace("0X", "0x")] });
    expect((await submit(a, { value: "0", to: DEAD.toLowerCase() })).status).toBe(201);
    expect((await submit(a, { value: "0", to: DEAD })).status).toBe(201);
    const r = await submit(a, { value: "0", to: OTHER });
    expect(r.status).toBe(403);
    expect(r.body.guardrail.reason_code).toBe("to_not_allowlisted");
  });

  it("tx_allowed_chains: another chain is 403; an unknown chain is 400", async () => {
    const a = await createAgent(svc.app, op, { tx_allowed_chains: ["base"] });
    const r = await submit(a, { value: "0" });
    expect(r.status).toBe(403);
    expect(r.body.guardrail.reason_code).toBe("chain_not_allowed");
    const unknown = await submit(a, { value: "0", chain: "narnia" });
    expect(unknown.status).toBe(400);
    const b = await createAgent(svc.app, op, { tx_allowed_chains: ["31337"] });
    expect((await submit(b, { value: "0" })).status).toBe(201);
  });

  it("tx_token_allowlist: an ERC-20 call to another contract is denied", async () => {
    const token = "0x2222222222222222222222222222222222222222";
    const a = await createAgent(svc.app, op, { tx_token_allowlist: [token] });
    const transfer = "0xa9059cbb" + DEAD.slice(2).toLowerCase().padStart(64, "0") + 1n.toString(16).padStart(64, "0");
    const r = await submit(a, { value: "0", to: OTHER, data: transfer, gas_limit: 60000 });
    expect(r.status).toBe(403);
    expect(r.body.guardrail.reason_code).toBe("token_not_allowlisted");
  });

  it("20 parallel submits of 0.1 against a daily limit of 1 sign exactly 10", async () => {
    const a = await createAgent(svc.app, op, { tx_daily_limit: "1" });
    const results = await Promise.all(Array.from({ length: 20 }, () => submit(a, { value: "0.1" })));
    const ok = results.filter((r) => r.status === 201);
    const denied = results.filter((r) => r.status === 403);
    expect(ok).toHaveLength(10);
    expect(denied).toHaveLength(10);
    for (const d of denied) expect(d.body.guardrail.reason_code).toBe("daily_limit_exceeded");
    expect(await signedCount(a.id)).toBe(10);
  });

  it("50 parallel requests with one Idempotency-Key: one signature, one broadcast, identical replays", async () => {
    const pick = (b: { id: string; tx_hash: string; nonce: number; signed_tx?: string }) => ({
      id: b.id,
      tx_hash: b.tx_hash,
      nonce: b.nonce,
    });
    const a = await createAgent(svc.app, op);
    const key = "order-" + Math.random();
    const body = { value: "0.01" };
    const results = await Promise.all(Array.from({ length: 50 }, () => submit(a, body, { "idempotency-key": key })));
    const created = results.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    for (const r of results) {
      if (r.status === 201) continue;
      // A retry between the COMMIT and the stored answer gets the committed row's state of that moment.
      if (r.status === 200 && r.raw !== created[0].raw) expect(pick(r.body)).toEqual(pick(created[0].body));
      else if (r.status === 200) expect(r.raw).toBe(created[0].raw);
      else {
        expect(r.status).toBe(409);
        assertMatchesReference("ProblemDetails", r.body);
      }
    }
    expect(await signedCount(a.id)).toBe(1);
    const broadcasts = await svc.ctx.pool.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE action = 'transaction.broadcast' AND resource_id = $1",
      [created[0].body.id],
    );
    expect(broadcasts.rows[0].n).toBe(1);

    const replay = await submit(a, body, { "idempotency-key": key });
    expect(replay.status).toBe(200);
    expect(replay.raw).toBe(created[0].raw);
    // Field order does not matter; a different body does.
    expect((await submit(a, { value: "0.01" }, { "idempotency-key": key })).status).toBe(200);
    const other = await submit(a, { value: "0.02" }, { "idempotency-key": key });
    expect(other.status).toBe(422);
    assertMatchesReference("ProblemDetails", other.body);
    expect(await signedCount(a.id)).toBe(1);
    // Keys are per agent: another agent's same key is a new request.
    const b = await createAgent(svc.app, op);
    expect((await submit(b, body, { "idempotency-key": key })).status).toBe(201);
    // Only the hash of the key is stored.
    const rows = await svc.ctx.pool.query("SELECT * FROM idempotency_keys");
    expect(JSON.stringify(rows.rows)).not.toContain(key);
  });

  it("a replay writes nothing; an expired key, or one whose claimant died before signing, is claimed anew", async () => {
    const a = await createAgent(svc.app, op);
    const key = "reuse-" + Math.random();
    const first = await submit(a, { value: "0.001" }, { "idempotency-key": key });
    expect(first.status).toBe(201);

    // A replay is a read: the key's row is not even locked (its xmin/xmax stay as they were).
    const version = async () =>
      (await svc.ctx.pool.query("SELECT xmin::text, xmax::text, state FROM idempotency_keys WHERE agent_id = $1", [a.id])).rows[0];
    const before = await version();
    expect((await submit(a, { value: "0.001" }, { "idempotency-key": key })).raw).toBe(first.raw);
    expect(await version()).toEqual(before);

    // Past its 24 h: the key is free again, and the same body is a new transaction.
    await svc.ctx.pool.query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE agent_id = $1", [a.id]);
    const again = await submit(a, { value: "0.001" }, { "idempotency-key": key });
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(first.body.id);

    // Claimed, never signed, and the claimant long gone: taken over instead of 409 forever.
    const key2 = "stale-" + Math.random();
    const { hashIdempotencyKey, requestFingerprint } = await import("../../src/pipeline/idempotency.js");
    await svc.ctx.pool.query(
      `INSERT INTO idempotency_keys (agent_id, key_hash, fingerprint, state, claimed_at, expires_at)
       VALUES ($1, $2, $3, 'in_flight', now() - interval '1 hour', now() + interval '1 hour')`,
      [a.id, hashIdempotencyKey(a.id, key2), requestFingerprint("submit", { to: DEAD, value: "0.001", chain: "local" })],
    );
    expect((await submit(a, { value: "0.001" }, { "idempotency-key": key2 })).status).toBe(201);
    expect(await signedCount(a.id)).toBe(3);
  });

  it("a failed request is not cached: the same key can be used again", async () => {
    const a = await createAgent(svc.app, op, { tx_max_value: "0.1" });
    const key = "retry-" + Math.random();
    expect((await submit(a, { value: "0.2" }, { "idempotency-key": key })).status).toBe(403);
    expect((await submit(a, { value: "0.2" }, { "idempotency-key": key })).status).toBe(403);
    await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body: { tx_max_value: "1" } });
    expect((await submit(a, { value: "0.2" }, { "idempotency-key": key })).status).toBe(201);
  });
});
