// The token stage of the pipeline: what the calldata (and, when it ran, the simulation) says the
// transaction does with tokens, checked against the agent's token guardrails. Takes the agent, chain,
// sender and intent; returns the token outflows to check under the agent's spend lock and to record.
// Reads token decimals once per (chain, token) from the token and caches them in token_metadata.
import { parseAbi, type PublicClient } from "viem";
import type { Chain } from "../chains/registry.js";
import type { AgentRow } from "../db/agents.js";
import type { Queryable } from "../db/pool.js";
import { parseMajor } from "../units.js";
import { decodeCall, type DecodedCall } from "./calldata.js";
import type { Denial } from "./guardrails.js";
import { checkCalldata, type CalldataPolicy, type TokenOutflow } from "./token-guardrails.js";

const DECIMALS_ABI = parseAbi(["function decimals() view returns (uint8)", "function symbol() view returns (string)"]);

export function calldataPolicyOf(agent: AgentRow): CalldataPolicy {
  return {
    toAllowlist: agent.tx_to_allowlist.map((a) => a.toLowerCase()),
    tokenAllowlist: agent.tx_token_allowlist.map((a) => a.toLowerCase()),
    unknownCalldata: agent.tx_unknown_calldata ?? "allow",
    tokenLimits: Object.fromEntries(Object.entries(agent.tx_token_limits ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    unlimitedApprovalAllowlist: agent.tx_unlimited_approval_allowlist ?? [],
  };
}

const decimalsCache = new Map<string, number>();

/** The token's decimals: memory, then token_metadata, then the token itself (0 when it has none). */
export async function tokenDecimals(db: Queryable, client: PublicClient, chainId: number, token: string): Promise<number> {
  const key = `${chainId}:${token}`;
  const hit = decimalsCache.get(key);
  if (hit !== undefined) return hit;
  const row = (await db.query<{ decimals: number }>("SELECT decimals FROM token_metadata WHERE chain_id = $1 AND address = $2", [chainId, token])).rows[0];
  let decimals = row?.decimals;
  if (decimals === undefined) {
    let symbol: string | null = null;
    try {
      decimals = Number(await client.readContract({ address: token as `0x${string}`, abi: DECIMALS_ABI, functionName: "decimals" }));
      symbol = await client.readContract({ address: token as `0x${string}`, abi: DECIMALS_ABI, functionName: "symbol" }).catch(() => null);
    } catch {
      // Not an ERC-20 (an NFT, or no contract): amounts are counted in raw units. Not cached in the
      // table, so a token deployed later is read again.
      decimalsCache.set(key, 0);
      return 0;
    }
    if (!(decimals >= 0 && decimals <= 77)) decimals = 0;
    await db.query(
      "INSERT INTO token_metadata (chain_id, address, decimals, symbol) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
      [chainId, token, decimals, symbol?.slice(0, 32) ?? null],
    );
  }
  decimalsCache.set(key, decimals);
  return decimals;
}

export interface CalldataVerdict {
  call: DecodedCall;
  /** Tokens leaving the signing address according to the calldata. */
  outflows: TokenOutflow[];
  /** The agent's policy wants this call simulated before signing (unknown calldata). */
  simulate: boolean;
  denial: Denial | null;
}

/** Decodes the calldata and applies the checks that need no history. */
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
  const call = decodeCall(data);
  const isToken = call.kind === "transfer" || call.kind === "approve";
  const needsDecimals = isToken && (policy.tokenLimits[to] !== undefined);
  const decimals = needsDecimals ? await tokenDecimals(db, client, chain.chain_id, to) : undefined;
  const verdict = checkCalldata(policy, to, call, decimals);
  const outflows: TokenOutflow[] = [];
  if (call.kind === "transfer" && (call.from === undefined || call.from === from.toLowerCase())) {
    outflows.push({ token: to, amount: call.amount, decimals: decimals ?? 0 });
  }
  return { call, outflows, simulate: verdict === "simulate", denial: verdict === "simulate" ? null : verdict };
}

/** Token outflows of the signing address from a simulation's balance changes (major units → base). */
export async function simulatedOutflows(
  db: Queryable,
  client: PublicClient,
  chain: Chain,
  from: string,
  changes: Array<{ address: string; token: string; change: string }>,
): Promise<TokenOutflow[]> {
  const out: TokenOutflow[] = [];
  for (const c of changes) {
    if (c.address.toLowerCase() !== from.toLowerCase() || !c.token.startsWith("0x") || !c.change.startsWith("-")) continue;
    const token = c.token.toLowerCase();
    const decimals = await tokenDecimals(db, client, chain.chain_id, token);
    const amount = parseMajor(c.change.slice(1), Math.max(decimals, 0));
    if (amount !== undefined && amount > 0n) out.push({ token, amount, decimals });
  }
  return out;
}

/** Records what a signed transaction moves out, for the rolling per-token limits. */
export async function recordTokenSpend(db: Queryable, agentId: string, chainId: number, txId: string, outflows: TokenOutflow[]): Promise<void> {
  for (const o of outflows) {
    await db.query("INSERT INTO token_spend (agent_id, chain_id, token, amount, tx_id) VALUES ($1, $2, $3, $4, $5)", [
      agentId, chainId, o.token, o.amount.toString(), txId,
    ]);
  }
}
