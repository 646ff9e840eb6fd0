// The spend model against a hostile agent, on the real stack (SoftHSM, anvil with mining on demand,
// PostgreSQL): fees are bounded and counted, a signature the node refused is never handed out and
// does not count, and explicit nonces stay inside the key's window. Each attack checks that the
// agent's counters, the key's next nonce and its balance agree with what was allowed.
import { formatEther, parseTransaction, type Hex, type PublicClient } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { markFailed } from "../../src/db/transactions.js";
import { call, createAgent, type TestAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";
import { agentWithKey, DEAD, mine, rpc, submitter } from "../lifecycle/helpers.js";

const GWEI = 1_000_000_000n;

describe("spend model: fees, refused signatures, nonces", () => {
  const svc = useService({ anvil: { noMining: true }, env: { TRACKER: "off" } });
  const { op } = svc;
  let chain: PublicClient;
  beforeAll(() => {
    chain = svc.chain;
  });

  /** An agent with its own funded key and these guardrails. */
  const hostile = async (fields: Record<string, unknown> = {}) => {
    const a = await agentWithKey(svc, op, chain);
    if (Object.keys(fields).length > 0) {
      const p = await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body: fields });
      expect(p.status).toBe(200);
    }
    return a;
  };
  const me = async (a: TestAgent) => (await call(svc.app, "GET", `/v1/agents/${a.id}`, { token: a.token })).body;
  const nextNonce = async (address: string) =>
    (await svc.ctx.pool.query("SELECT next_nonce FROM nonces WHERE chain_id = 31337 AND address = $1", [address.toLowerCase()])).rows[0]
      ?.next_nonce ?? "0";
  const balance = (address: Hex) => chain.getBalance({ address });
  const rows = async (agentId: string) =>
    Number((await svc.ctx.pool.query("SELECT count(*) FROM transactions WHERE agent_id = $1", [agentId])).rows[0].count);

  describe("item 1: fees are inside the limits", () => {
    it("a gas price of 1 ETH on a zero-value transfer is refused; nothing is signed, spent or reserved", async () => {
      const a = await hostile({ tx_max_value: "0.01" });
      const submit = submitter(svc, a);
      const before = await balance(a.address);
      const r = await submit({ value: "0", gas_limit: 21_000, gas_price: (10n ** 18n).toString() });
      expect(r.status).toBe(403);
      assertMatchesReference("ProblemDetails", r.body);
      expect(r.body.guardrail.reason_code).toBe("fee_per_gas_too_high");
      // The same as EIP-1559 fields.
      const r2 = await submit({ value: "0", max_fee_per_gas: (10n ** 18n).toString(), max_priority_fee_per_gas: (10n ** 18n).toString() });
      expect(r2.body.guardrail.reason_code).toBe("fee_per_gas_too_high");
      expect(await rows(a.id)).toBe(0);
      expect(await nextNonce(a.address)).toBe("0");
      await mine(chain);
      expect(await balance(a.address)).toBe(before);
      expect(await me(a)).toMatchObject({ tx_spent_today: "0", tx_fees_spent_today: "0", tx_count_today: 0 });
    });

    it("uint256 fees and the largest gas limit are a clear 403, never a 500", async () => {
      const a = await hostile();
      const submit = submitter(svc, a);
      const max = ((1n << 256n) - 1n).toString();
      for (const body of [
        { gas_price: max },
        { max_fee_per_gas: max, max_priority_fee_per_gas: max },
        { max_fee_per_gas: max, max_priority_fee_per_gas: "1" },
        { gas_limit: 1_000_000_000 },
        { gas_limit: 1_000_000_000, gas_price: max },
      ]) {
        const r = await submit({ value: "0", ...body });
        expect(r.status, JSON.stringify(body)).toBe(403);
        expect(["fee_per_gas_too_high", "gas_limit_exceeded"]).toContain(r.body.guardrail.reason_code);
      }
      expect(await rows(a.id)).toBe(0);
      expect(await nextNonce(a.address)).toBe("0");
    });

    it("gas_limit: at most the estimate + 50 % unless the operator raises it for the agent", async () => {
      const a = await hostile();
      const submit = submitter(svc, a);
      const over = await submit({ value: "0", gas_limit: 31_501 });
      expect(over.status).toBe(403);
      expect(over.body.guardrail).toMatchObject({ reason_code: "gas_limit_exceeded", limit: 31_500, attempted: 31_501 });
      expect((await submit({ value: "0", gas_limit: 31_500 })).status).toBe(201);
      await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body: { tx_max_gas_limit: 400_000 } });
      const raised = await submit({ value: "0", gas_limit: 400_000 });
      expect(raised.status).toBe(201);
      expect(raised.body.gas_limit).toBe(400_000);
      expect((await submit({ value: "0", gas_limit: 400_001 })).body.guardrail.reason_code).toBe("gas_limit_exceeded");
      expect((await me(a)).tx_max_gas_limit).toBe(400_000);
      await mine(chain);
    });

    it("tx_max_fee bounds one transaction's worst-case fee; tx_daily_fee_budget the rolling sum", async () => {
      const price = 2n * GWEI;
      const fee = 21_000n * price; // worst case of each transfer below
      const a = await hostile({ tx_max_fee: "0.000042", tx_daily_fee_budget: "0.000084", tx_daily_limit: "1" });
      const submit = submitter(svc, a);
      expect(await me(a)).toMatchObject({ tx_max_fee: "0.000042", tx_daily_fee_budget: "0.000084" });
      const tooBig = await submit({ value: "0", gas_limit: 21_001, gas_price: price.toString() });
      expect(tooBig.status).toBe(403);
      expect(tooBig.body.guardrail).toMatchObject({ reason_code: "max_fee_exceeded", limit: "0.000042", attempted: "0.000042002" });
      const before = await balance(a.address);
      for (let i = 0; i < 2; i++) expect((await submit({ value: "0.1", gas_limit: 21_000, gas_price: price.toString() })).status).toBe(201);
      const third = await submit({ value: "0", gas_limit: 21_000, gas_price: price.toString() });
      expect(third.status).toBe(403);
      expect(third.body.guardrail).toMatchObject({
        reason_code: "daily_fee_budget_exceeded",
        limit: "0.000084",
        current: "0.000084",
        attempted: "0.000042",
      });
      expect(await me(a)).toMatchObject({ tx_spent_today: "0.2", tx_fees_spent_today: "0.000084", tx_count_today: 2 });
      expect(await nextNonce(a.address)).toBe("2");
      await mine(chain);
      // What left the key is at most what was counted: value + worst-case fee.
      const spent = before - (await balance(a.address));
      expect(spent > 2n * 10n ** 17n).toBe(true);
      expect(spent <= 2n * 10n ** 17n + 2n * fee).toBe(true);
    });

    it("a chain's own fee cap and price multiple bound every signature on it", async () => {
      const a = await hostile();
      const submit = submitter(svc, a);
      const put = (body: Record<string, unknown>) => call(svc.app, "PUT", "/v1/admin/chains/local", { token: op, body });
      const set = await put({ max_fee_per_gas_gwei: 1.5 });
      expect(set.status).toBe(200);
      expect(set.body).toMatchObject({ max_fee_per_gas_gwei: 1.5, base_fee_multiple: null });
      const r = await submit({ value: "0", gas_price: (2n * GWEI).toString() });
      expect(r.status).toBe(403);
      expect(r.body.guardrail).toMatchObject({ reason_code: "fee_per_gas_too_high", limit: "1500000000" });
      expect((await put({ max_fee_per_gas_gwei: null, base_fee_multiple: 1 })).status).toBe(200);
      // Multiple 1: at most the current price (base fee + tip estimate), never below the service's own estimate.
      const price = (await svc.ctx.clients.get(svc.ctx.chains.resolve("local")!).getBlock()).baseFeePerGas!;
      const over = await submit({ value: "0", max_fee_per_gas: (100n * GWEI).toString(), max_priority_fee_per_gas: "1" });
      expect(over.body.guardrail.reason_code).toBe("fee_per_gas_too_high");
      expect(BigInt(over.body.guardrail.current) >= price).toBe(true);
      expect((await submit({ value: "0" })).status).toBe(201); // the estimate always passes
      expect((await put({ base_fee_multiple: null })).status).toBe(200);
      expect(await rows(a.id)).toBe(1);
      await mine(chain);
    });

    it("fee limits are on by default, and null turns them off", async () => {
      const a = await hostile();
      expect(await me(a)).toMatchObject({ tx_max_fee: "0.01", tx_daily_fee_budget: "0.1", tx_max_gas_limit: null });
      await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body: { tx_max_fee: null, tx_daily_fee_budget: null } });
      expect(await me(a)).toMatchObject({ tx_max_fee: null, tx_daily_fee_budget: null });
    });

    it("a speed-up the agent's fee budget cannot pay for is refused and the budget holds", async () => {
      const price = 2n * GWEI;
      const a = await hostile({ tx_daily_fee_budget: "0.000042" });
      const r = await submitter(svc, a)({ value: "0", gas_limit: 21_000, gas_price: price.toString() });
      expect(r.status).toBe(201);
      for (const what of ["speed-up", "cancel"]) {
        const s = await call(svc.app, "POST", `/v1/transactions/${r.body.id}/${what}`, { token: op });
        expect(s.status).toBe(422);
        expect(s.body.detail).toMatch(/tx_daily_fee_budget/);
      }
      const {
        rows: [row],
      } = await svc.ctx.pool.query("SELECT fee_wei, tx_hash FROM transactions WHERE id = $1", [r.body.id]);
      expect(row).toMatchObject({ fee_wei: (21_000n * price).toString(), tx_hash: r.body.tx_hash });
      expect(
        (await svc.ctx.pool.query("SELECT count(*) FROM transaction_attempts WHERE tx_id = $1 AND kind <> 'original'", [r.body.id])).rows[0]
          .count,
      ).toBe("0");
      // With room in the budget the speed-up is made, and its larger worst case is charged to the agent.
      await call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body: { tx_daily_fee_budget: "0.001" } });
      const s = await call(svc.app, "POST", `/v1/transactions/${r.body.id}/speed-up`, { token: op });
      expect(s.status).toBe(200);
      const charged = 21_000n * BigInt(s.body.attempt.gas_price);
      expect(charged > 21_000n * price).toBe(true);
      expect((await me(a)).tx_fees_spent_today).toBe(formatEther(charged));
      await mine(chain);
    });
  });

  describe("item 2: a refused signature is never handed out and does not count", () => {
    it("six rounds of node-refused submissions: no bytes anywhere, counters and nonce unchanged", async () => {
      const a = await hostile({ tx_daily_limit: "0.05", tx_max_per_day: 5, tx_max_value: "0.01" });
      const submit = submitter(svc, a);
      const before = await balance(a.address);
      const refusedIds: string[] = [];
      for (let round = 0; round < 6; round++) {
        // A max fee below the base fee: the node refuses it now, but it could be valid a few blocks later.
        const r = await submit({ value: "0.01", max_fee_per_gas: "1", max_priority_fee_per_gas: "1" });
        expect(r.status).toBe(201);
        expect(r.body.status).toBe("failed");
        expect(r.body.signed_tx).toBeUndefined();
        expect(r.body.nonce).toBe(0);
        refusedIds.push(r.body.id);
        const got = await call(svc.app, "GET", `/v1/agents/${a.id}/transactions/${r.body.id}?include_signed_tx=true`, { token: a.token });
        expect(got.body.signed_tx).toBeUndefined();
      }
      const list = await call(svc.app, "GET", `/v1/agents/${a.id}/transactions?include_signed_tx=1`, { token: a.token });
      expect(list.body.transactions.every((t: { signed_tx?: string }) => t.signed_tx === undefined)).toBe(true);
      const exported = await call(svc.app, "GET", `/v1/transactions/export?format=jsonl&agent_id=${a.id}&include_signed_tx=1`, {
        token: op,
      });
      expect(exported.raw.trim().split("\n")).toHaveLength(6);
      expect(exported.raw).not.toContain("signed_tx");
      expect(await me(a)).toMatchObject({ tx_spent_today: "0", tx_fees_spent_today: "0", tx_count_today: 0 });
      // The nonce was released each time: the next good submission takes it, and the chain agrees.
      const ok = await submit({ value: "0.01" });
      expect(ok.body).toMatchObject({ status: "broadcast", nonce: 0 });
      expect(await nextNonce(a.address)).toBe("1");
      await mine(chain);
      expect(await chain.getTransactionCount({ address: a.address })).toBe(1);
      const spent = before - (await balance(a.address));
      expect(spent > 10n ** 16n && spent <= 10n ** 16n + BigInt(ok.body.gas_limit) * BigInt(ok.body.max_fee_per_gas)).toBe(true);
      expect(await me(a)).toMatchObject({ tx_spent_today: "0.01", tx_count_today: 1 });
    });

    it("a row whose bytes were handed out keeps counting when a node refuses it later", async () => {
      const a = await hostile({ tx_daily_limit: "1" });
      const r = await submitter(svc, a)({ value: "0.3" });
      expect(r.body.signed_tx).toMatch(/^0x/);
      await markFailed(svc.ctx.pool, r.body.id, "Rejected by the node: test"); // the tracker's record
      expect((await me(a)).tx_spent_today).toBe("0.3");
      await markFailed(svc.ctx.pool, r.body.id, "Rejected by the node: test", true); // before any answer
      expect((await me(a)).tx_spent_today).toBe("0");
      await mine(chain);
    });
  });

  describe("item 3: nonces are the service's", () => {
    it("a nonce ahead of the key's window is refused and moves nothing; too large a value is a 400", async () => {
      const a = await hostile();
      const submit = submitter(svc, a);
      for (let i = 0; i < 2; i++) expect((await submit({ value: "0" })).status).toBe(201);
      await mine(chain);
      expect(await nextNonce(a.address)).toBe("2");
      const ahead = await submit({ value: "0", nonce: 42 });
      expect(ahead.status).toBe(403);
      expect(ahead.body.guardrail).toMatchObject({ reason_code: "nonce_not_allowed", current: 2, attempted: 42 });
      const huge = await submit({ value: "0", nonce: 9007199254740990 });
      expect(huge.status).toBe(400);
      expect((await submit({ value: "0", nonce: 2 ** 32 - 1 })).status).toBe(403);
      expect((await submit({ value: "0", nonce: 0 })).body.guardrail.reason_code).toBe("nonce_not_allowed"); // mined
      expect(await nextNonce(a.address)).toBe("2");
      const next = await submit({ value: "0" });
      expect(next.body).toMatchObject({ status: "broadcast", nonce: 2 });
      await mine(chain);
      expect(await chain.getTransactionCount({ address: a.address })).toBe(3);
    });

    it("an agent cannot replace another agent's pending nonce; it can replace its own", async () => {
      // Two agents on one shared key.
      const path = "keys/shared-spend";
      const key = await call(svc.app, "POST", "/v1/signing-keys", { token: op, body: { path, chain: "local" } });
      expect(key.status).toBe(201);
      await rpc(chain, "anvil_setBalance", [key.body.address, "0x" + (10n ** 21n).toString(16)]);
      const victim = await createAgent(svc.app, op);
      const attacker = await createAgent(svc.app, op);
      for (const a of [victim, attacker]) {
        const g = await call(svc.app, "POST", `/v1/signing-keys/${key.body.id}/grants`, { token: op, body: { agent_id: a.id } });
        expect(g.status, g.raw).toBe(201);
      }
      const pending = await submitter(svc, victim)({ value: "0.5", signing_key_path: path });
      expect(pending.body).toMatchObject({ status: "broadcast", nonce: 0 });
      const tip = (5n * GWEI).toString();
      const steal = await submitter(
        svc,
        attacker,
      )({ value: "0", to: DEAD, signing_key_path: path, nonce: 0, max_fee_per_gas: tip, max_priority_fee_per_gas: tip });
      expect(steal.status).toBe(403);
      expect(steal.body.guardrail.reason_code).toBe("nonce_not_allowed");
      // The victim replaces its own with higher fees (a speed-up by the agent itself).
      const old = parseTransaction(pending.body.signed_tx as Hex);
      const fee = (old.maxFeePerGas! * 2n).toString();
      const own = await submitter(
        svc,
        victim,
      )({ value: "0.5", signing_key_path: path, nonce: 0, max_fee_per_gas: fee, max_priority_fee_per_gas: fee });
      expect(own.status).toBe(201);
      expect(own.body).toMatchObject({ nonce: 0, status: "broadcast" });
      expect(await nextNonce(key.body.address)).toBe("1");
      await mine(chain);
      expect(await chain.getTransactionCount({ address: key.body.address })).toBe(1);
      // Both signatures count until one is mined: the worst case is what the agent may move.
      expect((await me(victim)).tx_spent_today).toBe("1");
    });
  });
});
