// Fee bumping against an anvil with automine off: a transaction priced out by a raised base fee, and
// one left unmined in the mempool past STUCK_AFTER_SECONDS, are replaced with the same nonce and
// higher fees, signed again in the HSM; the transaction keeps its id and its hash history.
import { parseEther, parseGwei, parseTransaction, type Hex } from "viem";
import { describe, expect, it } from "vitest";
import { call } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";
import {
  agentWithKey,
  attemptsOf,
  auditOf,
  byHash,
  keyedAgent,
  mine,
  minedByHand,
  receipt,
  rpc,
  submitter,
  txRow,
  waitFor,
} from "./helpers.js";
import { bumped as bumpedBy10 } from "../../src/tracker/fee-bump.js";

describe("replacement with higher fees", () => {
  const svc = useService({ ...minedByHand({ STUCK_AFTER_SECONDS: "1" }), agentKey: true });
  const { op } = svc;
  const chain = () => svc.chain;
  const agent = () => keyedAgent(svc);
  const submit = submitter(svc);

  const row = (id: string) => txRow(svc.ctx.pool, id);

  it("replaces a transaction priced out by a raised base fee; the replacement mines, the id is unchanged, the old hash is replaced", async () => {
    const r = await submit({ value: "0.01" });
    expect(r.status).toBe(201);
    const { id, tx_hash: oldHash } = r.body;
    const old = parseTransaction(r.body.signed_tx as Hex);

    // The next block's base fee jumps far above the transaction's fee cap: it is priced out.
    await rpc(chain(), "anvil_setNextBlockBaseFeePerGas", ["0x" + parseGwei("100").toString(16)]);
    await mine(chain());
    expect(await receipt(chain(), oldHash)).toBeNull();

    const replaced = await waitFor("a replacement", async () => ((await row(id)).tx_hash !== oldHash ? row(id) : undefined), 15_000);
    const fresh = parseTransaction(replaced.signed_tx as Hex);
    expect(fresh.nonce).toBe(old.nonce);
    expect(fresh.to).toBe(old.to);
    expect(fresh.value).toBe(old.value);
    expect(fresh.maxFeePerGas! >= bumpedBy10(old.maxFeePerGas!)).toBe(true);
    expect(fresh.maxPriorityFeePerGas! >= bumpedBy10(old.maxPriorityFeePerGas!)).toBe(true);
    expect(fresh.maxFeePerGas! > parseGwei("100")).toBe(true); // re-estimated against the new base fee

    await mine(chain());
    const done = await waitFor("confirmed", async () => ((await row(id)).chain_status === "confirmed" ? row(id) : undefined));
    expect(done.id).toBe(id);
    expect((await receipt(chain(), done.tx_hash!))!.status).toBe("0x1");
    expect(await receipt(chain(), oldHash)).toBeNull();
    expect(Number(await chain().getTransactionCount({ address: agent().address }))).toBe(old.nonce! + 1);

    // The hash history: the first signature replaced, the mined one last.
    const attempts = await attemptsOf(svc.ctx.pool, id);
    expect(attempts[0]).toMatchObject({ tx_hash: oldHash, kind: "original", status: "replaced" });
    expect(attempts[attempts.length - 1]).toMatchObject({ tx_hash: done.tx_hash, kind: "bump", status: "mined" });
    expect(attempts.slice(0, -1).every((a) => a.status === "replaced" || a.status === "failed")).toBe(true);
    const listed = await call(svc.app, "GET", `/v1/transactions/${id}/attempts`, { token: op });
    expect(listed.status).toBe(200);
    expect(listed.body.attempts[0]).toMatchObject({ tx_hash: oldHash, status: "replaced" });
    expect(listed.body.attempts[0].replaced_by).toBeTruthy();
    const audit = await auditOf(svc.ctx.pool, id, "transaction.replaced");
    expect(audit[0].details).toMatchObject({ kind: "bump", replaced_tx_hash: oldHash });
    expect(String(audit[0].details.reason)).toMatch(/underpriced/); // evicted, resent, refused for its fee → bumped
    expect(await call(svc.app, "GET", `/v1/agents/${agent().id}/transactions/${id}`, { token: agent().token })).toMatchObject({
      body: { id, tx_hash: done.tx_hash, chain_status: "confirmed" },
    });
  });

  it("bumps a transaction left unmined in the mempool past STUCK_AFTER_SECONDS", async () => {
    const r = await submit({ value: "0.02" });
    const { id, tx_hash: oldHash } = r.body;
    expect(await byHash(chain(), oldHash)).not.toBeNull(); // valid, waiting in the mempool; no block comes
    const bumped = await waitFor("a bump", async () => ((await row(id)).tx_hash !== oldHash ? row(id) : undefined), 15_000);
    const audit = await auditOf(svc.ctx.pool, id, "transaction.replaced");
    expect(String(audit[0].details.reason)).toMatch(/not mined/);
    await mine(chain());
    const done = await waitFor("confirmed", async () => ((await row(id)).chain_status === "confirmed" ? row(id) : undefined));
    expect((await receipt(chain(), done.tx_hash!))!.status).toBe("0x1");
    expect(BigInt(done.max_fee_per_gas!) >= BigInt(bumped.max_fee_per_gas!)).toBe(true);
    expect((await attemptsOf(svc.ctx.pool, id))[0]).toMatchObject({ tx_hash: oldHash, status: "replaced" });
  });

  it("a stuck transaction's bump stays within the agent's fee budget and is charged to that agent", async () => {
    const a = await agentWithKey(svc, op, chain());
    const patch = (body: Record<string, unknown>) => call(svc.app, "PATCH", `/v1/agents/${a.id}`, { token: op, body });
    const fees = async () => (await call(svc.app, "GET", `/v1/agents/${a.id}`, { token: a.token })).body.tx_fees_spent_today as string;
    const r = await submitter(svc, a)({ value: "0.01" });
    const { id, tx_hash: oldHash } = r.body;
    // The budget is exactly what the first signature can cost: no bump fits.
    const first = await fees();
    expect(BigInt((await row(id)).fee_wei)).toBe(BigInt(r.body.gas_limit) * BigInt(r.body.max_fee_per_gas));
    expect((await patch({ tx_daily_fee_budget: first })).status).toBe(200);
    const noted = await waitFor(
      "the refused bump noted",
      async () => ((await row(id)).error_message?.includes("tx_daily_fee_budget") ? row(id) : undefined),
      15_000,
    );
    expect(noted.tx_hash).toBe(oldHash);
    expect((await attemptsOf(svc.ctx.pool, id)).filter((x) => x.kind !== "original")).toHaveLength(0);
    expect(await fees()).toBe(first);
    // With room, the tracker bumps it, and the agent's fees count the bump's larger worst case.
    expect((await patch({ tx_daily_fee_budget: "1" })).status).toBe(200);
    const bumped = await waitFor("a bump", async () => ((await row(id)).tx_hash !== oldHash ? row(id) : undefined), 15_000);
    const worst = BigInt(bumped.gas_limit!) * BigInt(bumped.max_fee_per_gas!);
    expect(BigInt(bumped.fee_wei) >= worst).toBe(true);
    expect(parseEther(await fees())).toBe(BigInt(bumped.fee_wei));
    await mine(chain());
    await waitFor("confirmed", async () => (await row(id)).chain_status === "confirmed");
  });
});
