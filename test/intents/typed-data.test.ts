// Typed-data signing intents against the real stack: x402 payments (EIP-3009), EIP-2612 permits and
// Permit2, each settled on anvil by a "facilitator" (the test's dev account) with the signature the
// service produced; and the attacks: payees and spenders not allowlisted, amounts past the daily token
// limit, 20 parallel payments against a limit of 10, unlimited approvals, look-alike types, wrong
// chains, long validity windows.
import { hexToSignature, keccak256, parseSignature, recoverTypedDataAddress, toHex, type Address, type Hex } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { IntentToken, MiniPermit2 } from "../contracts/intents.js";
import { call } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { PERMIT2, permit, permitSingle, permitTransferFrom, transferWithAuthorization, UNIT, useIntentStack } from "./helpers.js";

const PAYEE = "0x00000000000000000000000000000000000a11ce" as Address;
const ATTACKER = "0x000000000000000000000000000000000000bad1" as Address;
const SECP256K1_HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
const nonce = (i: number | string) => keccak256(toHex(`payment-${i}-${Math.random()}`));

describe("typed data: payments and permits under the token guardrails", () => {
  const s = useIntentStack();
  let facilitator: Address;
  beforeAll(() => {
    facilitator = s.dev.account.address;
  });

  const soon = async () => (await s.now()) + 600n;

  it("x402: a payment to an allowlisted payee is signed, settled on chain by a facilitator, and audited with its meaning", async () => {
    const a = await s.agent({ tx_to_allowlist: [PAYEE], tx_token_limits: { [s.token]: { daily_limit: "10" } } });
    const td = transferWithAuthorization(s.token, a.address, PAYEE, 2n * UNIT, await soon(), nonce(1));
    const r = await s.sign(a, { intent_type: "typed_data", typed_data: td });
    expect(r.status).toBe(200);
    assertMatchesReference("SignIntentResponse", r.body);
    expect(r.body).toMatchObject({ intent_type: "typed_data", chain: "local", from: a.address, kind: "transfer_with_authorization" });
    expect(await recoverTypedDataAddress({ ...(td as any), signature: r.body.signature })).toBe(a.address);
    expect(BigInt(parseSignature(r.body.signature).s)).toBeLessThanOrEqual(SECP256K1_HALF_N);

    const m = td.message;
    await s.redeem(td, r.body.signature as Hex);
    expect(await s.balance(PAYEE)).toBe(2n * UNIT);

    const audit = await s.svc.ctx.pool.query("SELECT details FROM audit_events WHERE action = 'signature.create' AND resource_id = $1", [
      r.body.id,
    ]);
    expect(audit.rows[0].details).toMatchObject({
      kind: "transfer_with_authorization",
      from: a.address.toLowerCase(),
      meaning: { transfers: [{ token: s.token.toLowerCase(), recipient: PAYEE.toLowerCase(), amount: "2000000" }] },
    });
    expect(audit.rows[0].details.valid_until).toBe(new Date(Number(m.validBefore) * 1000).toISOString());
    const me = await call(s.svc.app, "GET", `/v1/agents/${a.id}`, { token: a.token });
    expect(me.body.tx_token_spent_today).toEqual({ [s.token.toLowerCase()]: "2" });
  });

  it("x402: a payee not allowlisted is refused; amounts past the daily token limit are refused; nothing is signed", async () => {
    const a = await s.agent({ tx_to_allowlist: [PAYEE], tx_token_limits: { [s.token]: { daily_limit: "10" } } });
    const stranger = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: transferWithAuthorization(s.token, a.address, ATTACKER, UNIT, await soon(), nonce(2)),
    });
    expect(stranger.status).toBe(403);
    assertMatchesReference("ProblemDetails", stranger.body);
    expect(stranger.body.guardrail).toMatchObject({ reason_code: "token_recipient_not_allowlisted", attempted: ATTACKER.toLowerCase() });
    const big = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: transferWithAuthorization(s.token, a.address, PAYEE, 11n * UNIT, await soon(), nonce(3)),
    });
    expect(big.status).toBe(403);
    expect(big.body.guardrail).toMatchObject({ reason_code: "token_daily_limit_exceeded", limit: "10", current: "0", attempted: "11" });
    // The receive-with-authorization flavour is counted the same way.
    const recv = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: transferWithAuthorization(s.token, a.address, PAYEE, 11n * UNIT, await soon(), nonce(4), "ReceiveWithAuthorization"),
    });
    expect(recv.body.guardrail?.reason_code).toBe("token_daily_limit_exceeded");
    expect((await s.svc.ctx.pool.query("SELECT count(*)::int AS n FROM signatures WHERE agent_id = $1", [a.id])).rows[0].n).toBe(0);
    const denied = await s.svc.ctx.pool.query(
      "SELECT details->>'reason_code' AS r FROM audit_events WHERE action = 'signature.denied' AND actor_id = $1 ORDER BY seq",
      [a.id],
    );
    expect(denied.rows.map((x) => x.r)).toEqual([
      "token_recipient_not_allowlisted",
      "token_daily_limit_exceeded",
      "token_daily_limit_exceeded",
    ]);
  });

  it("x402: 20 parallel payments of 1 against a daily limit of 10 sign exactly 10, and transfers share the budget", async () => {
    const a = await s.agent({ tx_token_limits: { [s.token]: { daily_limit: "10" } } });
    const deadline = await soon();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        s.sign(a, {
          intent_type: "typed_data",
          typed_data: transferWithAuthorization(s.token, a.address, PAYEE, UNIT, deadline, nonce(`p${i}`)),
        }),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(10);
    expect(results.filter((r) => r.status === 403).every((r) => r.body.guardrail.reason_code === "token_daily_limit_exceeded")).toBe(true);
    expect((await s.svc.ctx.pool.query("SELECT count(*)::int AS n FROM signatures WHERE agent_id = $1", [a.id])).rows[0].n).toBe(10);
    // The same budget holds for an ERC-20 transfer sent as a transaction.
    const data = `0xa9059cbb${PAYEE.slice(2).padStart(64, "0")}${UNIT.toString(16).padStart(64, "0")}` as Hex;
    const tx = await call(s.svc.app, "POST", `/v1/agents/${a.id}/transactions`, {
      token: a.token,
      body: { to: s.token, value: "0", chain: "local", data },
    });
    expect(tx.status).toBe(403);
    expect(tx.body.guardrail).toMatchObject({ reason_code: "token_daily_limit_exceeded", current: "10" });
  });

  it("payment signatures and token transfers in parallel share one budget under one lock: 10 + 10 against a limit of 10 sign exactly 10", async () => {
    const a = await s.agent({ tx_token_limits: { [s.token]: { daily_limit: "10" } } });
    const deadline = await soon();
    const data = `0xa9059cbb${PAYEE.slice(2).padStart(64, "0")}${UNIT.toString(16).padStart(64, "0")}` as Hex;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0
          ? s.sign(a, {
              intent_type: "typed_data",
              typed_data: transferWithAuthorization(s.token, a.address, PAYEE, UNIT, deadline, nonce(`m${i}`)),
            })
          : call(s.svc.app, "POST", `/v1/agents/${a.id}/transactions`, {
              token: a.token,
              body: { to: s.token, value: "0", chain: "local", data },
            }),
      ),
    );
    expect(results.filter((r) => r.status === 200 || r.status === 201)).toHaveLength(10);
    expect(results.filter((r) => r.status === 403).every((r) => r.body.guardrail.reason_code === "token_daily_limit_exceeded")).toBe(true);
    const spent = await s.svc.ctx.pool.query("SELECT sum(amount)::text AS n FROM token_spend WHERE agent_id = $1", [a.id]);
    expect(spent.rows[0].n).toBe((10n * UNIT).toString());
  });

  it("where no token limit applies, allowlists alone decide: no chain read (not even of decimals) is needed", async () => {
    const a = await s.agent({ tx_to_allowlist: [PAYEE] }, 0n);
    const noCode = "0x00000000000000000000000000000000000c0de0" as Address;
    const r = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: transferWithAuthorization(noCode, a.address, PAYEE, 5n * UNIT, await soon(), nonce("nc")),
    });
    expect(r.status).toBe(200);
    expect(
      (await s.svc.ctx.pool.query("SELECT count(*)::int AS n FROM token_metadata WHERE address = $1", [noCode.toLowerCase()])).rows[0].n,
    ).toBe(0);
  });

  it("an Idempotency-Key replays the same signature and counts it once", async () => {
    const a = await s.agent({ tx_token_limits: { [s.token]: { daily_limit: "10" } } });
    const body = {
      intent_type: "typed_data",
      typed_data: transferWithAuthorization(s.token, a.address, PAYEE, 3n * UNIT, await soon(), nonce("idem")),
    };
    const [r1, r2] = await Promise.all([s.sign(a, body, { "idempotency-key": "pay-1" }), s.sign(a, body, { "idempotency-key": "pay-1" })]);
    const ok = [r1, r2].filter((r) => r.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    const r3 = await s.sign(a, body, { "idempotency-key": "pay-1" });
    expect(r3.status).toBe(200);
    expect(r3.raw).toBe(ok[0].raw);
    expect((await s.svc.ctx.pool.query("SELECT count(*)::int AS n FROM signatures WHERE agent_id = $1", [a.id])).rows[0].n).toBe(1);
    const changed = await s.sign(a, { ...body, chain: "31337" }, { "idempotency-key": "pay-1" });
    expect(changed.status).toBe(422);
  });

  it("EIP-2612: a permit to a spender not allowlisted is refused; within the cap it is signed and permit + transferFrom succeed; unlimited only for allowlisted spenders", async () => {
    const a = await s.agent({ tx_to_allowlist: [facilitator], tx_token_limits: { [s.token]: { approval_cap: "100" } } });
    const deadline = await soon();
    const stranger = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: permit(s.token, a.address, ATTACKER, 5n * UNIT, 0n, deadline),
    });
    expect(stranger.body.guardrail).toMatchObject({ reason_code: "spender_not_allowlisted", attempted: ATTACKER.toLowerCase() });
    const overCap = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: permit(s.token, a.address, facilitator, 101n * UNIT, 0n, deadline),
    });
    expect(overCap.body.guardrail).toMatchObject({ reason_code: "approval_cap_exceeded", limit: "100" });
    const unlimited = permit(s.token, a.address, facilitator, (1n << 256n) - 1n, 0n, deadline);
    expect((await s.sign(a, { intent_type: "typed_data", typed_data: unlimited })).body.guardrail.reason_code).toBe("unlimited_approval");
    // Someone else's permit: the owner must be the signing key.
    const other = await s.sign(a, { intent_type: "typed_data", typed_data: permit(s.token, PAYEE, facilitator, UNIT, 0n, deadline) });
    expect(other.body.guardrail.reason_code).toBe("typed_data_owner_mismatch");

    const ok = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: permit(s.token, a.address, facilitator, 40n * UNIT, 0n, deadline),
    });
    expect(ok.status).toBe(200);
    expect(ok.body.kind).toBe("permit");
    const sig = hexToSignature(ok.body.signature as Hex);
    await s.dev.send(s.token, IntentToken.abi, "permit", [a.address, facilitator, 40n * UNIT, deadline, Number(sig.v), sig.r, sig.s]);
    await s.dev.send(s.token, IntentToken.abi, "transferFrom", [a.address, PAYEE, 40n * UNIT]);

    await call(s.svc.app, "PATCH", `/v1/agents/${a.id}`, { token: s.op, body: { tx_unlimited_approval_allowlist: [facilitator] } });
    const a2 = { ...a };
    const allowed = await s.sign(a2, {
      intent_type: "typed_data",
      typed_data: permit(s.token, a.address, facilitator, (1n << 256n) - 1n, 1n, deadline),
    });
    expect(allowed.status).toBe(200);
  });

  it("Permit2: PermitSingle to a spender not allowlisted is refused; within the cap permit + transferFrom succeed through Permit2; unlimited (2^160-1) only for allowlisted spenders; PermitTransferFrom counts in the budget", async () => {
    const a = await s.agent({ tx_to_allowlist: [facilitator], tx_token_limits: { [s.token]: { approval_cap: "50", daily_limit: "60" } } });
    // The key approves Permit2 on the token once (as wallets do), here straight on anvil.
    await s.dev.pub.request({ method: "anvil_impersonateAccount" as never, params: [a.address] as never });
    const approveHash = await s.dev.pub.request({
      method: "eth_sendTransaction" as never,
      params: [{ from: a.address, to: s.token, data: `0x095ea7b3${PERMIT2.slice(2).padStart(64, "0")}${"f".repeat(64)}` }] as never,
    });
    await s.dev.pub.waitForTransactionReceipt({ hash: approveHash as Hex });
    const deadline = await soon();
    const stranger = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: permitSingle(s.token, ATTACKER, 5n * UNIT, deadline, 0n, deadline),
    });
    expect(stranger.body.guardrail).toMatchObject({ reason_code: "spender_not_allowlisted" });
    const unlimited = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: permitSingle(s.token, facilitator, (1n << 160n) - 1n, deadline, 0n, deadline),
    });
    expect(unlimited.body.guardrail.reason_code).toBe("unlimited_approval");
    const longLived = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: permitSingle(s.token, facilitator, UNIT, deadline + 86_400n * 30n, 0n, deadline),
    });
    expect(longLived.body.guardrail).toMatchObject({ reason_code: "validity_too_long", limit: 3600 });

    const td = permitSingle(s.token, facilitator, 30n * UNIT, deadline, 0n, deadline);
    const ok = await s.sign(a, { intent_type: "typed_data", typed_data: td });
    expect(ok.status).toBe(200);
    expect(ok.body.kind).toBe("permit2_single");
    expect(await recoverTypedDataAddress({ ...(td as any), signature: ok.body.signature })).toBe(a.address);
    const permitSingleArg = {
      details: { token: s.token, amount: 30n * UNIT, expiration: Number(deadline), nonce: 0 },
      spender: facilitator,
      sigDeadline: deadline,
    };
    await s.dev.send(PERMIT2, MiniPermit2.abi, "permit", [a.address, permitSingleArg, ok.body.signature]);
    const before = await s.balance(PAYEE);
    await s.dev.send(PERMIT2, MiniPermit2.abi, "transferFrom", [a.address, PAYEE, 30n * UNIT, s.token]);
    expect((await s.balance(PAYEE)) - before).toBe(30n * UNIT);

    // 30 of 60 used by the permit: a signature transfer of 40 does not fit, one of 30 does and settles.
    const tooMuch = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: permitTransferFrom(s.token, facilitator, 40n * UNIT, 7n, deadline),
    });
    expect(tooMuch.body.guardrail).toMatchObject({ reason_code: "token_daily_limit_exceeded", current: "30" });
    const transfer = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: permitTransferFrom(s.token, facilitator, 30n * UNIT, 7n, deadline),
    });
    expect(transfer.status).toBe(200);
    await s.dev.send(PERMIT2, MiniPermit2.abi, "permitTransferFrom", [
      { permitted: { token: s.token, amount: 30n * UNIT }, nonce: 7n, deadline },
      { to: PAYEE, requestedAmount: 30n * UNIT },
      a.address,
      transfer.body.signature,
    ]);
    expect((await s.balance(PAYEE)) - before).toBe(60n * UNIT);
  });

  it("look-alike and unknown typed data: a 'Permit' with other members is not a Permit, and is denied by default for agents with rules", async () => {
    const ruled = await s.agent({ tx_to_allowlist: [facilitator] });
    const fake = permit(s.token, ruled.address, ATTACKER, 5n * UNIT, 0n, await soon());
    fake.types.Permit = [...fake.types.Permit.slice(0, 4), { name: "expiry", type: "uint256" }];
    fake.message = { ...fake.message, expiry: fake.message.deadline } as never;
    delete (fake.message as Record<string, unknown>).deadline;
    const r = await s.sign(ruled, { intent_type: "typed_data", typed_data: fake });
    expect(r.body.guardrail).toMatchObject({ reason_code: "typed_data_unknown", attempted: "Permit" });
    // With no rules at all, unknown typed data is signed (and recorded as such); the operator may deny it.
    const free = await s.agent({}, 0n);
    const order = {
      types: {
        Order: [
          { name: "maker", type: "address" },
          { name: "amount", type: "uint256" },
        ],
      },
      primaryType: "Order",
      domain: { name: "X", chainId: 31337 },
      message: { maker: free.address, amount: "5" },
    };
    const signed = await s.sign(free, { intent_type: "typed_data", typed_data: order });
    expect(signed.status).toBe(200);
    expect(signed.body.kind).toBe("typed_data_unknown");
    await call(s.svc.app, "PATCH", `/v1/agents/${free.id}`, { token: s.op, body: { typed_data_unknown: "deny" } });
    expect((await s.sign(free, { intent_type: "typed_data", typed_data: order })).body.guardrail.reason_code).toBe("typed_data_unknown");
    // Permit2 types at another address are not Permit2.
    const notPermit2 = permitSingle(s.token, facilitator, UNIT, await soon(), 0n, await soon());
    notPermit2.domain.verifyingContract = ATTACKER;
    expect((await s.sign(ruled, { intent_type: "typed_data", typed_data: notPermit2 })).body.guardrail.reason_code).toBe(
      "typed_data_unknown",
    );
  });

  it("the domain must name this chain and an allowlisted verifying contract; malformed typed data is a 400", async () => {
    const a = await s.agent({ verifying_contract_allowlist: [s.token] });
    const td = transferWithAuthorization(s.token, a.address, PAYEE, UNIT, await soon(), nonce("c"));
    const otherChain = await s.sign(a, { intent_type: "typed_data", typed_data: { ...td, domain: { ...td.domain, chainId: 1 } } });
    expect(otherChain.body.guardrail).toMatchObject({ reason_code: "typed_data_chain_mismatch", limit: 31337, attempted: "1" });
    const { chainId: _c, ...noChain } = td.domain;
    const missing = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: { ...td, types: { [td.primaryType]: td.types[td.primaryType] }, domain: noChain },
    });
    expect(missing.body.guardrail.reason_code).toBe("typed_data_chain_mismatch");
    const elsewhere = await s.sign(a, {
      intent_type: "typed_data",
      typed_data: { ...td, domain: { ...td.domain, verifyingContract: ATTACKER } },
    });
    expect(elsewhere.body.guardrail).toMatchObject({
      reason_code: "verifying_contract_not_allowlisted",
      attempted: ATTACKER.toLowerCase(),
    });
    for (const bad of [
      { ...td, message: { ...td.message, value: 1e30 } }, // an unsafe JSON number
      { ...td, message: { ...td.message, extra: "1" } }, // a member the type does not have
      { ...td, message: { ...td.message, value: "-1" } },
      { ...td, message: { ...td.message, nonce: "0x1234" } }, // bytes32 of the wrong length
      { ...td, primaryType: "Nope" },
      { types: td.types, primaryType: td.primaryType, domain: td.domain },
    ]) {
      const r = await s.sign(a, { intent_type: "typed_data", typed_data: bad });
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      assertMatchesReference("ProblemDetails", r.body);
    }
    expect((await s.svc.ctx.pool.query("SELECT count(*)::int AS n FROM signatures WHERE agent_id = $1", [a.id])).rows[0].n).toBe(0);
  });

  it("a validity window longer than sign_max_validity_seconds is refused; the operator can raise it", async () => {
    const a = await s.agent({});
    const far = (await s.now()) + 7200n;
    const td = transferWithAuthorization(s.token, a.address, PAYEE, UNIT, far, nonce("far"));
    expect((await s.sign(a, { intent_type: "typed_data", typed_data: td })).body.guardrail).toMatchObject({
      reason_code: "validity_too_long",
      limit: 3600,
    });
    const forever = transferWithAuthorization(s.token, a.address, PAYEE, UNIT, (1n << 256n) - 1n, nonce("forever"));
    expect((await s.sign(a, { intent_type: "typed_data", typed_data: forever })).body.guardrail.reason_code).toBe("validity_too_long");
    await call(s.svc.app, "PATCH", `/v1/agents/${a.id}`, { token: s.op, body: { sign_max_validity_seconds: 86_400 } });
    expect((await s.sign(a, { intent_type: "typed_data", typed_data: td })).status).toBe(200);
  });
});
