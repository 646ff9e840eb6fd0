// Operators speed up or cancel a pending transaction by id (anvil with automine off, so it stays
// pending until the test mines). Both re-sign the same nonce with fees ≥ +10% and keep the id.
import { parseTransaction, type Hex } from "viem";
import { describe, expect, it } from "vitest";
import { call } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";
import { auditOf, DEAD, keyedAgent, mine, minedByHand, receipt, submitter, txRow, waitFor } from "./helpers.js";
import { bumped } from "../../src/tracker/fee-bump.js";

const up = bumped; // the service's own +10% rule (its values are pinned in policy.test.ts)

describe("operator speed-up and cancel", () => {
  const svc = useService({ ...minedByHand(), agentKey: true });
  const { op } = svc;
  const chain = () => svc.chain;
  const agent = () => keyedAgent(svc);
  const submit = submitter(svc);

  const row = (id: string) => txRow(svc.ctx.pool, id);
  const post = (id: string, what: "speed-up" | "cancel", token = op) => call(svc.app, "POST", `/v1/transactions/${id}/${what}`, { token });

  it("speeds a pending transaction up: same nonce and call, fees +10% or more, same id", async () => {
    const r = await submit({ value: "0.01" });
    const old = parseTransaction(r.body.signed_tx as Hex);

    expect((await post(r.body.id, "speed-up", agent().token)).status).toBe(403);
    expect((await post("00000000-0000-4000-8000-000000000000", "speed-up")).status).toBe(404);
    expect((await post("not-a-uuid", "speed-up")).status).toBe(404);

    const s = await post(r.body.id, "speed-up");
    expect(s.status).toBe(200);
    expect(s.body.result).toBe("sent");
    expect(s.body.transaction).toMatchObject({ id: r.body.id, tx_hash: s.body.attempt.tx_hash, nonce: r.body.nonce });
    expect(s.body.attempt).toMatchObject({ kind: "speed_up", status: "sent" });
    expect(BigInt(s.body.attempt.max_fee_per_gas) >= up(old.maxFeePerGas!)).toBe(true);
    expect(BigInt(s.body.attempt.max_priority_fee_per_gas) >= up(old.maxPriorityFeePerGas!)).toBe(true);

    // Twice: each bump beats the highest fees signed so far.
    const s2 = await post(r.body.id, "speed-up");
    expect(s2.status).toBe(200);
    expect(BigInt(s2.body.attempt.max_fee_per_gas) >= up(BigInt(s.body.attempt.max_fee_per_gas))).toBe(true);

    await mine(chain());
    const done = await waitFor("confirmed", async () => ((await row(r.body.id)).chain_status === "confirmed" ? row(r.body.id) : undefined));
    expect(done.tx_hash).toBe(s2.body.attempt.tx_hash);
    expect((await receipt(chain(), s2.body.attempt.tx_hash))!.status).toBe("0x1");
    const attempts = (await call(svc.app, "GET", `/v1/transactions/${r.body.id}/attempts`, { token: op })).body.attempts;
    expect(attempts.map((a: { kind: string; status: string }) => `${a.kind}:${a.status}`)).toEqual([
      "original:replaced",
      "speed_up:replaced",
      "speed_up:mined",
    ]);
    expect(attempts[0].replaced_by).toBe(s.body.attempt.tx_hash);
    const replaced = await auditOf(svc.ctx.pool, r.body.id, "transaction.replaced");
    expect(replaced.map((e) => e.details.kind)).toEqual(["speed_up", "speed_up"]);
    expect(replaced[0].actor_id).not.toBeNull();

    // Mined: nothing left to replace.
    const late = await post(r.body.id, "speed-up");
    expect(late.status).toBe(409);
  });

  it("cancels a pending transaction: a zero-value self-transfer takes its nonce; the transaction ends `replaced`", async () => {
    const before = await chain().getBalance({ address: DEAD });
    const r = await submit({ value: "0.5" });
    const c = await post(r.body.id, "cancel");
    expect(c.status).toBe(200);
    expect(c.body.attempt).toMatchObject({ kind: "cancel", status: "sent", to: agent().address.toLowerCase(), value_wei: "0" });
    const tx = parseTransaction(
      (await svc.ctx.pool.query("SELECT signed_tx FROM transaction_attempts WHERE tx_hash = $1", [c.body.attempt.tx_hash])).rows[0]
        .signed_tx,
    );
    expect(tx.nonce).toBe(r.body.nonce);
    expect(tx.to!.toLowerCase()).toBe(agent().address.toLowerCase());
    expect(tx.value ?? 0n).toBe(0n);
    // The row still describes what was asked; its hash stays the one the agent got.
    expect(c.body.transaction).toMatchObject({ id: r.body.id, tx_hash: r.body.tx_hash, value: "0.5" });

    await mine(chain());
    const done = await waitFor("final", async () => ((await row(r.body.id)).chain_status === "replaced" ? row(r.body.id) : undefined));
    expect(done.replaced_by).toBe(c.body.attempt.tx_hash);
    expect(done.tx_hash).toBe(r.body.tx_hash);
    expect(done.counts_toward_limits).toBe(false);
    expect(await receipt(chain(), r.body.tx_hash)).toBeNull();
    expect(await chain().getBalance({ address: DEAD })).toBe(before);
    const got = await call(svc.app, "GET", `/v1/agents/${agent().id}/transactions/${r.body.id}`, { token: agent().token });
    expect(got.body).toMatchObject({ chain_status: "replaced", replaced_by: c.body.attempt.tx_hash });
    expect((await post(r.body.id, "cancel")).status).toBe(409);
  });

  it("refuses a sign-only transaction", async () => {
    const s = await call(svc.app, "POST", `/v1/agents/${agent().id}/transactions/sign`, {
      token: agent().token,
      body: { chain: "local", to: DEAD, value: "0" },
    });
    expect(s.status).toBe(200);
    const c = await post(s.body.id, "cancel");
    expect(c.status).toBe(409);
    expect(c.body.detail).toMatch(/signed only/);
  });
});
