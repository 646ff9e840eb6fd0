// Property: whatever an agent sends (values, fee fields, gas limits, explicit nonces, some of which the
// node refuses), the worst-case cost of every signature it obtained stays within its limits, the
// service's counters say exactly that, and its key is left with no nonce gap it did not cause.
// Real stack: SoftHSM, anvil with mining on demand, PostgreSQL. Runs are few: each is a handful of
// real submissions.
import fc from "fast-check";
import { parseTransaction, type Hex, type PublicClient } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { call } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";
import { formatMajor, parseMajor } from "../../src/units.js";
import { recordSigningKey } from "../../src/db/signing-keys.js";
import { mine, rpc, submitter } from "../lifecycle/helpers.js";

const GWEI = 1_000_000_000n;
const LIMITS = { tx_max_value: "0.05", tx_daily_limit: "0.08", tx_max_per_day: 4, tx_max_fee: "0.0001", tx_daily_fee_budget: "0.0002" };
const wei = (major: string) => parseMajor(major)!;

const feeArb = fc.oneof(
  fc.constant({}),
  fc.constantFrom(1n, 2n * GWEI, 3n * GWEI, 40n * GWEI, 10n ** 18n, (1n << 256n) - 1n).map((p) => ({ gas_price: p.toString() })),
  fc.tuple(fc.constantFrom(1n, 2n * GWEI, 4n * GWEI, 10n ** 15n, (1n << 256n) - 1n), fc.constantFrom(1n, GWEI)).map(([fee, tip]) => ({
    max_fee_per_gas: fee.toString(),
    max_priority_fee_per_gas: (tip > fee ? fee : tip).toString(),
  })),
);
const requestArb = fc.record({
  value: fc.constantFrom("0", "0.001", "0.02", "0.03", "0.05", "0.06"),
  fee: feeArb,
  gas: fc.constantFrom(undefined, 21_000, 31_500, 40_000, 1_000_000_000),
  nonce: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined, freq: 3 }),
  mineAfter: fc.boolean(),
});
// A poor key: the node refuses transfers it cannot pay for.
const runArb = fc.record({ requests: fc.array(requestArb, { minLength: 3, maxLength: 7 }), poor: fc.boolean() });

describe("property: what an agent obtains never exceeds its limits", () => {
  const svc = useService({ anvil: { noMining: true }, env: { TRACKER: "off" } });
  const { op } = svc;
  let chain: PublicClient;
  beforeAll(() => {
    chain = svc.chain;
  });

  /** An agent with the limits and its own funded key; its ocv_ key is its credential (the token exchange is rate limited). */
  const agentWithLimits = async () => {
    const created = await call(svc.app, "POST", "/v1/agents", { token: op, body: { name: "prop", intents_api_enabled: true, ...LIMITS } });
    expect(created.status).toBe(201);
    const id = created.body.agent.id as string;
    const path = `agents/${id}/chains/local`;
    const key = await svc.ctx.signer.createKey(path);
    await recordSigningKey(svc.ctx.pool, key, { chain: "local", agentId: id });
    await rpc(chain, "anvil_setBalance", [key.address, "0x" + (10n ** 21n).toString(16)]);
    return { id, apiKey: created.body.api_key as string, token: created.body.api_key as string, address: key.address };
  };

  it("sum of worst-case costs ≤ limits; counters agree; no nonce gap on the key", async () => {
    await fc.assert(
      fc.asyncProperty(runArb, async ({ requests, poor }) => {
        const a = await agentWithLimits();
        if (poor) await rpc(chain, "anvil_setBalance", [a.address, "0x" + wei("0.025").toString(16)]);
        const submit = submitter(svc, a);
        const obtained: Array<{ value: bigint; fee: bigint; nonce: number }> = [];
        for (const r of requests) {
          const res = await submit({
            value: r.value,
            ...r.fee,
            ...(r.gas !== undefined ? { gas_limit: r.gas } : {}),
            ...(r.nonce !== undefined ? { nonce: r.nonce } : {}),
          });
          expect(res.status, res.raw).toBeLessThan(500);
          if (res.status === 201) {
            expect(["broadcast", "failed"]).toContain(res.body.status);
            if (res.body.status === "failed") expect(res.body.signed_tx).toBeUndefined();
          }
          if (typeof res.body?.signed_tx === "string") {
            const t = parseTransaction(res.body.signed_tx as Hex);
            obtained.push({ value: t.value ?? 0n, fee: t.gas! * (t.maxFeePerGas ?? t.gasPrice!), nonce: t.nonce! });
          }
          if (r.mineAfter) await mine(chain);
        }
        await mine(chain);

        // Every signature the agent holds is within its limits, one by one and together.
        const sum = (xs: bigint[]) => xs.reduce((x, y) => x + y, 0n);
        for (const o of obtained) {
          expect(o.value <= wei(LIMITS.tx_max_value)).toBe(true);
          expect(o.fee <= wei(LIMITS.tx_max_fee)).toBe(true);
        }
        expect(sum(obtained.map((o) => o.value)) <= wei(LIMITS.tx_daily_limit)).toBe(true);
        expect(sum(obtained.map((o) => o.fee)) <= wei(LIMITS.tx_daily_fee_budget)).toBe(true);
        expect(obtained.length).toBeLessThanOrEqual(LIMITS.tx_max_per_day);
        // The counters count exactly those signatures.
        const me = (await call(svc.app, "GET", `/v1/agents/${a.id}`, { token: a.token })).body;
        expect(me.tx_spent_today).toBe(formatMajor(sum(obtained.map((o) => o.value))));
        expect(me.tx_fees_spent_today).toBe(formatMajor(sum(obtained.map((o) => o.fee))));
        expect(me.tx_count_today).toBe(obtained.length);

        // No gap: once mined, nothing waits in the node's pool, every nonce below the mined count
        // was used by one of the agent's signatures, and the key's next nonce is not beyond what was
        // mined plus the nonces given back.
        const latest = await chain.getTransactionCount({ address: a.address, blockTag: "latest" });
        const pending = await chain.getTransactionCount({ address: a.address, blockTag: "pending" });
        expect(pending).toBe(latest);
        const used = new Set(obtained.map((o) => o.nonce));
        for (let n = 0; n < latest; n++) expect(used.has(n)).toBe(true);
        const { rows } = await svc.ctx.pool.query(
          `SELECT n.next_nonce, (SELECT count(*) FROM released_nonces r WHERE r.chain_id = n.chain_id AND r.address = n.address AND r.nonce >= $2) AS released
             FROM nonces n WHERE n.chain_id = 31337 AND n.address = $1`,
          [a.address.toLowerCase(), latest],
        );
        if (rows[0]) expect(Number(rows[0].next_nonce) - Number(rows[0].released)).toBeLessThanOrEqual(latest);
      }),
      { numRuns: Number(process.env.SPEND_RUNS ?? 12), seed: process.env.SPEND_SEED ? Number(process.env.SPEND_SEED) : undefined },
    );
  }, 120_000);
});
