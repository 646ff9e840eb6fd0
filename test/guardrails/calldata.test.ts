// Calldata that goes around the recipient and approval rules, performed against the real stack (a token
// deployed on anvil, SoftHSM, Postgres): with the token and one spender allowlisted and the attacker not,
// each token family's way of paying or empowering the attacker is refused, and nothing is signed: no
// transaction row, the key's nonce unchanged, the attacker's balance and allowance zero.
import { createPublicClient, encodeFunctionData, http, type Address, type Hex, type PublicClient } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { PERMIT2 } from "../../src/pipeline/calldata.js";
import { tokenDecimals } from "../../src/pipeline/token-policy.js";
import { Router, TestToken } from "../contracts/index.js";
import { call, type TestAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { encodeCall, PERMIT2_CALLS, TOKEN_CALLS } from "../helpers/token-calls.js";
import { useTokenStack, type DevClients } from "../helpers/token-stack.js";

const ALICE = "0x00000000000000000000000000000000000a11ce" as Address;
const ATTACKER = "0x000000000000000000000000000000000000bad1" as Address;
const UNIT = 10n ** 6n; // the test token has 6 decimals

describe("calldata guardrails against a hostile agent", () => {
  const stack = useTokenStack();
  const { svc, op, agentWithTokens } = stack;
  let dev: DevClients, token: Address, router: Address;
  beforeAll(() => ({ dev, token, router } = stack));

  const submit = (a: TestAgent, to: Address, data: Hex) =>
    call(svc.app, "POST", `/v1/agents/${a.id}/transactions`, { token: a.token, body: { to, value: "0", chain: "local", data } });
  const allowance = (owner: Address, spender: Address) =>
    dev.pub.readContract({ address: token, abi: TestToken.abi, functionName: "allowance", args: [owner, spender] }) as Promise<bigint>;
  const balance = (holder: Address) =>
    dev.pub.readContract({ address: token, abi: TestToken.abi, functionName: "balanceOf", args: [holder] }) as Promise<bigint>;

  /** Refused with `reason`, and nothing signed: no row, the key's nonce as before. */
  async function expectRefused(a: TestAgent & { address: Address }, to: Address, data: Hex, reason: string) {
    const nonce = await dev.pub.getTransactionCount({ address: a.address, blockTag: "pending" });
    const rows = (await svc.ctx.pool.query("SELECT count(*)::int AS n FROM transactions WHERE agent_id = $1", [a.id])).rows[0].n;
    const r = await submit(a, to, data);
    expect(r.status, r.raw).toBe(403);
    assertMatchesReference("ProblemDetails", r.body);
    expect(r.body.guardrail.reason_code).toBe(reason);
    expect(r.body).not.toHaveProperty("signed_tx");
    expect((await svc.ctx.pool.query("SELECT count(*)::int AS n FROM transactions WHERE agent_id = $1", [a.id])).rows[0].n).toBe(rows);
    expect(await dev.pub.getTransactionCount({ address: a.address, blockTag: "pending" })).toBe(nonce);
  }

  it("each token family's way of paying or empowering an attacker outside the allowlist is refused", async () => {
    const a = await agentWithTokens({ tx_to_allowlist: [token, router, ALICE, PERMIT2] });
    const n = 1_000n * UNIT;
    const attacks: Array<[string, Address, Hex, string]> = [
      [
        "ERC-677/1363 transferAndCall",
        token,
        encodeCall(TOKEN_CALLS, "transferAndCall", [ATTACKER, n, "0x"]),
        "token_recipient_not_allowlisted",
      ],
      [
        "ERC-1363 transferAndCall without data",
        token,
        encodeCall(TOKEN_CALLS, "transferAndCall", [ATTACKER, n]),
        "token_recipient_not_allowlisted",
      ],
      [
        "ERC-1363 transferFromAndCall",
        token,
        encodeCall(TOKEN_CALLS, "transferFromAndCall", [a.address, ATTACKER, n, "0x"]),
        "token_recipient_not_allowlisted",
      ],
      ["ERC-777 send", token, encodeCall(TOKEN_CALLS, "send", [ATTACKER, n, "0x"]), "token_recipient_not_allowlisted"],
      [
        "ERC-777 operatorSend",
        token,
        encodeCall(TOKEN_CALLS, "operatorSend", [a.address, ATTACKER, n, "0x", "0x"]),
        "token_recipient_not_allowlisted",
      ],
      ["ERC-777 authorizeOperator", token, encodeCall(TOKEN_CALLS, "authorizeOperator", [ATTACKER]), "spender_not_allowlisted"],
      ["increaseApproval", token, encodeCall(TOKEN_CALLS, "increaseApproval", [ATTACKER, n]), "spender_not_allowlisted"],
      ["approveAndCall", token, encodeCall(TOKEN_CALLS, "approveAndCall", [ATTACKER, n, "0x"]), "spender_not_allowlisted"],
      ["setApprovalForAll", token, encodeCall(TOKEN_CALLS, "setApprovalForAll", [ATTACKER, true]), "spender_not_allowlisted"],
      [
        "EIP-2612 permit sent on chain",
        token,
        encodeCall(TOKEN_CALLS, "permit", [a.address, ATTACKER, n, 2n ** 40n, 27, "0x" + "01".repeat(32), "0x" + "02".repeat(32)]),
        "spender_not_allowlisted",
      ],
      ["Permit2 approve", PERMIT2, encodeCall(PERMIT2_CALLS, "approve", [token, ATTACKER, n, 2 ** 40]), "spender_not_allowlisted"],
      [
        "Permit2 permit",
        PERMIT2,
        encodeCall(PERMIT2_CALLS, "permit", [
          a.address,
          { details: { token, amount: n, expiration: 2 ** 40, nonce: 0 }, spender: ATTACKER, sigDeadline: 2n ** 40n },
          "0x" + "ab".repeat(65),
        ]),
        "spender_not_allowlisted",
      ],
      [
        "Permit2 batch permit",
        PERMIT2,
        encodeCall(PERMIT2_CALLS, "permit", [
          a.address,
          {
            details: [
              { token, amount: 1n, expiration: 1, nonce: 0 },
              { token, amount: n, expiration: 1, nonce: 0 },
            ],
            spender: ATTACKER,
            sigDeadline: 1n,
          },
          "0x",
        ]),
        "spender_not_allowlisted",
      ],
      [
        "Permit2 transferFrom",
        PERMIT2,
        encodeCall(PERMIT2_CALLS, "transferFrom", [a.address, ATTACKER, n, token]),
        "token_recipient_not_allowlisted",
      ],
      [
        "Permit2 batch transferFrom",
        PERMIT2,
        encodeCall(PERMIT2_CALLS, "transferFrom", [
          [
            { from: a.address, to: ALICE, amount: 1n, token },
            { from: a.address, to: ATTACKER, amount: n, token },
          ],
        ]),
        "token_recipient_not_allowlisted",
      ],
    ];
    for (const [name, to, data, reason] of attacks) {
      await expectRefused(a, to, data, reason).catch((err) => {
        throw new Error(`${name}: ${(err as Error).message}`);
      });
    }
    // The allowlisted spender passes through the same families.
    const ok = await submit(a, token, encodeCall(TOKEN_CALLS, "transferAndCall", [ALICE, 5n * UNIT, "0x"]));
    expect(ok.status, ok.raw).toBe(201);
    await dev.pub.waitForTransactionReceipt({ hash: ok.body.tx_hash });
    expect(await balance(ALICE)).toBe(5n * UNIT);
    expect(await balance(ATTACKER)).toBe(0n);
    expect(await allowance(a.address, ATTACKER)).toBe(0n);
  });

  it("non-canonical encodings are refused, not read leniently: a bool of 2, high address bits, trailing bytes", async () => {
    const a = await agentWithTokens({ tx_to_allowlist: [token, router] });
    const forAll = encodeCall(TOKEN_CALLS, "setApprovalForAll", [router, true]);
    await expectRefused(a, token, (forAll.slice(0, -2) + "02") as Hex, "malformed_calldata");
    const transfer = encodeFunctionData({ abi: TestToken.abi, functionName: "transfer", args: [router, 1n] });
    // The high bytes of the address word (kept by ABI-v1 decoders, dropped by others).
    await expectRefused(a, token, (transfer.slice(0, 10) + "ff" + transfer.slice(12)) as Hex, "malformed_calldata");
    await expectRefused(a, token, (transfer + "00") as Hex, "malformed_calldata");
    await expectRefused(a, token, (transfer + "00".repeat(32)) as Hex, "malformed_calldata");
    // Even for an agent that allows calldata it cannot decode.
    const lax = await agentWithTokens({ tx_unknown_calldata: "allow" });
    await expectRefused(lax, token, (forAll.slice(0, -2) + "02") as Hex, "malformed_calldata");
  });

  it("increaseAllowance three times cannot end above the approval cap: the current allowance is added", async () => {
    const a = await agentWithTokens({ tx_to_allowlist: [token, router], tx_token_limits: { [token]: { approval_cap: "100" } } });
    const inc = (n: bigint) => encodeCall(TOKEN_CALLS, "increaseAllowance", [router, n * UNIT]);
    const first = await submit(a, token, inc(40n));
    expect(first.status, first.raw).toBe(201);
    await dev.pub.waitForTransactionReceipt({ hash: first.body.tx_hash });
    // The second is signed but not yet mined when the third comes: it counts all the same.
    const mining = (on: boolean) => dev.pub.request({ method: "evm_setAutomine" as never, params: [on] as never });
    await mining(false);
    await dev.pub.request({ method: "evm_setIntervalMining" as never, params: [0] as never });
    let second;
    try {
      second = await submit(a, token, inc(40n));
      expect(second.status).toBe(201);
      expect(await allowance(a.address, router)).toBe(40n * UNIT); // not mined yet
      await expectRefused(a, token, inc(40n), "approval_cap_exceeded");
    } finally {
      // Back to the service's mixed mode: a block per second, and one per transaction.
      await dev.pub.request({ method: "evm_setIntervalMining" as never, params: [1] as never });
      await mining(true);
    }
    await dev.pub.request({ method: "evm_mine" as never, params: [] as never });
    await dev.pub.waitForTransactionReceipt({ hash: second.body.tx_hash });
    await expectRefused(a, token, inc(21n), "approval_cap_exceeded");
    expect(await allowance(a.address, router)).toBe(80n * UNIT);
    const last = await submit(a, token, inc(20n));
    expect(last.status).toBe(201);
    await dev.pub.waitForTransactionReceipt({ hash: last.body.tx_hash });
    expect(await allowance(a.address, router)).toBe(100n * UNIT);
    await expectRefused(a, token, inc(1n), "approval_cap_exceeded");
  });

  it("concurrent allowance increases cannot add up past the cap: 6 × 40 at once against a cap of 100, two pass", async () => {
    const a = await agentWithTokens({ tx_to_allowlist: [token, router], tx_token_limits: { [token]: { approval_cap: "100" } } });
    const inc = encodeCall(TOKEN_CALLS, "increaseAllowance", [router, 40n * UNIT]);
    const results = await Promise.all(Array.from({ length: 6 }, () => submit(a, token, inc)));
    expect(results.filter((r) => r.status === 201)).toHaveLength(2);
    const denied = results.filter((r) => r.status === 403);
    expect(denied).toHaveLength(4);
    for (const d of denied) expect(d.body.guardrail.reason_code).toBe("approval_cap_exceeded");
    for (const r of results.filter((x) => x.status === 201)) await dev.pub.waitForTransactionReceipt({ hash: r.body.tx_hash });
    expect(await allowance(a.address, router)).toBe(80n * UNIT);
    expect((await svc.ctx.pool.query("SELECT count(*)::int AS n FROM transactions WHERE agent_id = $1", [a.id])).rows[0].n).toBe(2);
  });

  it("approve(spender, 2^255−1) is unlimited, as is anything above 2^128 when there is no cap", async () => {
    const a = await agentWithTokens({ tx_to_allowlist: [token, router] });
    const approve = (n: bigint) => encodeFunctionData({ abi: TestToken.abi, functionName: "approve", args: [router, n] });
    await expectRefused(a, token, approve((1n << 255n) - 1n), "unlimited_approval");
    await expectRefused(a, token, approve((1n << 128n) + 1n), "unlimited_approval");
    expect((await submit(a, token, approve(1n << 128n))).status).toBe(201);
    const capped = await agentWithTokens({ tx_token_limits: { [token]: { approval_cap: "100" } } });
    await expectRefused(capped, token, approve((1n << 255n) - 1n), "unlimited_approval");
    await expectRefused(capped, token, approve(100n * UNIT + 1n), "approval_cap_exceeded");
  });

  it("unknown calldata is denied by default once recipient or token rules exist; an explicit setting wins", async () => {
    const sweep = encodeFunctionData({ abi: Router.abi, functionName: "sweep", args: [token, ATTACKER, 1n] });
    const ruled = await agentWithTokens({ tx_to_allowlist: [token, router] });
    const me = await call(svc.app, "GET", `/v1/agents/${ruled.id}`, { token: ruled.token });
    expect(me.body).toMatchObject({ tx_unknown_calldata: "deny", tx_unknown_calldata_default: true });
    await expectRefused(ruled, router, sweep, "unknown_calldata");
    const free = await agentWithTokens({});
    expect((await call(svc.app, "GET", `/v1/agents/${free.id}`, { token: free.token })).body.tx_unknown_calldata).toBe("allow");
    const explicit = await agentWithTokens({ tx_to_allowlist: [token, router], tx_unknown_calldata: "allow" });
    expect((await submit(explicit, router, sweep)).status).not.toBe(403);
    // null puts the default back.
    expect((await call(svc.app, "PATCH", `/v1/agents/${explicit.id}`, { token: op, body: { tx_unknown_calldata: null } })).status).toBe(
      200,
    );
    await expectRefused(explicit, router, sweep, "unknown_calldata");
  });

  it("under tx_unknown_calldata simulate, the simulated Transfer recipients and Approval spenders must be allowlisted", async () => {
    const a = await agentWithTokens({ tx_to_allowlist: [token, router, ALICE], tx_unknown_calldata: "simulate" });
    const ok = await submit(a, token, encodeFunctionData({ abi: TestToken.abi, functionName: "approve", args: [router, 50n * UNIT] }));
    expect(ok.status).toBe(201);
    await dev.pub.waitForTransactionReceipt({ hash: ok.body.tx_hash });
    const sweep = (to: Address) => encodeFunctionData({ abi: Router.abi, functionName: "sweep", args: [token, to, 1n * UNIT] });
    await expectRefused(a, router, sweep(ATTACKER), "simulated_recipient_not_allowlisted");
    // The same router call paying an allowlisted recipient passes (approvals: test/pipeline/token-guardrails.test.ts).
    const fine = await submit(a, router, sweep(ALICE));
    expect(fine.status, fine.raw).toBe(201);
    expect(fine.body.simulation_status).toBe("success");
    await dev.pub.waitForTransactionReceipt({ hash: fine.body.tx_hash });
    expect(await balance(ATTACKER)).toBe(0n);
  });

  it("a failed decimals read is an error, never a cached 0; a contract without decimals() is re-read later", async () => {
    const fresh = (await dev.deploy(TestToken, ["Fresh", "FRSH"])).toLowerCase();
    // A node that does not answer (nothing listens on port 1).
    const dead = createPublicClient({ transport: http("http://127.0.0.1:1", { retryCount: 0 }) }) as PublicClient;
    await expect(tokenDecimals(svc.ctx.pool, dead, 31337, fresh)).rejects.toMatchObject({ status: 502, code: "rpc_unavailable" });
    const live = svc.ctx.clients.get(svc.ctx.chains.resolve("local")!) as PublicClient;
    expect(await tokenDecimals(svc.ctx.pool, live, 31337, fresh)).toBe(6);
    // A contract that answers without decimals() counts raw units (0), and that answer is not kept.
    const noDecimals = router.toLowerCase();
    expect(await tokenDecimals(svc.ctx.pool, live, 31337, noDecimals)).toBe(0);
    expect((await svc.ctx.pool.query("SELECT count(*)::int AS n FROM token_metadata WHERE address = $1", [noDecimals])).rows[0].n).toBe(0);
  });
});
