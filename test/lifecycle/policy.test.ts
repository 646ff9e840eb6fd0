// The pure policies of the tracker, without I/O: the fee bump of a replacement, and the nonce gap plan.
import { parseGwei } from "viem";
import { describe, expect, it } from "vitest";
import type { AttemptRow } from "../../src/db/attempts.js";
import { bumped, bumpFees, highestFees } from "../../src/tracker/fee-bump.js";
import { planGapRepair, type GapView } from "../../src/tracker/gaps.js";
import { RpcHealth } from "../../src/chains/clients.js";

const g = (x: string) => parseGwei(x);
const eip = (fee: string, tip: string) => ({ type: "eip1559" as const, maxFeePerGas: g(fee), maxPriorityFeePerGas: g(tip) });

describe("fee bump", () => {
  it("rounds ×1.10 up", () => {
    expect(bumped(100n)).toBe(110n);
    expect(bumped(101n)).toBe(112n); // 111.1 → 112
    expect(bumped(1n)).toBe(2n);
    expect(bumped(0n)).toBe(0n);
  });

  it("raises tip and cap each by at least 10% when the node's estimate is lower", () => {
    const r = bumpFees(eip("2", "1"), eip("1.5", "0.5"), g("500"));
    expect(r).toEqual({ ok: true, fees: eip("2.2", "1.1") });
  });

  it("follows the node's estimate when it is higher, keeping the estimate's base-fee margin above the tip", () => {
    const r = bumpFees(eip("2", "1"), eip("121", "1"), g("500"));
    expect(r).toEqual({ ok: true, fees: { type: "eip1559", maxFeePerGas: g("121.1"), maxPriorityFeePerGas: g("1.1") } });
  });

  it("caps the fee at the configured maximum, and refuses when the cap is below +10%", () => {
    expect(bumpFees(eip("2", "1"), eip("900", "3"), g("100"))).toEqual({ ok: true, fees: eip("100", "3") });
    const no = bumpFees(eip("95", "1"), undefined, g("100"));
    expect(no.ok).toBe(false);
    expect(!no.ok && no.reason).toMatch(/above the configured maximum/);
  });

  it("bumps legacy gas prices the same way", () => {
    expect(bumpFees({ type: "legacy", gasPrice: g("3") }, { type: "legacy", gasPrice: g("1") }, g("500"))).toEqual({
      ok: true,
      fees: { type: "legacy", gasPrice: g("3.3") },
    });
    expect(bumpFees({ type: "legacy", gasPrice: g("3") }, { type: "legacy", gasPrice: g("50") }, g("40"))).toEqual({
      ok: true,
      fees: { type: "legacy", gasPrice: g("40") },
    });
  });

  it("starts from the highest fees ever signed for the nonce, failed attempts included", () => {
    const a = (fee: string, tip: string) =>
      ({ max_fee_per_gas: g(fee).toString(), max_priority_fee_per_gas: g(tip).toString(), gas_price: null }) as AttemptRow;
    expect(highestFees([a("2", "1"), a("5", "0.5"), a("3", "2")], "eip1559")).toEqual(eip("5", "2"));
  });
});

describe("nonce gap plan", () => {
  const now = 1_000_000;
  const view = (v: Partial<GapView>): GapView => ({
    latest: 0n,
    pending: 0n,
    next: 0n,
    nextUpdatedAt: now,
    rows: [],
    released: [],
    now,
    boundMs: 1000,
    maxFills: 16,
    ...v,
  });
  const live = (nonce: number, at = now - 5000) => ({ nonce: BigInt(nonce), status: "broadcast", chain_status: "unconfirmed", at });

  it("fills a gap below a waiting transaction once the bound has passed", () => {
    expect(planGapRepair(view({ latest: 5n, pending: 5n, next: 7n, rows: [live(6)] }))).toEqual({ fill: [5n] });
  });

  it("waits for the bound, counted from the later of the release and the oldest waiting transaction", () => {
    expect(planGapRepair(view({ latest: 5n, pending: 5n, next: 7n, rows: [live(6, now - 200)] })).fill).toEqual([]);
    expect(
      planGapRepair(view({ latest: 5n, pending: 5n, next: 7n, rows: [live(6)], released: [{ nonce: 5n, at: now - 100 }] })).fill,
    ).toEqual([]);
  });

  it("leaves nonces the node already holds (below its pending count) and live ones alone", () => {
    expect(planGapRepair(view({ latest: 5n, pending: 8n, next: 9n, rows: [live(5), live(8)] })).fill).toEqual([]);
    expect(planGapRepair(view({ latest: 5n, pending: 6n, next: 9n, rows: [live(5), live(8)] })).fill).toEqual([6n, 7n]);
  });

  it("counts a dropped transaction's nonce as a gap, and a young sign-only one as held", () => {
    const rows = [
      { nonce: 5n, status: "broadcast", chain_status: "dropped", at: now - 5000 },
      { nonce: 6n, status: "sign_only", chain_status: null, at: now - 10 },
      live(7),
    ];
    expect(planGapRepair(view({ latest: 5n, pending: 5n, next: 8n, rows })).fill).toEqual([5n]);
  });

  it("brings a drifted next nonce down to what is live or pending, once nothing was reserved for the bound", () => {
    expect(planGapRepair(view({ latest: 3n, pending: 3n, next: 9n, nextUpdatedAt: now - 5000 }))).toEqual({ fill: [], reconcileTo: 3n });
    expect(planGapRepair(view({ latest: 3n, pending: 4n, next: 9n, nextUpdatedAt: now - 5000, rows: [live(5)] }))).toEqual({
      fill: [4n],
      reconcileTo: 6n,
    });
    expect(planGapRepair(view({ latest: 3n, pending: 3n, next: 9n, nextUpdatedAt: now - 10 })).reconcileTo).toBeUndefined();
  });

  it("fills at most maxFills gaps a pass", () => {
    expect(planGapRepair(view({ latest: 0n, pending: 0n, next: 101n, rows: [live(100)], maxFills: 16 })).fill).toHaveLength(16);
  });
});

describe("RPC endpoint health", () => {
  it("ranks failing URLs last for a cooldown that doubles, and forgets a failure on success", () => {
    const h = new RpcHealth();
    const urls = ["a", "b", "c"];
    expect(h.rank(urls)).toEqual([0, 1, 2]);
    h.failed("a", "unreachable");
    expect(h.rank(urls)).toEqual([1, 2, 0]);
    h.failed("b", "timeout");
    h.failed("b", "timeout");
    expect(h.rank(urls)).toEqual([2, 0, 1]); // a recovers sooner than b
    h.succeeded("a");
    expect(h.rank(urls)).toEqual([0, 2, 1]);
    expect(h.snapshot(urls)[1]).toMatchObject({ healthy: false, consecutive_failures: 2, last_error: "timeout" });
  });
});

describe("stuck threshold per chain", () => {
  it("the local anvil chain uses LOCAL_CHAIN_STUCK_AFTER_SECONDS (or STUCK_AFTER_SECONDS when smaller); other chains the global one", async () => {
    const { loadConfig } = await import("../../src/config.js");
    const { trackerOptions } = await import("../../src/tracker/tracker.js");
    const byDefault = trackerOptions(loadConfig({}));
    expect(byDefault.stuckAfterMs).toBe(60_000);
    expect(byDefault.stuckAfterMsByChain).toEqual({ local: 5_000 });
    expect(trackerOptions(loadConfig({ STUCK_AFTER_SECONDS: "3" })).stuckAfterMsByChain).toEqual({ local: 3_000 });
    expect(trackerOptions(loadConfig({ LOCAL_CHAIN_STUCK_AFTER_SECONDS: "30" })).stuckAfterMsByChain).toEqual({ local: 30_000 });
    expect(trackerOptions(loadConfig({ LOCAL_CHAIN: "off" })).stuckAfterMsByChain).toEqual({});
  });
});
