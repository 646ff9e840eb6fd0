// Gas and fees for an intent. Takes: the chain, its client, the intent and the sender. Returns the
// gas limit and fee fields to sign with: the caller's when given, else estimates (EIP-1559 where the
// chain supports it). Throws 422 when the node says the call cannot succeed, 502/503 when the node
// cannot be asked. Fee estimates are cached per chain for a second: they move per block, not per call.
import type { PublicClient } from "viem";
import type { Chain } from "../chains/registry.js";
import { ServiceError } from "../errors.js";
import { rpcFailure } from "./rpc-errors.js";
import type { Intent } from "./request.js";

export type Fees =
  | { type: "legacy"; gasPrice: bigint }
  | { type: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint };

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

const FEE_CACHE_MS = 1_000;
const feeCache = new WeakMap<PublicClient, { at: number; fees: Promise<Fees> }>();

export async function resolveFees(chain: Chain, client: PublicClient, intent: Intent): Promise<Fees> {
  if (intent.gasPrice !== undefined) return { type: "legacy", gasPrice: intent.gasPrice };
  if (intent.maxFeePerGas !== undefined && intent.maxPriorityFeePerGas !== undefined) {
    return { type: "eip1559", maxFeePerGas: intent.maxFeePerGas, maxPriorityFeePerGas: intent.maxPriorityFeePerGas };
  }
  // A type the caller chose that is not the chain's default is estimated on its own (the cache holds the default).
  const legacy = intent.txType === 0 || intent.txType === 1 ? true : intent.txType === 2 || intent.txType === 4 ? false : !chain.eip1559;
  if (legacy === chain.eip1559) return estimateFees(chain, client, legacy);
  const hit = feeCache.get(client);
  if (hit && Date.now() - hit.at < FEE_CACHE_MS) return hit.fees;
  const fees = estimateFees(chain, client, legacy).catch((err) => {
    feeCache.delete(client);
    throw err;
  });
  feeCache.set(client, { at: Date.now(), fees });
  return fees;
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

export async function resolveGasLimit(chain: Chain, client: PublicClient, intent: Intent, from: `0x${string}`): Promise<bigint> {
  if (intent.gasLimit !== undefined) return intent.gasLimit;
  try {
    if (intent.authorizations?.length) return await estimateSetCodeGas(client, intent, from);
    return await client.estimateGas({ account: from, to: intent.to, value: intent.valueWei, data: intent.data, accessList: intent.accessList });
  } catch (err) {
    const failure = rpcFailure(err, `estimate gas on ${chain.name}`);
    if (failure.status >= 500) throw failure;
    throw new ServiceError("gas_estimation_failed", 422, `Gas estimation failed: ${failure.detail}`);
  }
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
    account: from, to: intent.to, value: intent.valueWei, data: intent.data, accessList: intent.accessList,
    stateOverride: code ? [{ address: from, code }] : undefined,
  });
  return gas + AUTHORIZATION_GAS * BigInt(auths.length);
}
