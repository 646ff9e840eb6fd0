// Fees for a replacement (same nonce). Policy: the tip and the fee cap each at least the highest ever
// signed for this nonce × 1.10, rounded up (nodes refuse a replacement below +10%, geth's
// `txpool.pricebump`), raised to what the node now estimates, and capped by the configured maximum
// fee per gas. A replacement that the cap would push below +10% is not made: it could only be refused.
// bumpFees is pure; estimateReplacementFees asks the node and gives undefined when it cannot.
import type { PublicClient } from "viem";
import type { Chain } from "../chains/registry.js";
import type { Fees } from "../pipeline/fees.js";
import type { AttemptRow } from "../db/attempts.js";

/** ceil(x × 1.10) */
export const bumped = (x: bigint): bigint => (x * 110n + 99n) / 100n;
const max = (...xs: bigint[]) => xs.reduce((a, b) => (a > b ? a : b));

export type BumpResult = { ok: true; fees: Fees } | { ok: false; reason: string };

export function bumpFees(previous: Fees, estimate: Fees | undefined, cap: bigint): BumpResult {
  if (previous.type === "legacy") {
    const min = bumped(previous.gasPrice);
    if (min > cap)
      return { ok: false, reason: `a replacement needs a gas price of at least ${min} wei, above the configured maximum of ${cap} wei` };
    const est = estimate?.type === "legacy" ? estimate.gasPrice : estimate?.type === "eip1559" ? estimate.maxFeePerGas : 0n;
    const gasPrice = max(min, est);
    return { ok: true, fees: { type: "legacy", gasPrice: gasPrice > cap ? cap : gasPrice } };
  }
  const minTip = bumped(previous.maxPriorityFeePerGas);
  const minFee = bumped(previous.maxFeePerGas);
  if (minFee > cap)
    return {
      ok: false,
      reason: `a replacement needs a max fee per gas of at least ${minFee} wei, above the configured maximum of ${cap} wei`,
    };
  let tip = minTip;
  let fee = minFee;
  if (estimate?.type === "eip1559") {
    tip = max(tip, estimate.maxPriorityFeePerGas);
    // The estimate's cap is (base fee × margin) + its tip: keep that margin above our own tip.
    fee = max(fee, estimate.maxFeePerGas - estimate.maxPriorityFeePerGas + tip);
  } else if (estimate?.type === "legacy") {
    fee = max(fee, estimate.gasPrice);
  }
  fee = max(fee, tip);
  if (fee > cap) fee = cap;
  if (tip > fee) tip = fee;
  return { ok: true, fees: { type: "eip1559", maxFeePerGas: fee, maxPriorityFeePerGas: tip } };
}

/** The highest fees ever signed for this nonce, field by field: a bump must beat every one of them. */
export function highestFees(attempts: AttemptRow[], type: "legacy" | "eip1559"): Fees {
  const big = (v: string | null) => (v === null ? 0n : BigInt(v));
  if (type === "legacy") return { type, gasPrice: max(0n, ...attempts.map((a) => big(a.gas_price))) };
  return {
    type,
    maxFeePerGas: max(0n, ...attempts.map((a) => big(a.max_fee_per_gas))),
    maxPriorityFeePerGas: max(0n, ...attempts.map((a) => big(a.max_priority_fee_per_gas))),
  };
}

export async function estimateReplacementFees(client: PublicClient, chain: Chain, type: "legacy" | "eip1559"): Promise<Fees | undefined> {
  try {
    if (type === "eip1559" && chain.eip1559) {
      const f = await client.estimateFeesPerGas({ type: "eip1559", chain: client.chain });
      return { type: "eip1559", maxFeePerGas: f.maxFeePerGas, maxPriorityFeePerGas: f.maxPriorityFeePerGas };
    }
    return { type: "legacy", gasPrice: await client.getGasPrice() };
  } catch {
    return undefined; // the +10% floor alone still makes a valid replacement
  }
}
