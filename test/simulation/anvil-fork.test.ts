// Simulation through the API with the default simulator: an anvil fork of the service's local chain.
// The real stack (Postgres, SoftHSM, anvil); contracts from test/contracts are deployed on the chain.
import { encodeErrorResult, encodeFunctionData, getAddress, type Address, type Hex } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { formatMajor } from "../../src/units.js";
import { Failures, TestToken } from "../contracts/index.js";
import { call, createAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";
import { devClients } from "./helpers.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const RECIPIENT = "0x00000000000000000000000000000000000b0b00";

describe("simulation on an anvil fork", () => {
  const svc = useService({ agent: true });
  const { op } = svc;
  let dev: ReturnType<typeof devClients>;
  let token: Address;
  let failures: Address;
  let signer: Address;
  let spender: Address;

  beforeAll(async () => {
    dev = devClients(svc.ctx.localChainUrl!);
    signer = (await svc.ctx.signer.getKey("keys/local-signer"))!.address;
    token = await dev.deploy(TestToken, ["Test Dollar", "TUSD"]);
    failures = await dev.deploy(Failures);
    await dev.send(token, TestToken.abi, "mint", [signer, 1_000_000_000n]); // 1000 TUSD
    const k = await call(svc.app, "POST", "/v1/signing-keys", { token: op, body: { path: "keys/sim-spender" } });
    expect(k.status).toBe(201);
    spender = k.body.address;
    expect(
      (await call(svc.app, "POST", `/v1/signing-keys/${k.body.id}/grants`, { token: op, body: { agent_id: svc.agent.id } })).status,
    ).toBe(201);
    await dev.setBalance(spender, 10n ** 18n);
  });

  const simulate = (body: unknown, token_ = svc.agent.token, agentId = svc.agent.id) =>
    call(svc.app, "POST", `/v1/agents/${agentId}/transactions/simulate`, { token: token_, body });
  const bundle = (transactions: unknown[]) =>
    call(svc.app, "POST", `/v1/agents/${svc.agent.id}/transactions/simulate-bundle`, { token: svc.agent.token, body: { transactions } });
  const data = (abi: typeof Failures.abi, functionName: string, args: unknown[] = []) =>
    encodeFunctionData({ abi, functionName, args } as never);

  it("a plain ETH transfer: success, 21000 gas, the sender pays value + fee, the recipient gets the value", async () => {
    const before = await dev.pub.getBalance({ address: signer });
    const r = await simulate({ to: DEAD, value: "0.01", chain: "local" });
    expect(r.status).toBe(200);
    assertMatchesReference("SimulationResponse", r.body);
    expect(r.body).toMatchObject({ status: "success", gas_used: 21000 });
    expect(r.body.simulation_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(r.body.simulated_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(r.body.revert_reason).toBeUndefined();

    const changes = r.body.balance_changes as Array<Record<string, string>>;
    expect(changes).toHaveLength(2);
    const [s, d] = changes;
    expect(s).toMatchObject({ address: getAddress(signer), token: "ETH", token_symbol: "ETH", before: formatMajor(before) });
    expect(d).toMatchObject({ address: getAddress(DEAD), token: "ETH", token_symbol: "ETH", change: "0.01" });
    // The sender's change is the value plus gas_used × the effective gas price.
    const spent = before - parse(s!.after!);
    const fee = spent - 10n ** 16n;
    expect(fee).toBeGreaterThan(0n);
    expect(fee % 21000n).toBe(0n);
    expect(s!.change).toBe(formatMajor(-spent));
    expect(parse(d!.after!) - parse(d!.before!)).toBe(10n ** 16n);
  });

  it("an ERC-20 transfer: token changes of both sides with the token's symbol and 6 decimals", async () => {
    const r = await simulate({ to: token, value: "0", chain: "local", data: data(TestToken.abi, "transfer", [RECIPIENT, 12_345_678n]) });
    expect(r.status).toBe(200);
    assertMatchesReference("SimulationResponse", r.body);
    expect(r.body.status).toBe("success");
    const tokenChanges = (r.body.balance_changes as Array<Record<string, string>>).filter((c) => c.token !== "ETH");
    expect(tokenChanges).toEqual([
      {
        address: getAddress(signer),
        token: getAddress(token),
        token_symbol: "TUSD",
        before: "1000",
        after: "987.654322",
        change: "-12.345678",
      },
      {
        address: getAddress(RECIPIENT),
        token: getAddress(token),
        token_symbol: "TUSD",
        before: "0",
        after: "12.345678",
        change: "12.345678",
      },
    ]);
    // The fee is the sender's only ETH change.
    const eth = (r.body.balance_changes as Array<Record<string, string>>).filter((c) => c.token === "ETH");
    expect(eth).toHaveLength(1);
    expect(eth[0]!.address).toBe(getAddress(signer));
    expect(eth[0]!.change.startsWith("-0.")).toBe(true);
  });

  it("an internal ETH transfer shows on the account that received it", async () => {
    const r = await simulate({ to: failures, value: "0.5", chain: "local", data: data(Failures.abi, "forward", [RECIPIENT]) });
    expect(r.body.status).toBe("success");
    const got = (r.body.balance_changes as Array<Record<string, string>>).find((c) => c.address === getAddress(RECIPIENT));
    expect(got).toMatchObject({ token: "ETH", change: "0.5" });
  });

  it("reverts are 200 with status reverted and a decoded reason: Error(string), custom error, Panic, out of gas", async () => {
    const custom = encodeErrorResult({ abi: Failures.abi, errorName: "Unauthorized", args: [signer, 7n] } as never);
    const cases: Array<[string, Hex, string, number?]> = [
      ["reason string", data(Failures.abi, "failWithReason"), "Failures: not allowed"],
      ["custom error", data(Failures.abi, "failWithCustomError", [7n]), custom.toLowerCase()],
      ["panic", data(Failures.abi, "divide", [1n, 0n]), "Panic(0x12): division or modulo by zero"],
      ["out of gas (estimate fails)", data(Failures.abi, "burnGas"), "out of gas"],
      ["out of gas (mined with the given limit)", data(Failures.abi, "burnGas"), "out of gas", 100_000],
      ["reason string (mined with the given limit)", data(Failures.abi, "failWithReason"), "Failures: not allowed", 200_000],
    ];
    for (const [name, d, reason, gas] of cases) {
      const r = await simulate({ to: failures, value: "0", chain: "local", data: d, ...(gas ? { gas_limit: gas } : {}) });
      expect(r.status, name).toBe(200);
      assertMatchesReference("SimulationResponse", r.body);
      expect(r.body.status, name).toBe("reverted");
      expect(r.body.revert_reason, name).toBe(reason);
      expect(r.body.gas_used, name).toBeGreaterThan(21000);
      if (gas && reason === "out of gas") expect(r.body.gas_used).toBe(gas);
      if (gas) {
        // Mined in the fork: the sender paid the fee, and nothing else moved.
        expect(r.body.balance_changes).toHaveLength(1);
        expect(r.body.balance_changes[0].address).toBe(getAddress(signer));
      } else {
        expect(r.body.balance_changes).toEqual([]);
      }
    }
  });

  it("a bundle carries state: approve → transferFrom succeeds, the reverse order reverts", async () => {
    const approve = { to: token, value: "0", chain: "local", data: data(TestToken.abi, "approve", [spender, 5_000_000n]) };
    const pull = {
      to: token,
      value: "0",
      chain: "local",
      signing_key_path: "keys/sim-spender",
      data: data(TestToken.abi, "transferFrom", [signer, RECIPIENT, 5_000_000n]),
    };

    const ok = await bundle([approve, pull]);
    expect(ok.status).toBe(200);
    assertMatchesReference("BundleSimulationResponse", ok.body);
    expect(ok.body.simulations.map((s: { status: string }) => s.status)).toEqual(["success", "success"]);
    const moved = (ok.body.simulations[1].balance_changes as Array<Record<string, string>>).filter((c) => c.token !== "ETH");
    expect(moved).toEqual([
      { address: getAddress(signer), token: getAddress(token), token_symbol: "TUSD", before: "1000", after: "995", change: "-5" },
      { address: getAddress(RECIPIENT), token: getAddress(token), token_symbol: "TUSD", before: "0", after: "5", change: "5" },
    ]);
    // The spender paid the fee of the second call.
    expect(ok.body.simulations[1].balance_changes.find((c: { token: string }) => c.token === "ETH").address).toBe(getAddress(spender));

    const reversed = await bundle([pull, approve]);
    expect(reversed.status).toBe(200);
    expect(reversed.body.simulations.map((s: { status: string }) => s.status)).toEqual(["reverted", "success"]);
    expect(reversed.body.simulations[0].revert_reason).toBe("ERC20: insufficient allowance");

    // Each simulation starts from the chain's state: the approval of the first bundle is gone.
    const alone = await simulate(pull);
    expect(alone.body.status).toBe("reverted");
  });

  it("leaves the chain's own state untouched: nonce, balances, token balances, block height", async () => {
    const read = async () => ({
      block: await dev.pub.getBlockNumber(),
      nonce: await dev.pub.getTransactionCount({ address: signer, blockTag: "pending" }),
      eth: await Promise.all([signer, DEAD, RECIPIENT, spender].map((a) => dev.pub.getBalance({ address: a as Address }))),
      tok: await Promise.all(
        [signer, RECIPIENT].map((a) =>
          dev.pub.readContract({ address: token, abi: TestToken.abi, functionName: "balanceOf", args: [a] } as never),
        ),
      ),
    });
    const before = await read();
    await simulate({ to: DEAD, value: "1", chain: "local" });
    await simulate({ to: token, value: "0", chain: "local", data: data(TestToken.abi, "transfer", [RECIPIENT, 1n]) });
    await simulate({ to: failures, value: "0", chain: "local", data: data(Failures.abi, "failWithReason"), gas_limit: 100_000 });
    await bundle([
      { to: token, value: "0", chain: "local", data: data(TestToken.abi, "approve", [spender, 1n]) },
      {
        to: token,
        value: "0",
        chain: "local",
        signing_key_path: "keys/sim-spender",
        data: data(TestToken.abi, "transferFrom", [signer, RECIPIENT, 1n]),
      },
    ]);
    expect(await read()).toEqual(before);
  });

  it("sees what was mined on the chain after the fork started", async () => {
    const fresh = await dev.deploy(Failures);
    const r = await simulate({ to: fresh, value: "0", chain: "local", data: data(Failures.abi, "failWithReason") });
    expect(r.body.revert_reason).toBe("Failures: not allowed");
    await dev.send(token, TestToken.abi, "mint", [signer, 1_000_000n]);
    const t = await simulate({ to: token, value: "0", chain: "local", data: data(TestToken.abi, "transfer", [RECIPIENT, 1n]) });
    expect(
      t.body.balance_changes.find((c: { token: string; address: string }) => c.token !== "ETH" && c.address === getAddress(signer)).before,
    ).toBe("1001");
  });

  it("simulate_first on submit: a revert is 422, stored as simulation_failed, and uses no nonce", async () => {
    const expectedNonce = await dev.pub.getTransactionCount({ address: signer, blockTag: "pending" });
    const body = { to: failures, value: "0", chain: "local", data: data(Failures.abi, "failWithReason"), simulate_first: true };
    const r = await call(svc.app, "POST", `/v1/agents/${svc.agent.id}/transactions`, {
      token: svc.agent.token,
      body,
      headers: { "idempotency-key": "sim-fail-1" },
    });
    expect(r.status).toBe(422);
    expect(r.headers["content-type"]).toMatch(/application\/problem\+json/);
    assertMatchesReference("TransactionResponse", r.body);
    expect(r.body).toMatchObject({
      status: "simulation_failed",
      simulation_status: "reverted",
      agent_id: svc.agent.id,
      chain: "local",
      to: getAddress(failures),
    });
    expect(r.body.detail).toMatch(/Failures: not allowed/);
    expect(r.body.nonce).toBeUndefined();
    expect(r.body.tx_hash).toBeUndefined();
    expect(r.body.signed_tx).toBeUndefined();
    expect(r.body.simulation.revert_reason).toBe("Failures: not allowed");

    const stored = await call(svc.app, "GET", `/v1/agents/${svc.agent.id}/transactions/${r.body.id}?include_signed_tx=true`, {
      token: svc.agent.token,
    });
    expect(stored.status).toBe(200);
    expect(stored.body).toMatchObject({
      status: "simulation_failed",
      simulation_id: r.body.simulation_id,
      simulation_status: "reverted",
      signed_tx: null,
    });
    expect(stored.body.nonce).toBeUndefined();
    const row = await svc.ctx.pool.query("SELECT nonce, signed_tx, counts_toward_limits FROM transactions WHERE id = $1", [r.body.id]);
    expect(row.rows[0]).toEqual({ nonce: null, signed_tx: null, counts_toward_limits: false });
    const audit = await svc.ctx.pool.query("SELECT details FROM audit_events WHERE action = 'transaction.simulate' AND resource_id = $1", [
      r.body.id,
    ]);
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0].details).toMatchObject({
      status: "reverted",
      simulator: "anvil",
      revert_reason: "Failures: not allowed",
      mode: "submit",
    });

    // A failed request is not cached: the same key may be used again.
    const ok = await call(svc.app, "POST", `/v1/agents/${svc.agent.id}/transactions`, {
      token: svc.agent.token,
      body: { to: DEAD, value: "0.001", chain: "local", simulate_first: true },
      headers: { "idempotency-key": "sim-fail-1" },
    });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ status: "broadcast", nonce: expectedNonce, simulation_status: "success" });
    expect(ok.body.simulation_id).toMatch(/^[0-9a-f-]{36}$/);
    await dev.pub.waitForTransactionReceipt({ hash: ok.body.tx_hash });
    expect(await dev.pub.getTransactionCount({ address: signer })).toBe(expectedNonce + 1);
  });

  it("simulate_first on sign: a custom-error revert is 422 and nothing is signed", async () => {
    const r = await call(svc.app, "POST", `/v1/agents/${svc.agent.id}/transactions/sign`, {
      token: svc.agent.token,
      body: { to: failures, value: "0", chain: "local", data: data(Failures.abi, "failWithCustomError", [9n]), simulate_first: true },
    });
    expect(r.status).toBe(422);
    expect(r.body.status).toBe("simulation_failed");
    expect(r.body.error_message).toMatch(/^Simulation reverted: 0xda472023/);
  });

  it("an operator switch per agent forces simulation of every submission", async () => {
    const forced = await createAgent(svc.app, op);
    const patched = await call(svc.app, "PATCH", `/v1/agents/${forced.id}`, { token: op, body: { simulate_required: true } });
    expect(patched.status).toBe(200);
    const r = await call(svc.app, "POST", `/v1/agents/${forced.id}/transactions`, {
      token: forced.token,
      body: { to: failures, value: "0", chain: "local", data: data(Failures.abi, "divide", [1n, 0n]) },
    });
    expect(r.status).toBe(422);
    expect(r.body.error_message).toBe("Simulation reverted: Panic(0x12): division or modulo by zero");
    const ok = await call(svc.app, "POST", `/v1/agents/${forced.id}/transactions`, {
      token: forced.token,
      body: { to: DEAD, value: "0", chain: "local" },
    });
    expect(ok.status).toBe(201);
    expect(ok.body.simulation_status).toBe("success");
  });

  it("simulations are audited as transaction.simulate and cost no nonce", async () => {
    const nonce = await dev.pub.getTransactionCount({ address: signer, blockTag: "pending" });
    const r = await simulate({ to: DEAD, value: "0.2", chain: "local" });
    const a = await svc.ctx.pool.query(
      "SELECT actor_type, actor_id, resource_type, details FROM audit_events WHERE action = 'transaction.simulate' AND resource_id = $1",
      [r.body.simulation_id],
    );
    expect(a.rows).toHaveLength(1);
    expect(a.rows[0]).toMatchObject({ actor_type: "agent", actor_id: svc.agent.id, resource_type: "simulation" });
    expect(a.rows[0].details).toMatchObject({
      mode: "simulate",
      simulator: "anvil",
      chain: "local",
      status: "success",
      gas_used: 21000,
      value_wei: "200000000000000000",
      from: signer.toLowerCase(),
    });
    const n = await svc.ctx.pool.query("SELECT next_nonce FROM nonces WHERE chain_id = 31337 AND address = $1", [signer.toLowerCase()]);
    expect(Number(n.rows[0]?.next_nonce ?? nonce)).toBe(nonce);
    expect(await dev.pub.getTransactionCount({ address: signer, blockTag: "pending" })).toBe(nonce);
  });

  it("refuses bad input (400), disallowed chains (403), unknown or ungranted keys (404), operators (403)", async () => {
    const base = { to: DEAD, value: "0", chain: "local" };
    for (const body of [
      { ...base, nonce: 1 },
      { ...base, value: "-1" },
      { ...base, to: "0x1234" },
      { ...base, data: "0xabc" },
      { to: DEAD, chain: "local" },
      "nope",
    ]) {
      const r = await simulate(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      assertMatchesReference("ProblemDetails", r.body);
    }
    expect((await simulate({ ...base, chain: "nochain" })).status).toBe(400);
    expect((await bundle([])).status).toBe(400);
    expect((await bundle(Array.from({ length: 21 }, () => base))).status).toBe(400);
    expect((await bundle([base, { ...base, chain: "ethereum" }])).status).toBe(400);
    // A path outside every namespace is answered like a key that does not exist (no probing).
    expect((await simulate({ ...base, signing_key_path: "other/key" })).status).toBe(404);
    expect((await simulate({ ...base, signing_key_path: "keys/does-not-exist" })).status).toBe(404);
    expect((await simulate(base, op)).status).toBe(403);
    const limited = await createAgent(svc.app, op, { tx_allowed_chains: ["ethereum"] });
    const denied = await simulate(base, limited.token, limited.id);
    expect(denied.status).toBe(403);
    expect(denied.body.guardrail.reason_code).toBe("chain_not_allowed");
  });

  it("a sender that cannot pay gets status error with the node's reason, still 200", async () => {
    const poor = await call(svc.app, "POST", "/v1/signing-keys", { token: op, body: { path: "keys/sim-poor" } });
    expect(
      (await call(svc.app, "POST", `/v1/signing-keys/${poor.body.id}/grants`, { token: op, body: { agent_id: svc.agent.id } })).status,
    ).toBe(201);
    const r = await simulate({ to: DEAD, value: "1", chain: "local", signing_key_path: "keys/sim-poor" });
    expect(r.status).toBe(200);
    assertMatchesReference("SimulationResponse", r.body);
    expect(r.body.status).toBe("error");
    expect(r.body.error).toMatch(/insufficient funds/i);
    expect(r.body.balance_changes).toEqual([]);
    expect(poor.body.address).toBeTruthy();
  });
});

function parse(major: string): bigint {
  const neg = major.startsWith("-");
  const [w, f = ""] = major.replace("-", "").split(".");
  const v = BigInt(w!) * 10n ** 18n + BigInt((f + "0".repeat(18)).slice(0, 18));
  return neg ? -v : v;
}
