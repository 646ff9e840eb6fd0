// Human approvals against the real stack (PostgreSQL, SoftHSM, anvil): what the approval rules hold
// back answers 202 and waits; operator keys vote (once each, bound to the payload hash); the quorum
// executes it once through the normal pipeline; resubmissions with approval_id or the Idempotency-Key
// get that one result; rejection, expiry and a limit used up meanwhile end it with nothing signed;
// an x402 payment to a new payee waits and is signed once approved.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { encodeFunctionData, keccak256, recoverTypedDataAddress, toHex, type Address, type Hex } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { IntentToken } from "../contracts/intents.js";
import { call, type TestAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { permit, transferWithAuthorization, UNIT, useIntentStack } from "../intents/helpers.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const PAYEE = "0x00000000000000000000000000000000000a11ce" as Address;
const NEW_PAYEE = "0x00000000000000000000000000000000000b0b00" as Address;

describe("human approvals", () => {
  const s = useIntentStack();
  let ops: Array<{ id: string; key: string }>;
  beforeAll(async () => {
    // Three operator keys besides the admin key: votes are counted per key.
    ops = [];
    for (const name of ["alice", "bob", "carol"]) {
      const r = await call(s.svc.app, "POST", "/v1/auth/api-keys", { token: s.op, body: { name } });
      expect(r.status).toBe(201);
      ops.push({ id: r.body.id ?? r.body.key?.id, key: r.body.api_key });
    }
  });

  const setRules = (a: TestAgent, rules: Record<string, unknown> | null) =>
    call(s.svc.app, "PUT", `/v1/agents/${a.id}/approval-rules`, { token: s.op, body: { approval_rules: rules } });
  const submit = (a: TestAgent, body: Record<string, unknown>, headers?: Record<string, string>) =>
    call(s.svc.app, "POST", `/v1/agents/${a.id}/transactions`, { token: a.token, body: { to: DEAD, chain: "local", ...body }, headers });
  const vote = (op: { key: string }, id: string, decision: "approve" | "reject", hash: string, reason?: string) =>
    call(s.svc.app, "POST", `/v1/pending-approvals/${id}/approve`, {
      token: op.key,
      body: { decision, payload_hash: hash, ...(reason ? { reason } : {}) },
    });
  const read = (token: string, id: string) => call(s.svc.app, "GET", `/v1/pending-approvals/${id}`, { token });
  const txCount = async (agentId: string) =>
    Number((await s.svc.ctx.pool.query("SELECT count(*) FROM transactions WHERE agent_id = $1", [agentId])).rows[0].count);

  it("a transfer above the threshold waits (202); one operator approves; it is mined; approval_id and the Idempotency-Key return that transaction; one signature", async () => {
    const a = await s.agent({}, 0n);
    expect((await setRules(a, { cost_above_wei: (10n ** 17n).toString() })).status).toBe(200);
    // Below the threshold: no approval.
    expect((await submit(a, { value: "0.01" })).status).toBe(201);

    const body = { value: "0.5" };
    const held = await submit(a, body, { "idempotency-key": "pay-1" });
    expect(held.status).toBe(202);
    assertMatchesReference("SubmitPendingApprovalResponse", held.body);
    expect(held.body).toMatchObject({ status: "pending_approval", required_approvals: 1, current_approvals: 0 });
    const id = held.body.pending_approval_id;
    expect(held.headers.location).toBe(`/v1/pending-approvals/${id}`);
    expect(await txCount(a.id)).toBe(1);

    // The agent reads its own approval; while it waits, a replay and a resubmission answer 202.
    const mine = await read(a.token, id);
    expect(mine.status).toBe(200);
    assertMatchesReference("PendingApprovalResponse", mine.body);
    expect(mine.body).toMatchObject({ status: "pending", action: "transaction.submit", reasons: [{ rule: "cost_above_wei" }] });
    expect(mine.body.summary).toMatchObject({ chain: "local", to: DEAD.toLowerCase(), value_wei: "500000000000000000" });
    expect((await submit(a, body, { "idempotency-key": "pay-1" })).status).toBe(202);
    expect((await submit(a, { ...body, approval_id: id })).status).toBe(202);
    // Another agent cannot see it (404, as for no such approval).
    const other = await s.agent({}, 0n);
    expect((await read(other.token, id)).status).toBe(404);

    const voted = await vote(ops[0], id, "approve", mine.body.payload_hash, "known supplier");
    expect(voted.status).toBe(200);
    expect(voted.body).toMatchObject({
      status: "executed",
      current_approvals: 1,
      signatures: [{ approver_id: ops[0].id, decision: "approve", reason: "known supplier" }],
    });
    const result = voted.body.result;
    expect(result.status).toBe("broadcast");
    expect(result.to.toLowerCase()).toBe(DEAD.toLowerCase());
    const receipt = await s.dev.pub.waitForTransactionReceipt({ hash: result.tx_hash });
    expect(receipt.status).toBe("success");

    const again = await submit(a, { ...body, approval_id: id });
    const replay = await submit(a, body, { "idempotency-key": "pay-1" });
    for (const r of [again, replay]) {
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ id: result.id, tx_hash: result.tx_hash });
    }
    // A different request with this approval_id is not that approval's.
    expect((await submit(a, { value: "0.6", approval_id: id })).status).toBe(409);
    expect(await txCount(a.id)).toBe(2);
    const signed = await s.svc.ctx.pool.query(
      "SELECT count(*) FROM audit_events WHERE action = 'transaction.submit' AND resource_id = $1",
      [result.id],
    );
    expect(Number(signed.rows[0].count)).toBe(1);
    const events = await s.svc.ctx.pool.query("SELECT action, actor_id FROM audit_events WHERE resource_id = $1 ORDER BY seq", [id]);
    expect(events.rows.map((r) => r.action)).toEqual(["approval.requested", "approval.vote", "approval.decided", "approval.executed"]);
    expect(events.rows[1].actor_id).toBe(ops[0].id);
  });

  it("quorum 2: one key twice counts once, a second key completes it; a rejection ends one; expiry ends one; later votes are 409", async () => {
    const a = await s.agent({}, 0n);
    await setRules(a, { everything: true, quorum: 2 });
    const held = await submit(a, { value: "0.001" });
    expect(held.status).toBe(202);
    expect(held.body.required_approvals).toBe(2);
    const id = held.body.pending_approval_id;
    const hash = (await read(s.op, id)).body.payload_hash;

    // A vote bound to another payload does not count.
    expect((await vote(ops[0], id, "approve", "0x" + "0".repeat(64))).status).toBe(409);
    expect((await vote(ops[0], id, "approve", hash)).body).toMatchObject({ status: "pending", current_approvals: 1 });
    expect((await vote(ops[0], id, "approve", hash)).body).toMatchObject({ status: "pending", current_approvals: 1 });
    expect(await txCount(a.id)).toBe(0);
    const done = await vote(ops[1], id, "approve", hash);
    expect(done.body).toMatchObject({ status: "executed", current_approvals: 2 });
    expect(done.body.signatures.map((v: { approver_id: string }) => v.approver_id)).toEqual([ops[0].id, ops[1].id]);
    expect(await txCount(a.id)).toBe(1);
    expect((await vote(ops[2], id, "approve", hash)).status).toBe(409);

    // Rejected by any key: ended, nothing signed, the agent's resubmission is a 409.
    const r2 = await submit(a, { value: "0.002" });
    const id2 = r2.body.pending_approval_id;
    const hash2 = (await read(s.op, id2)).body.payload_hash;
    expect((await vote(ops[0], id2, "approve", hash2)).body.current_approvals).toBe(1);
    expect((await vote(ops[1], id2, "reject", hash2, "not ours")).body).toMatchObject({ status: "rejected" });
    expect((await vote(ops[2], id2, "approve", hash2)).status).toBe(409);
    expect((await submit(a, { value: "0.002", approval_id: id2 })).status).toBe(409);
    expect(await txCount(a.id)).toBe(1);

    // Expiry (a 1 s expiry): votes after it are 409, nothing signed.
    await setRules(a, { everything: true, quorum: 2, expiry_seconds: 1 });
    const r3 = await submit(a, { value: "0.003" });
    const id3 = r3.body.pending_approval_id;
    const hash3 = (await read(s.op, id3)).body.payload_hash;
    await new Promise((r) => setTimeout(r, 1200));
    expect((await read(a.token, id3)).body.status).toBe("expired");
    const late = await vote(ops[0], id3, "approve", hash3);
    expect(late.status).toBe(409);
    expect(late.body.code ?? late.body.type).toBeDefined();
    expect((await submit(a, { value: "0.003", approval_id: id3 })).status).toBe(409);
    expect(await txCount(a.id)).toBe(1);
    const expired = await s.svc.ctx.pool.query("SELECT count(*) FROM audit_events WHERE action = 'approval.expired' AND resource_id = $1", [
      id3,
    ]);
    expect(Number(expired.rows[0].count)).toBe(1);

    // Operators list by agent and status.
    const list = await call(s.svc.app, "GET", `/v1/pending-approvals?agent_id=${a.id}&status=rejected`, { token: s.op });
    expect(list.status).toBe(200);
    assertMatchesReference("PendingApprovalListResponse", list.body);
    expect(list.body.pending_approvals.map((p: { id: string }) => p.id)).toEqual([id2]);
    // Agents may not vote.
    expect(
      (
        await call(s.svc.app, "POST", `/v1/pending-approvals/${id2}/approve`, {
          token: a.token,
          body: { decision: "approve", payload_hash: hash2 },
        })
      ).status,
    ).toBe(403);
  });

  it("an approval whose daily budget was used up meanwhile ends failed, with the reason, and nothing is signed", async () => {
    const a = await s.agent({ tx_daily_limit_eth: "1" }, 0n);
    await setRules(a, { cost_above_wei: (5n * 10n ** 17n).toString() });
    const held = await submit(a, { value: "0.8" });
    expect(held.status).toBe(202);
    const id = held.body.pending_approval_id;
    // Meanwhile the agent spends within its limits (below the approval threshold).
    expect((await submit(a, { value: "0.3" })).status).toBe(201);
    expect((await submit(a, { value: "0.3" })).status).toBe(201);
    const hash = (await read(s.op, id)).body.payload_hash;
    const voted = await vote(ops[0], id, "approve", hash);
    expect(voted.body.status).toBe("failed");
    expect(voted.body.failure_reason).toMatch(/daily_limit_exceeded|daily limit/);
    expect(await txCount(a.id)).toBe(2);
    const resub = await submit(a, { value: "0.8", approval_id: id });
    expect(resub.status).toBe(409);
    expect(resub.body.detail).toMatch(/failed/);
  });

  it("x402: a payment signature to a new payee waits (202), is approved, and the signature is returned and settles on chain", async () => {
    const a = await s.agent({ tx_to_allowlist: [PAYEE] });
    await setRules(a, { allowlist_miss: true });
    const soon = (await s.now()) + 600n;
    const td = transferWithAuthorization(s.token, a.address, NEW_PAYEE, 2n * UNIT, soon, keccak256(toHex(`pay-${Math.random()}`)));
    // Without the rule it is a denial.
    const b = await s.agent({ tx_to_allowlist: [PAYEE] });
    const td2 = transferWithAuthorization(s.token, b.address, NEW_PAYEE, UNIT, soon, keccak256(toHex(`pay-${Math.random()}`)));
    expect((await s.sign(b, { intent_type: "typed_data", typed_data: td2 })).status).toBe(403);

    const held = await s.sign(a, { intent_type: "typed_data", typed_data: td }, { "idempotency-key": "x402-1" });
    expect(held.status).toBe(202);
    const id = held.body.pending_approval_id;
    const seen = await read(s.op, id);
    expect(seen.body).toMatchObject({ action: "sign_intent", reasons: [{ rule: "allowlist_miss" }] });
    expect(seen.body.summary.meaning.transfers).toEqual([
      { token: s.token.toLowerCase(), recipient: NEW_PAYEE.toLowerCase(), amount: "2000000" },
    ]);
    expect(Number((await s.svc.ctx.pool.query("SELECT count(*) FROM signatures WHERE agent_id = $1", [a.id])).rows[0].count)).toBe(0);

    const voted = await vote(ops[2], id, "approve", seen.body.payload_hash);
    expect(voted.body.status).toBe("executed");
    const resub = await s.sign(a, { intent_type: "typed_data", typed_data: td, approval_id: id });
    expect(resub.status).toBe(200);
    assertMatchesReference("SignIntentResponse", resub.body);
    expect(await recoverTypedDataAddress({ ...(td as any), signature: resub.body.signature })).toBe(a.address);
    const replay = await s.sign(a, { intent_type: "typed_data", typed_data: td }, { "idempotency-key": "x402-1" });
    expect(replay.body.signature).toBe(resub.body.signature);
    expect(Number((await s.svc.ctx.pool.query("SELECT count(*) FROM signatures WHERE agent_id = $1", [a.id])).rows[0].count)).toBe(1);

    await s.redeem(td, resub.body.signature as Hex);
    expect(await s.balance(NEW_PAYEE)).toBe(2n * UNIT);
    // The approval allowed that payee for that one signature only: the allowlist is unchanged.
    const again = transferWithAuthorization(s.token, a.address, NEW_PAYEE, UNIT, soon, keccak256(toHex(`pay-${Math.random()}`)));
    expect((await s.sign(a, { intent_type: "typed_data", typed_data: again })).status).toBe(202);
  });

  it("webhooks: approval.requested, approval.decided, approval.executed, approval.expired; metrics: pending count and time to decision", async () => {
    const got: Array<{ type: string; data: Record<string, unknown> }> = [];
    const server = http.createServer((req, res) => {
      let raw = "";
      req.on("data", (c) => (raw += c));
      req.on("end", () => {
        got.push(JSON.parse(raw));
        res.writeHead(200).end("ok");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
      const hook = await call(s.svc.app, "POST", "/v1/webhooks", {
        token: s.op,
        body: { url, events: ["approval.requested", "approval.decided", "approval.executed", "approval.expired"] },
      });
      expect(hook.status, hook.raw).toBe(201);
      const a = await s.agent({}, 0n);
      await setRules(a, { everything: true });
      const id = (await submit(a, { value: "0.001" })).body.pending_approval_id;
      await setRules(a, { everything: true, expiry_seconds: 1 });
      const id2 = (await submit(a, { value: "0.002" })).body.pending_approval_id;
      const metricsBefore = (await call(s.svc.app, "GET", "/metrics", { token: s.op })).raw;
      await vote(ops[0], id, "approve", (await read(s.op, id)).body.payload_hash);
      const deadline = Date.now() + 20_000;
      const types = (pid: string) =>
        got
          .filter((g) => g.data?.pending_approval_id === pid)
          .map((g) => g.type)
          .sort();
      while ((types(id).length < 3 || types(id2).length < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(types(id)).toEqual(["approval.decided", "approval.executed", "approval.requested"]);
      expect(types(id2)).toEqual(["approval.expired", "approval.requested"]);
      const executed = got.find((g) => g.type === "approval.executed" && g.data.pending_approval_id === id)!;
      expect(executed.data).toMatchObject({ agent_id: a.id, status: "executed" });
      expect(metricsBefore).toMatch(/intents_approvals_pending \d+/);
      const metrics = (await call(s.svc.app, "GET", "/metrics", { token: s.op })).raw;
      expect(metrics).toMatch(/intents_approval_decision_seconds_count\{outcome="approved"\} [1-9]/);
      expect(metrics).toMatch(/intents_approval_decision_seconds_count\{outcome="expired"\} [1-9]/);
    } finally {
      server.close();
    }
  }, 60_000);

  it("token amounts above a threshold, typed-data kinds and sign-only transaction intents wait; approved, each gives its own answer shape", async () => {
    const a = await s.agent({}, 100n);
    await setRules(a, { token_amount_above: { [s.token]: (3n * UNIT).toString() }, typed_data_kinds: ["permit"] });
    const transfer = (units: bigint) => encodeFunctionData({ abi: IntentToken.abi, functionName: "transfer", args: [PAYEE, units * UNIT] });
    expect((await submit(a, { to: s.token, value: "0", data: transfer(3n) })).status).toBe(201);
    const held = await submit(a, { to: s.token, value: "0", data: transfer(5n) });
    expect(held.status).toBe(202);
    const seen = await read(s.op, held.body.pending_approval_id);
    expect(seen.body.reasons).toEqual([{ rule: "token_amount_above", detail: expect.stringContaining("5000000") }]);
    expect(seen.body.summary.tokens).toEqual([{ token: s.token.toLowerCase(), amount: "5000000" }]);
    const before = await s.balance(PAYEE);
    const done = await vote(ops[0], held.body.pending_approval_id, "approve", seen.body.payload_hash);
    expect(done.body.status).toBe("executed");
    await s.dev.pub.waitForTransactionReceipt({ hash: done.body.result.tx_hash });
    expect((await s.balance(PAYEE)) - before).toBe(5n * UNIT);

    // A permit (typed data kind) waits; a payment authorization (another kind) does not.
    const deadline = (await s.now()) + 600n;
    const p = await s.sign(a, { intent_type: "typed_data", typed_data: permit(s.token, a.address, PAYEE, UNIT, 0n, deadline) });
    expect(p.status).toBe(202);
    const pay = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: transferWithAuthorization(s.token, a.address, PAYEE, UNIT, deadline, keccak256(toHex(`p-${Math.random()}`))),
    });
    expect(pay.status).toBe(200);

    // A transaction signing intent (sign_only) under probation: 202, then the SignIntentResponse with signed_tx.
    await setRules(a, { everything: true });
    const body = { intent_type: "transaction", to: DEAD, value: "0.001", sign_only: true };
    const t = await s.sign(a, body, { "idempotency-key": "sign-tx-1" });
    expect(t.status).toBe(202);
    const tSeen = await read(s.op, t.body.pending_approval_id);
    expect(tSeen.body.action).toBe("sign_intent");
    expect((await vote(ops[1], t.body.pending_approval_id, "approve", tSeen.body.payload_hash)).body.status).toBe("executed");
    const out = await s.sign(a, { ...body, approval_id: t.body.pending_approval_id });
    expect(out.status).toBe(200);
    assertMatchesReference("SignIntentResponse", out.body);
    expect(out.body).toMatchObject({ intent_type: "transaction", status: "sign_only" });
    expect(out.body.signed_tx).toMatch(/^0x/);
    const replay = await s.sign(a, body, { "idempotency-key": "sign-tx-1" });
    expect(replay.body).toEqual(out.body);
  });

  it("EIP-7702: a delegate outside the allowlist waits under allowlist_miss; approved, the account is delegated for that transaction only", async () => {
    const a = await s.agent({}, 0n);
    await setRules(a, { allowlist_miss: true, eip7702: true });
    const ping = encodeFunctionData({
      abi: [{ type: "function", name: "ping", inputs: [], outputs: [], stateMutability: "nonpayable" }],
      functionName: "ping",
    });
    const body = {
      intent_type: "transaction",
      tx_type: 4,
      to: a.address,
      value: "0",
      data: ping,
      authorization_list: [{ address: s.delegate }],
    };
    const held = await s.sign(a, body);
    expect(held.status).toBe(202);
    const seen = await read(s.op, held.body.pending_approval_id);
    expect(seen.body.reasons.map((r: { rule: string }) => r.rule).sort()).toEqual(["allowlist_miss", "eip7702"]);
    expect(seen.body.summary.authorizations).toEqual([{ delegate: s.delegate.toLowerCase() }]);
    const done = await vote(ops[0], held.body.pending_approval_id, "approve", seen.body.payload_hash);
    expect(done.body.status, JSON.stringify(done.body)).toBe("executed");
    expect(done.body.result.tx_type).toBe(4);
    await s.dev.pub.waitForTransactionReceipt({ hash: done.body.result.tx_hash });
    expect((await s.dev.pub.getCode({ address: a.address }))?.toLowerCase()).toBe(("0xef0100" + s.delegate.slice(2)).toLowerCase());
    // The agent's delegate allowlist is unchanged: the next one waits again.
    expect((await s.sign(a, body)).status).toBe(202);
  });

  it("an agent's waiting approvals are bounded (max_pending): concurrent requests past it are 429, nothing stored", async () => {
    const a = await s.agent({}, 0n);
    await setRules(a, { everything: true, max_pending: 3 });
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => submit(a, { value: `0.00${i + 1}` })));
    expect(rs.filter((r) => r.status === 202)).toHaveLength(3);
    const refused = rs.filter((r) => r.status === 429);
    expect(refused).toHaveLength(5);
    expect(refused[0].body.code ?? refused[0].body.type).toBeDefined();
    expect(refused[0].headers["retry-after"]).toBeDefined();
    expect(Number((await s.svc.ctx.pool.query("SELECT count(*) FROM pending_approvals WHERE agent_id = $1", [a.id])).rows[0].count)).toBe(
      3,
    );
  });

  it("approval rules are validated and set by operators only", async () => {
    const a = await s.agent({}, 0n);
    expect((await setRules(a, { quorum: 0 })).status).toBe(400);
    expect((await setRules(a, { cost_above_wei: "-1" })).status).toBe(400);
    expect((await setRules(a, { surprise: true })).status).toBe(400);
    expect(
      (
        await call(s.svc.app, "PUT", `/v1/agents/${a.id}/approval-rules`, {
          token: a.token,
          body: { approval_rules: { everything: true } },
        })
      ).status,
    ).toBe(403);
    expect((await setRules(a, { everything: true })).status).toBe(200);
    expect((await call(s.svc.app, "GET", `/v1/agents/${a.id}/approval-rules`, { token: a.token })).body.approval_rules).toEqual({
      everything: true,
    });
    expect((await setRules(a, null)).status).toBe(200);
    expect((await submit(a, { value: "0" })).status).toBe(201);
  });
});
