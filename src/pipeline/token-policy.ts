// The token stage of the pipeline: what the calldata (and, when it ran, the simulation) says the
// transaction does with tokens, checked against the agent's token guardrails. Takes the agent, chain,
// sender and intent; returns the token outflows to check under the agent's spend lock and to record.
// Reads token decimals once per (chain, token) from the token and caches them in token_metadata, and
// the current allowance when an approval adds to it. RPC failures are 502s, never a guess.
import {
  AbiDecodingDataSizeTooSmallError,
  AbiDecodingZeroDataError,
  BaseError,
  ContractFunctionRevertedError,
  ContractFunctionZeroDataError,
  parseAbi,
  type PublicClient,
} from "viem";
import type { Chain } from "../chains/registry.js";
import type { AgentRow } from "../db/agents.js";
import type { Queryable } from "../db/pool.js";
import { badGateway } from "../errors.js";
import { erc20Transfers } from "../simulators/simulator.js";
import { parseMajor } from "../units.js";
import { decodeCall, type DecodedCall } from "./calldata.js";
import { toAllowlistOf, type Denial } from "./guardrails.js";
import {
  allowanceKey,
  allowancesNeeded,
  calldataOutflows,
  checkCalldata,
  mergeOutflows,
  tokensOf,
  UNLIMITED_APPROVAL,
  unknownCalldataOf,
  type CalldataPolicy,
  type SimLog,
  type TokenOutflow,
} from "./token-guardrails.js";

const DECIMALS_ABI = parseAbi(["function decimals() view returns (uint8)", "function symbol() view returns (string)"]);
const ALLOWANCE_ABI = parseAbi(["function allowance(address owner, address spender) view returns (uint256)"]);

export function calldataPolicyOf(agent: AgentRow): CalldataPolicy {
  return {
    toAllowlist: toAllowlistOf(agent),
    tokenAllowlist: agent.tx_token_allowlist.map((a) => a.toLowerCase()),
    unknownCalldata: unknownCalldataOf(agent),
    tokenLimits: Object.fromEntries(Object.entries(agent.tx_token_limits ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    unlimitedApprovalAllowlist: agent.tx_unlimited_approval_allowlist ?? [],
  };
}

const decimalsCache = new Map<string, number>();

/** The node answered, and the answer is that the contract has no usable decimals() (not a transport failure). */
function isContractAnswer(err: unknown): boolean {
  return (
    err instanceof BaseError &&
    err.walk(
      (e) =>
        e instanceof ContractFunctionRevertedError ||
        e instanceof ContractFunctionZeroDataError ||
        e instanceof AbiDecodingZeroDataError ||
        e instanceof AbiDecodingDataSizeTooSmallError,
    ) !== null
  );
}

/**
 * The token's decimals: memory, then token_metadata, then the token itself. A contract without a
 * decimals() (an NFT, or no contract) counts in raw units (0) and is not cached, so a token deployed
 * later is read again. A failed read (the RPC did not answer) is an error, never a cached 0: that
 * would turn a limit of "1.5" into 1.5 base units' worth of rounding and let fractional outflows vanish.
 */
export async function tokenDecimals(db: Queryable, client: PublicClient, chainId: number, token: string): Promise<number> {
  const key = `${chainId}:${token}`;
  const hit = decimalsCache.get(key);
  if (hit !== undefined) return hit;
  const row = (
    await db.query<{ decimals: number }>("SELECT decimals FROM token_metadata WHERE chain_id = $1 AND address = $2", [chainId, token])
  ).rows[0];
  let decimals = row?.decimals;
  if (decimals === undefined) {
    let symbol: string | null = null;
    try {
      decimals = Number(await client.readContract({ address: token as `0x${string}`, abi: DECIMALS_ABI, functionName: "decimals" }));
      symbol = await client.readContract({ address: token as `0x${string}`, abi: DECIMALS_ABI, functionName: "symbol" }).catch(() => null);
    } catch (err) {
      if (isContractAnswer(err)) return 0;
      throw badGateway(`Could not read the decimals of token ${token} from the chain's RPC endpoints.`, "rpc_unavailable");
    }
    if (!(decimals >= 0 && decimals <= 77)) decimals = 0;
    await db.query("INSERT INTO token_metadata (chain_id, address, decimals, symbol) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", [
      chainId,
      token,
      decimals,
      symbol?.slice(0, 32) ?? null,
    ]);
  }
  decimalsCache.set(key, decimals);
  return decimals;
}

/** What the chain says before an allowance increase: the allowance, and how many of the owner's transactions are mined. */
interface OnChainAllowance {
  allowance: bigint;
  mined: number;
}

async function readAllowance(client: PublicClient, token: string, owner: string, spender: string): Promise<OnChainAllowance> {
  try {
    // Both at one block: read at two heads, an increase mined in between would be in neither the
    // allowance nor the unmined transactions counted on top of it.
    const blockNumber = await client.getBlockNumber();
    const [allowance, mined] = await Promise.all([
      client
        .readContract({
          address: token as `0x${string}`,
          abi: ALLOWANCE_ABI,
          functionName: "allowance",
          args: [owner as `0x${string}`, spender as `0x${string}`],
          blockNumber,
        })
        // A token without allowance() cannot be told apart from one that hides it: assume the worst.
        .catch((err) => (isContractAnswer(err) ? UNLIMITED_APPROVAL : Promise.reject(err))),
      client.getTransactionCount({ address: owner as `0x${string}`, blockNumber }),
    ]);
    return { allowance, mined };
  } catch {
    throw badGateway(`Could not read the current allowance on token ${token} from the chain's RPC endpoints.`, "rpc_unavailable");
  }
}

/**
 * The allowance `spender` may have before an increase adds to it: the on-chain allowance, then what
 * the owner's signed but not yet mined transactions (nonce at or above the mined count) and `extra`
 * calldata (requests accepted earlier in the same commit group) do to it: increases added, approvals
 * taken as the new base when larger. Without this, three increases signed before the first is mined
 * would each see the same old allowance.
 */
async function allowanceAfterUnmined(
  db: Queryable,
  chainId: number,
  owner: string,
  token: string,
  spender: string,
  read: OnChainAllowance,
  extra: readonly string[],
): Promise<bigint> {
  const { rows } = await db.query<{ data: string }>(
    `SELECT data FROM transactions
      WHERE chain_id = $1 AND from_address = $2 AND to_address = $3 AND nonce >= $4
        AND status IN ('signed', 'sign_only', 'broadcast') AND data IS NOT NULL`,
    [chainId, owner.toLowerCase(), token, read.mined],
  );
  let base = read.allowance;
  let added = 0n;
  for (const data of [...rows.map((r) => r.data), ...extra]) {
    for (const e of effectsOf(decodeCall(token, data))) {
      if (e.type !== "approve" || e.spender !== spender) continue;
      if (e.mode === "increase") added += e.amount;
      else if (e.mode !== "decrease" && e.amount > base) base = e.amount;
    }
  }
  return base + added;
}

const effectsOf = (c: DecodedCall) => (c.kind === "token" ? c.effects : []);

/** An allowance increase that passed, to be checked again under the agent's spend lock (ApprovalLedger). */
export interface IncreaseRecheck {
  policy: CalldataPolicy;
  chainId: number;
  from: string;
  token: string;
  data: string;
  call: DecodedCall;
  decimals: Map<string, number>;
  reads: Map<string, OnChainAllowance>;
}

/**
 * Allowance increases checked again inside the commit transaction, under the agent's spend lock: the
 * check before the queue cannot see requests that were in flight at the same time. This one sees the
 * rows committed by earlier groups (on any replica: they held the same lock) and the increases accepted
 * before it in this group, so concurrent increases cannot add up past the cap.
 */
export class ApprovalLedger {
  private readonly accepted: Array<{ chainId: number; from: string; token: string; data: string }> = [];
  constructor(private readonly db: Queryable) {}

  async check(r: IncreaseRecheck): Promise<Denial | null> {
    const allowances = new Map<string, bigint>();
    for (const [key, read] of r.reads) {
      const [token, spender] = key.split("|") as [string, string];
      const extra = this.accepted.filter((a) => a.chainId === r.chainId && a.from === r.from && a.token === token).map((a) => a.data);
      allowances.set(key, await allowanceAfterUnmined(this.db, r.chainId, r.from, token, spender, read, extra));
    }
    const verdict = checkCalldata(r.policy, r.call, {
      decimals: (t) => r.decimals.get(t),
      allowance: (t, sp) => allowances.get(allowanceKey(t, sp)) ?? 0n,
    });
    return verdict === "simulate" ? null : verdict;
  }

  add(r: IncreaseRecheck): void {
    this.accepted.push({ chainId: r.chainId, from: r.from, token: r.token, data: r.data });
  }
}

export interface CalldataVerdict {
  call: DecodedCall;
  /** Tokens leaving the signing address according to the calldata. */
  outflows: TokenOutflow[];
  /** The agent's policy wants this call simulated before signing (unknown calldata). */
  simulate: boolean;
  denial: Denial | null;
  /** Allowance increases to check again under the agent's spend lock. */
  recheck?: IncreaseRecheck;
}

/** Decodes the calldata, reads what the checks need from the chain, and applies the checks that need no history. */
export async function checkIntentCalldata(
  db: Queryable,
  client: PublicClient,
  chain: Chain,
  agent: AgentRow,
  from: string,
  to: string,
  data: string | undefined,
): Promise<CalldataVerdict> {
  const policy = calldataPolicyOf(agent);
  const call = decodeCall(to, data);
  const decimals = new Map<string, number>();
  for (const token of tokensOf(call)) {
    if (policy.tokenLimits[token] !== undefined) decimals.set(token, await tokenDecimals(db, client, chain.chain_id, token));
  }
  // The current allowance only matters when the spender is not allowed unlimited approvals anyway.
  const owner = from.toLowerCase();
  const reads = new Map<string, OnChainAllowance>();
  const allowances = new Map<string, bigint>();
  for (const { token, spender } of allowancesNeeded(call)) {
    if (policy.unlimitedApprovalAllowlist.includes(spender)) continue;
    const read = await readAllowance(client, token, owner, spender);
    reads.set(allowanceKey(token, spender), read);
    allowances.set(allowanceKey(token, spender), await allowanceAfterUnmined(db, chain.chain_id, owner, token, spender, read, []));
  }
  const verdict = checkCalldata(policy, call, {
    decimals: (t) => decimals.get(t),
    allowance: (t, s) => allowances.get(allowanceKey(t, s)) ?? 0n,
  });
  const outflows = calldataOutflows(call, from, (t) => decimals.get(t));
  const recheck =
    reads.size > 0 && data
      ? { policy, chainId: chain.chain_id, from: owner, token: to.toLowerCase(), data, call, decimals, reads }
      : undefined;
  return { call, outflows, simulate: verdict === "simulate", denial: verdict === "simulate" ? null : verdict, recheck };
}

/**
 * Token outflows of the signing address in a simulation, in base units: the net of the ERC-20
 * Transfer logs when the simulator reports logs, and the reported balance changes (major units,
 * converted with the token's decimals) otherwise; the larger of the two per token.
 */
export async function simulatedOutflows(
  db: Queryable,
  client: PublicClient,
  chain: Chain,
  from: string,
  changes: Array<{ address: string; token: string; change: string }>,
  logs?: readonly SimLog[],
): Promise<TokenOutflow[]> {
  const self = from.toLowerCase();
  const out: TokenOutflow[] = [];
  if (logs) {
    const net = new Map<string, bigint>();
    for (const t of erc20Transfers(logs)) {
      if (t.from === self) net.set(t.token, (net.get(t.token) ?? 0n) - t.amount);
      if (t.to === self) net.set(t.token, (net.get(t.token) ?? 0n) + t.amount);
    }
    for (const [token, d] of net) {
      if (d < 0n) out.push({ token, amount: -d, decimals: await tokenDecimals(db, client, chain.chain_id, token) });
    }
  }
  for (const c of changes) {
    if (c.address.toLowerCase() !== self || !c.token.startsWith("0x") || !c.change.startsWith("-")) continue;
    const token = c.token.toLowerCase();
    const decimals = await tokenDecimals(db, client, chain.chain_id, token);
    const amount = parseMajor(c.change.slice(1), Math.max(decimals, 0));
    if (amount !== undefined && amount > 0n) out.push({ token, amount, decimals });
  }
  return mergeOutflows(out, []);
}
