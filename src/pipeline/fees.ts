// Gas and fees for an intent. Takes: the chain, its client, the intent and the sender. Returns the
// gas limit and fee fields to sign with: the caller's when given, else estimates (EIP-1559 where the
// chain supports it). Throws 422 when the node says the call cannot succeed, 502 when the node
// cannot be asked. Fee estimates are cached per chain for a second: they move per block, not per call.
import type { PublicClient } from "viem";
import type { Chain } from "../chains/registry.js";
import { gasEstimationFailed } from "../errors.js";
import { rpcFailure } from "../chains/node-errors.js";
import type { Intent } from "./request.js";

export type Fees = { type: "legacy"; gasPrice: bigint } | { type: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint };

/** The fee fields of a viem transaction for these fees: type 0 (gasPrice) or type 2 (EIP-1559). */
export function feeFields(fees: Fees) {
  return fees.type === "legacy"
    ? { type: "legacy" as const, gasPrice: fees.gasPrice }
    : { type: "eip1559" as const, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas };
}

/** The fee columns of a transactions row for these fees. */
export function feeColumns(fees: Fees) {
  return {
    tx_type: fees.type,
    gas_price: fees.type === "legacy" ? fees.gasPrice : null,
    max_fee_per_gas: fees.type === "eip1559" ? fees.maxFeePerGas : null,
    max_priority_fee_per_gas: fees.type === "eip1559" ? fees.maxPriorityFeePerGas : null,
  };
}

/** Worst-case fee of a signature: gas_limit × max fee per gas (or gas price). */
export function worstCaseFee(gas: bigint, fees: Fees): bigint {
  return gas * (fees.type === "legacy" ? fees.gasPrice : fees.maxFeePerGas);
}

/** The chain's fee market as read for this second: what the service would pay, and the bounds' inputs. */
export interface FeeMarket {
  /** The service's own estimate. */
  estimate: Fees;
  /** The current price per gas: base fee + the node's tip estimate (EIP-1559), or the gas price. */
  price: bigint;
  /** The latest block's gas limit. */
  blockGasLimit: bigint;
}

/** Per-chain fee bounds: a cap on the fee per gas, and a multiple of the current price. */
export interface FeeBounds {
  maxFeePerGasWei: bigint;
  priceMultiple: number;
}

const FEE_CACHE_MS = 1_000;
const marketCache = new WeakMap<PublicClient, { at: number; market: Promise<FeeMarket> }>();

/** Read once a second per chain (a block and a fee estimate, one JSON-RPC batch), shared by all requests. */
export function readFeeMarket(chain: Chain, client: PublicClient): Promise<FeeMarket> {
  const hit = marketCache.get(client);
  if (hit && Date.now() - hit.at < FEE_CACHE_MS) return hit.market;
  const market = (async (): Promise<FeeMarket> => {
    try {
      if (chain.eip1559) {
        const [block, f] = await Promise.all([
          client.getBlock({ blockTag: "latest" }),
          client.estimateFeesPerGas({ type: "eip1559", chain: client.chain }),
        ]);
        const estimate: Fees = { type: "eip1559", maxFeePerGas: f.maxFeePerGas, maxPriorityFeePerGas: f.maxPriorityFeePerGas };
        return { estimate, price: (block.baseFeePerGas ?? 0n) + f.maxPriorityFeePerGas, blockGasLimit: block.gasLimit };
      }
      const [block, gasPrice] = await Promise.all([client.getBlock({ blockTag: "latest" }), client.getGasPrice()]);
      return { estimate: { type: "legacy", gasPrice }, price: gasPrice, blockGasLimit: block.gasLimit };
    } catch (err) {
      marketCache.delete(client);
      throw rpcFailure(err, `estimate fees on ${chain.name}`);
    }
  })();
  marketCache.set(client, { at: Date.now(), market });
  return market;
}

/** The caller's fees when given, else the service's estimate; with the market the bounds are checked against. */
export async function resolveFees(chain: Chain, client: PublicClient, intent: Intent): Promise<{ fees: Fees; market: FeeMarket }> {
  const market = await readFeeMarket(chain, client);
  if (intent.gasPrice !== undefined) return { fees: { type: "legacy", gasPrice: intent.gasPrice }, market };
  if (intent.maxFeePerGas !== undefined && intent.maxPriorityFeePerGas !== undefined) {
    return { fees: { type: "eip1559", maxFeePerGas: intent.maxFeePerGas, maxPriorityFeePerGas: intent.maxPriorityFeePerGas }, market };
  }
  // A type the caller chose that is not the chain's default is estimated on its own (the market holds the default).
  const legacy = intent.txType === 0 || intent.txType === 1 ? true : intent.txType === 2 || intent.txType === 4 ? false : !chain.eip1559;
  if (legacy === chain.eip1559) return { fees: await estimateFees(chain, client, legacy), market };
  return { fees: market.estimate, market };
}

async function estimateFees(chain: Chain, client: PublicClient, legacy: boolean): Promise<Fees> {
  try {
    if (!legacy) {
      const f = await client.estimateFeesPerGas({ type: "eip1559", chain: client.chain });
      return { type: "eip1559", maxFeePerGas: f.maxFeePerGas, maxPriorityFeePerGas: f.maxPriorityFeePerGas };
    }
    return { type: "legacy", gasPrice: await client.getGasPrice() };
  } catch (err) {
    throw rpcFailure(err, `estimate fees on ${chain.name}`);
  }
}

/** The most any signature on this chain may offer per gas now: the cap, and the multiple of the current price. */
export function feePerGasCeiling(bounds: FeeBounds, market: FeeMarket): bigint {
  // The multiple in thousandths, so fractional multiples stay exact in bigint.
  const byPrice = (market.price * BigInt(Math.round(bounds.priceMultiple * 1000))) / 1000n;
  // Never below the service's own estimate: the bound is for callers, the estimate must always pass.
  const est = market.estimate.type === "legacy" ? market.estimate.gasPrice : market.estimate.maxFeePerGas;
  const ceiling = byPrice > est ? byPrice : est;
  return ceiling < bounds.maxFeePerGasWei ? ceiling : bounds.maxFeePerGasWei;
}

/** An explicit gas_limit may exceed the estimate by this much (a call's gas varies with state between estimate and mining). */
export const GAS_MARGIN_PERCENT = 50n;
/** The largest explicit gas_limit accepted when the node cannot estimate the call (without tx_max_gas_limit). */
export const GAS_LIMIT_WITHOUT_ESTIMATE = 100_000n;

/**
 * The gas limit to sign with. Without one from the caller: the node's estimate. With one: checked
 * against the estimate + GAS_MARGIN_PERCENT (or the agent's tx_max_gas_limit when the operator set
 * one) and never above the block gas limit. Returns the limit, or the bound it exceeded.
 */
export async function resolveGasLimit(
  chain: Chain,
  client: PublicClient,
  intent: Intent,
  from: `0x${string}`,
  opts: { maxGasLimit: bigint | null; blockGasLimit: () => Promise<bigint> } = { maxGasLimit: null, blockGasLimit: async () => 0n },
): Promise<{ gas: bigint; exceeds?: { limit: bigint; why: string } }> {
  if (intent.gasLimit === undefined || opts.maxGasLimit === null) {
    let estimate: bigint;
    try {
      estimate = intent.authorizations?.length
        ? await estimateSetCodeGas(client, intent, from)
        : await client.estimateGas({
            account: from,
            to: intent.to,
            value: intent.valueWei,
            data: intent.data,
            accessList: intent.accessList,
          });
    } catch (err) {
      const failure = rpcFailure(err, `estimate gas on ${chain.name}`);
      if (failure.status >= 500) throw failure;
      // The node cannot estimate (the call reverts, the sender cannot pay): a caller's own limit is still
      // signed, as the node decides, but only up to a small bound; its worst case is counted as usual.
      if (intent.gasLimit !== undefined)
        return boundGas(
          intent.gasLimit,
          GAS_LIMIT_WITHOUT_ESTIMATE,
          "the bound for calls the node cannot estimate",
          await opts.blockGasLimit(),
        );
      throw gasEstimationFailed(failure.detail);
    }
    if (intent.gasLimit === undefined) return { gas: estimate };
    const allowed = estimate + (estimate * GAS_MARGIN_PERCENT + 99n) / 100n;
    return boundGas(intent.gasLimit, allowed, `the estimate (${estimate}) + ${GAS_MARGIN_PERCENT} %`, await opts.blockGasLimit());
  }
  return boundGas(intent.gasLimit, opts.maxGasLimit, "tx_max_gas_limit", await opts.blockGasLimit());
}

function boundGas(
  gas: bigint,
  allowed: bigint,
  why: string,
  blockGasLimit: bigint,
): { gas: bigint; exceeds?: { limit: bigint; why: string } } {
  if (blockGasLimit > 0n && gas > blockGasLimit && allowed >= blockGasLimit)
    return { gas, exceeds: { limit: blockGasLimit, why: "the block gas limit" } };
  if (gas > allowed) return { gas, exceeds: { limit: allowed, why } };
  return { gas };
}

/** Intrinsic gas of each EIP-7702 authorization (PER_EMPTY_ACCOUNT_COST), charged before execution. */
export const AUTHORIZATION_GAS = 25_000n;

/**
 * A type-4 transaction runs with the sender's code already delegated, which the node cannot see before
 * it is sent: estimate with the last delegate's code put at the sender by a state override, then add
 * each authorization's intrinsic cost.
 */
async function estimateSetCodeGas(client: PublicClient, intent: Intent, from: `0x${string}`): Promise<bigint> {
  const auths = intent.authorizations!;
  const delegate = auths[auths.length - 1].delegate;
  const code = /^0x0{40}$/.test(delegate) ? undefined : await client.getCode({ address: delegate });
  const gas = await client.estimateGas({
    account: from,
    to: intent.to,
    value: intent.valueWei,
    data: intent.data,
    accessList: intent.accessList,
    stateOverride: code ? [{ address: from, code }] : undefined,
  });
  return gas + AUTHORIZATION_GAS * BigInt(auths.length);
}
