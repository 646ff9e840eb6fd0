// The Simulator interface and what its three implementations (anvil fork, Tenderly, plain RPC) share:
// revert-reason decoding, ERC-20 Transfer log parsing, token metadata, and balance-change bookkeeping.
//
// A simulator runs a list of calls in order, each seeing the state the previous ones left, and
// answers one result per call. It never touches the real chain and never signs. Failures of the
// simulation itself (a revert, an unreachable simulator) are results, not exceptions: `simulate`
// throws only on programming errors, and the pipeline turns even those into `status: "error"`.
import { checksumAddress, decodeAbiParameters, decodeFunctionResult, encodeFunctionData, hexToString, type Address, type Hex } from "viem";
import type { Chain } from "../chains/registry.js";
import { safeMessage } from "../chains/node-errors.js";
import { formatMajor } from "../units.js";

export type SimulatorKind = "anvil" | "tenderly" | "rpc";

/** One call to simulate. Fee fields are optional: without them the simulator uses the chain's current price. */
export interface SimCall {
  from: Address;
  to: Address;
  value: bigint;
  data?: Hex;
  /** Gas limit; without it the simulator estimates (and a call that cannot be estimated reverts). */
  gas?: bigint;
  gasPrice?: bigint;
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
}

export interface SimOptions {
  /** Overall deadline for the whole list of calls. */
  timeoutMs?: number;
}

/** The reference BalanceChange: amounts in major units as decimal strings, `change` signed. */
export interface BalanceChange {
  address: string;
  /** The native symbol ("ETH") or the token contract's address. */
  token: string;
  token_symbol: string;
  before?: string;
  after?: string;
  change: string;
}

export type SimStatus = "success" | "reverted" | "error";

export interface SimResult {
  /** The simulator's id for this call (Tenderly's simulation id, else a UUID). */
  id: string;
  status: SimStatus;
  gasUsed?: bigint;
  balanceChanges: BalanceChange[];
  /** Decoded: the Error(string) text, "Panic(0x12): …", "out of gas", or the raw custom error hex. */
  revertReason?: string;
  /** Why the simulation could not run (status "error"): a safe, short message. */
  error?: string;
  dashboardUrl?: string;
  /** The logs of a successful call, when the simulator sees them (the guardrails check their parties). */
  logs?: RawLog[];
}

export interface Simulator {
  readonly kind: SimulatorKind;
  simulate(chain: Chain, calls: SimCall[], opts?: SimOptions): Promise<SimResult[]>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------
// Revert reasons

const ERROR_STRING = "0x08c379a0";
const PANIC = "0x4e487b71";

const PANIC_CODES: Record<number, string> = {
  0x00: "generic compiler panic",
  0x01: "assertion failed",
  0x11: "arithmetic overflow or underflow",
  0x12: "division or modulo by zero",
  0x21: "invalid enum value",
  0x22: "invalid storage byte array encoding",
  0x31: "pop on an empty array",
  0x32: "array index out of bounds",
  0x41: "out of memory",
  0x51: "call to an uninitialised internal function",
};

/**
 * Turns revert data (and the tracer's error text, for reverts without data) into the reason shown
 * to clients: Error(string) → the string; Panic(uint256) → "Panic(0x12): division or modulo by zero";
 * any other data → the raw hex (a custom error: selector + arguments); no data → "out of gas" when
 * the tracer says so, else the tracer's text or "execution reverted".
 */
export function decodeRevertReason(output: string | undefined | null, errorText?: string | null): string {
  const data = typeof output === "string" && /^0x([0-9a-fA-F]{2})*$/.test(output) ? (output.toLowerCase() as Hex) : "0x";
  if (data.startsWith(ERROR_STRING) && data.length >= 10 + 128) {
    try {
      const [reason] = decodeAbiParameters([{ type: "string" }], `0x${data.slice(10)}`);
      return reason;
    } catch {
      return data;
    }
  }
  if (data.startsWith(PANIC) && data.length === 10 + 64) {
    const code = BigInt(`0x${data.slice(10)}`);
    const name = code <= 0xffn ? PANIC_CODES[Number(code)] : undefined;
    return `Panic(0x${code.toString(16).padStart(2, "0")}): ${name ?? "unknown panic code"}`;
  }
  if (data.length > 2) return data;
  const text = (errorText ?? "").trim();
  if (/out of gas|gas required exceeds/i.test(text)) return "out of gas";
  if (!text || /^execution reverted$/i.test(text) || /^reverted$/i.test(text)) return "execution reverted";
  return safeMessage(text);
}

// ---------------------------------------------------------------------------------------------------
// ERC-20 Transfer logs and token metadata

/** keccak256("Transfer(address,address,uint256)"). ERC-721 uses the same topic with 4 topics. */
export const TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
const ZERO = "0x0000000000000000000000000000000000000000";

export interface RawLog {
  address: string;
  topics: readonly string[];
  data: string;
}

export interface TokenTransfer {
  token: Address;
  from: Address;
  to: Address;
  amount: bigint;
}

/** ERC-20 Transfer events among `logs` (three topics and a 32-byte amount; ERC-721 has four topics). */
export function erc20Transfers(logs: readonly RawLog[]): TokenTransfer[] {
  const out: TokenTransfer[] = [];
  for (const l of logs) {
    if (l.topics.length !== 3 || l.topics[0]?.toLowerCase() !== TRANSFER_TOPIC) continue;
    if (!/^0x[0-9a-fA-F]{64}$/.test(l.data)) continue;
    out.push({
      token: l.address.toLowerCase() as Address,
      from: `0x${l.topics[1]!.slice(26)}`.toLowerCase() as Address,
      to: `0x${l.topics[2]!.slice(26)}`.toLowerCase() as Address,
      amount: BigInt(l.data),
    });
  }
  return out;
}

/** The holders whose token balance a list of transfers touches (the zero address of mints/burns excluded). */
export function holdersByToken(transfers: TokenTransfer[]): Map<Address, Set<Address>> {
  const m = new Map<Address, Set<Address>>();
  for (const t of transfers) {
    const set = m.get(t.token) ?? new Set<Address>();
    if (t.from !== ZERO) set.add(t.from);
    if (t.to !== ZERO) set.add(t.to);
    m.set(t.token, set);
  }
  return m;
}

/** Net change per holder per token from a list of transfers. */
export function netTokenDeltas(transfers: TokenTransfer[]): Map<string, bigint> {
  const m = new Map<string, bigint>();
  const add = (token: Address, holder: Address, d: bigint) => {
    if (holder === ZERO) return;
    const k = `${token}|${holder}`;
    m.set(k, (m.get(k) ?? 0n) + d);
  };
  for (const t of transfers) {
    add(t.token, t.from, -t.amount);
    add(t.token, t.to, t.amount);
  }
  return m;
}

export const ERC20_ABI = [
  { type: "function", name: "symbol", stateMutability: "view", inputs: [], outputs: [{ type: "string" }] },
  { type: "function", name: "decimals", stateMutability: "view", inputs: [], outputs: [{ type: "uint8" }] },
  { type: "function", name: "balanceOf", stateMutability: "view", inputs: [{ type: "address" }], outputs: [{ type: "uint256" }] },
] as const;

export interface TokenMeta {
  symbol: string;
  decimals: number;
}

/** A raw `eth_call`: returns the output bytes, or throws. */
export type EthCall = (to: Address, data: Hex, block?: bigint | "latest") => Promise<Hex>;

export async function readBalanceOf(call: EthCall, token: Address, holder: Address, block?: bigint | "latest"): Promise<bigint> {
  const out = await call(token, encodeFunctionData({ abi: ERC20_ABI, functionName: "balanceOf", args: [holder] }), block);
  return decodeFunctionResult({ abi: ERC20_ABI, functionName: "balanceOf", data: out });
}

/**
 * Reads symbol() and decimals() once per (chain, token); the answer is cached for the life of the
 * simulator. A symbol returned as bytes32 (older tokens) is decoded too; a token without decimals()
 * is shown in its raw units (decimals 0) rather than guessed.
 */
export class TokenMetaCache {
  private readonly cache = new Map<string, Promise<TokenMeta>>();

  get(chainId: number, token: Address, call: EthCall): Promise<TokenMeta> {
    const key = `${chainId}:${token.toLowerCase()}`;
    let hit = this.cache.get(key);
    if (!hit) {
      hit = readTokenMeta(token, call);
      this.cache.set(key, hit);
      // A transport failure must not be cached forever.
      hit.catch(() => this.cache.delete(key));
    }
    return hit;
  }
}

async function readTokenMeta(token: Address, call: EthCall): Promise<TokenMeta> {
  const [symbolOut, decimalsOut] = await Promise.all([
    call(token, encodeFunctionData({ abi: ERC20_ABI, functionName: "symbol" })).catch(() => "0x" as Hex),
    call(token, encodeFunctionData({ abi: ERC20_ABI, functionName: "decimals" })).catch(() => "0x" as Hex),
  ]);
  let symbol = "UNKNOWN";
  try {
    symbol = decodeFunctionResult({ abi: ERC20_ABI, functionName: "symbol", data: symbolOut });
  } catch {
    if (symbolOut.length === 66) {
      const s = hexToString(symbolOut, { size: 32 }).replace(/\0+$/, "");
      if (/^[\x20-\x7e]+$/.test(s)) symbol = s;
    }
  }
  let decimals = 0;
  try {
    const d = decodeFunctionResult({ abi: ERC20_ABI, functionName: "decimals", data: decimalsOut });
    if (d <= 77) decimals = Number(d);
  } catch {
    // not an ERC-20 decimals(): raw units
  }
  return { symbol: symbol.slice(0, 32), decimals };
}

// ---------------------------------------------------------------------------------------------------
// Balance changes

/** Builds a BalanceChange in major units, or undefined when nothing changed. */
export function balanceChange(
  address: string,
  asset: { token: string; symbol: string; decimals: number },
  before: bigint | undefined,
  after: bigint | undefined,
  delta?: bigint,
): BalanceChange | undefined {
  const change = delta ?? (before !== undefined && after !== undefined ? after - before : undefined);
  if (change === undefined || change === 0n) return undefined;
  const out: BalanceChange = {
    address: checksumAddress(address as Address),
    token: asset.token.startsWith("0x") ? checksumAddress(asset.token as Address) : asset.token,
    token_symbol: asset.symbol,
    change: formatMajor(change, asset.decimals),
  };
  if (before !== undefined) out.before = formatMajor(before, asset.decimals);
  if (after !== undefined) out.after = formatMajor(after, asset.decimals);
  // Keep the documented key order: address, token, token_symbol, before, after, change.
  return {
    address: out.address,
    token: out.token,
    token_symbol: out.token_symbol,
    ...(out.before !== undefined ? { before: out.before } : {}),
    ...(out.after !== undefined ? { after: out.after } : {}),
    change: out.change,
  };
}

/** Native changes first (sender first), then tokens; stable otherwise. */
export function orderChanges(changes: BalanceChange[], sender: string): BalanceChange[] {
  const s = sender.toLowerCase();
  const rank = (c: BalanceChange) => (c.token.startsWith("0x") ? 2 : 0) + (c.address.toLowerCase() === s ? 0 : 1);
  return changes
    .map((c, i) => ({ c, i }))
    .sort((a, b) => rank(a.c) - rank(b.c) || a.i - b.i)
    .map((x) => x.c);
}

export function nativeAsset(chain: Chain): { token: string; symbol: string; decimals: number } {
  return { token: chain.native_currency, symbol: chain.native_currency, decimals: 18 };
}

/** A result for a call that could not be simulated. */
export function errorResult(id: string, message: string): SimResult {
  return { id, status: "error", balanceChanges: [], error: message };
}

export const hex = (n: bigint) => `0x${n.toString(16)}` as Hex;
