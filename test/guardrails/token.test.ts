// Guardrails that read calldata and simulation, against a token deployed on anvil: a token transfer
// cannot bypass the recipient allowlist or the limits.
import { encodeFunctionData, type Address, type Hex } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { Router, TestToken } from "../contracts/index.js";
import { call, type TestAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useTokenStack, type DevClients } from "../helpers/token-stack.js";

const ALICE = "0x00000000000000000000000000000000000a11ce" as Address;
const ATTACKER = "0x000000000000000000000000000000000000bad1" as Address;
const UNIT = 10n ** 6n; // the test token has 6 decimals

describe("token guardrails", () => {
  const stack = useTokenStack();
  const { svc, op, agentWithTokens } = stack;
  let dev: DevClients, token: Address, router: Address;
  beforeAll(() => ({ dev, token, router } = stack));

  const submit = (a: TestAgent, to: Address, data: Hex, extra: Record<string, unknown> = {}) =>
    call(svc.app, "POST", `/v1/agents/${a.id}/transactions`, { token: a.token, body: { to, value: "0", chain: "local", data, ...extra } });
  const transfer = (to: Address, amount: bigint) =>
    encodeFunctionData({ abi: TestToken.abi, functionName: "transfer", args: [to, amount] });
  const approve = (spender: Address, amount: bigint) =>
    encodeFunctionData({ abi: TestToken.abi, functionName: "approve", args: [spender, amount] });

  it("the USDC-style bypass is denied: the token is allowlisted, the recipient is not", async () => {
    const a = await agentWithTokens({ tx_daily_limit: "1", tx_to_allowlist: [token, ALICE] });
    const bypass = await submit(a, token, transfer(ATTACKER, 1_000_000n * UNIT));
    expect(bypass.status).toBe(403);
    assertMatchesReference("ProblemDetails", bypass.body);
    expect(bypass.body.guardrail).toMatchObject({ reason_code: "token_recipient_not_allowlisted", attempted: ATTACKER.toLowerCase() });
    const denied = await svc.ctx.pool.query("SELECT details FROM audit_events WHERE action = 'transaction.denied' AND actor_id = $1", [
      a.id,
    ]);
    expect(denied.rows.map((r) => r.details.reason_code)).toEqual(["token_recipient_not_allowlisted"]);

    const ok = await submit(a, token, transfer(ALICE, 5n * UNIT));
    expect(ok.status).toBe(201);
    await dev.pub.waitForTransactionReceipt({ hash: ok.body.tx_hash });
    expect(await dev.pub.readContract({ address: token, abi: TestToken.abi, functionName: "balanceOf", args: [ALICE] })).toBe(5n * UNIT);
  });

  it("a per-token daily limit holds under 20 parallel transfers, and spend shows per token", async () => {
    const a = await agentWithTokens({ tx_token_limits: { [token]: { daily_limit: "10" } } });
    const results = await Promise.all(Array.from({ length: 20 }, () => submit(a, token, transfer(ALICE, 1n * UNIT))));
    expect(results.filter((r) => r.status === 201)).toHaveLength(10);
    const denied = results.filter((r) => r.status === 403);
    expect(denied).toHaveLength(10);
    for (const d of denied)
      expect(d.body.guardrail).toMatchObject({ reason_code: "token_daily_limit_exceeded", limit: "10", current: "10", attempted: "1" });
    const me = await call(svc.app, "GET", `/v1/agents/${a.id}`, { token: a.token });
    expect(me.body.tx_token_spent_today).toEqual({ [token.toLowerCase()]: "10" });
  });

  it("per-transaction token limit: equal passes, one base unit over fails", async () => {
    const a = await agentWithTokens({ tx_token_limits: { [token]: { max_per_tx: "2.5" } } });
    expect((await submit(a, token, transfer(ALICE, 2_500_000n))).status).toBe(201);
    const over = await submit(a, token, transfer(ALICE, 2_500_001n));
    expect(over.status).toBe(403);
    expect(over.body.guardrail).toMatchObject({ reason_code: "token_max_per_tx_exceeded", limit: "2.5", attempted: "2.500001" });
  });

  it("an unlimited approve is denied; a bounded approve within the cap passes; allowed spenders may get more", async () => {
    const a = await agentWithTokens({ tx_token_limits: { [token]: { approval_cap: "100" } } });
    const unlimited = await submit(a, token, approve(router, (1n << 256n) - 1n));
    expect(unlimited.status).toBe(403);
    expect(unlimited.body.guardrail.reason_code).toBe("unlimited_approval");
    const overCap = await submit(a, token, approve(router, 100n * UNIT + 1n));
    expect(overCap.body.guardrail.reason_code).toBe("approval_cap_exceeded");
    expect((await submit(a, token, approve(router, 100n * UNIT))).status).toBe(201);
    await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body: { tx_unlimited_approval_allowlist: [router] } });
    expect((await submit(a, token, approve(router, (1n << 256n) - 1n))).status).toBe(201);
  });

  it("a router that moves tokens is caught by the simulation-based outflow limit, not by the decoder", async () => {
    const limits = { [token]: { max_per_tx: "5", daily_limit: "5" } };
    const sweep = (amount: bigint) => encodeFunctionData({ abi: Router.abi, functionName: "sweep", args: [token, ATTACKER, amount] });

    // Without simulation the router's calldata is opaque: the decoder sees no token movement.
    const blind = await agentWithTokens({ tx_token_limits: limits, tx_unknown_calldata: "allow" });
    const approved = await submit(blind, token, approve(router, 50n * UNIT));
    expect(approved.status).toBe(201);
    await dev.pub.waitForTransactionReceipt({ hash: approved.body.tx_hash });
    const slipped = await submit(blind, router, sweep(50n * UNIT));
    expect(slipped.status).toBe(201);

    // With unknown calldata simulated, the real balance change of the signing address counts.
    const guarded = await agentWithTokens({ tx_token_limits: limits, tx_unknown_calldata: "simulate" });
    const ok = await submit(guarded, token, approve(router, 50n * UNIT));
    await dev.pub.waitForTransactionReceipt({ hash: ok.body.tx_hash });
    const caught = await submit(guarded, router, sweep(50n * UNIT));
    expect(caught.status).toBe(403);
    expect(caught.body.guardrail).toMatchObject({ reason_code: "token_max_per_tx_exceeded", limit: "5", attempted: "50" });
    const small = await submit(guarded, router, sweep(3n * UNIT));
    expect(small.status).toBe(201);
    expect(small.body.simulation_status).toBe("success");
    await dev.pub.waitForTransactionReceipt({ hash: small.body.tx_hash });
    // The daily limit sees the router's earlier outflow too.
    const second = await submit(guarded, router, sweep(3n * UNIT));
    expect(second.status).toBe(403);
    expect(second.body.guardrail).toMatchObject({ reason_code: "token_daily_limit_exceeded", current: "3" });
    const deny = await agentWithTokens({ tx_unknown_calldata: "deny" });
    expect((await submit(deny, router, sweep(1n))).body.guardrail.reason_code).toBe("unknown_calldata");
  });
});
