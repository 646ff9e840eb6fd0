// Guardrails over what calldata (and simulation) says a transaction does with tokens. Pure functions
// of (policy, decoded call or outflows, token decimals, spent so far); the pipeline supplies the I/O.
import { toEventSelector, type Hex } from "viem";
import { formatMajor, parseMajor } from "../units.js";
import type { DecodedCall, TokenEffect } from "./calldata.js";
import { checkAllowlist, type Denial } from "./guardrails.js";

/** Per-token limits as configured (decimal strings in token units). */
export interface TokenLimitConfig {
  max_per_tx?: string;
  daily_limit?: string;
  approval_cap?: string;
}

export interface CalldataPolicy {
  toAllowlist: string[]; // lower-case; empty = any
  tokenAllowlist: string[]; // lower-case; empty = any
  unknownCalldata: "allow" | "deny" | "simulate";
  tokenLimits: Record<string, TokenLimitConfig>; // keyed by lower-case token address
  unlimitedApprovalAllowlist: string[]; // lower-case spenders
}

/**
 * An approval whose resulting allowance is above this, and above the token's approval_cap, is
 * unlimited: whatever the sentinel (2^256−1, 2^255−1, Permit2's 2^160−1), 2^128 base units is more
 * than any token's supply, so such an amount is a grant of everything.
 */
export const UNLIMITED_APPROVAL = 1n << 128n;

/** The agent's fields that decide its unknown-calldata policy. */
export interface UnknownCalldataFields {
  tx_unknown_calldata: "allow" | "deny" | "simulate" | null;
  tx_to_allowlist: string[];
  tx_token_allowlist: string[];
  tx_token_limits: Record<string, unknown> | null;
}

/**
 * The policy for calldata nobody can decode: the agent's explicit setting, else deny when the agent
 * has recipient or token rules (calldata that is not understood could go around them), else allow.
 */
export function unknownCalldataOf(a: UnknownCalldataFields): "allow" | "deny" | "simulate" {
  if (a.tx_unknown_calldata !== null) return a.tx_unknown_calldata;
  const rules = a.tx_to_allowlist.length > 0 || a.tx_token_allowlist.length > 0 || Object.keys(a.tx_token_limits ?? {}).length > 0;
  return rules ? "deny" : "allow";
}

export function tokenLimitFor(policy: CalldataPolicy, token: string): TokenLimitConfig | undefined {
  return policy.tokenLimits[token.toLowerCase()];
}

/**
 * Converts a configured token amount (validated at configuration time, up to 18 decimals) to base
 * units with the token's decimals, rounding down digits the token cannot represent.
 */
export function toBaseUnits(amount: string | undefined, decimals: number): bigint | null {
  if (amount === undefined) return null;
  const v18 = parseMajor(amount, 18);
  if (v18 === undefined) throw new Error(`invalid token amount ${amount}`);
  return decimals <= 18 ? v18 / 10n ** BigInt(18 - decimals) : v18 * 10n ** BigInt(decimals - 18);
}

/** What the pipeline read from the chain for the checks: per token decimals, per (token, spender) allowance. */
export interface CalldataFacts {
  /** Decimals of tokens that have limits (absent: the token's amounts are not limited). */
  decimals: (token: string) => number | undefined;
  /** The sender's current allowance for spender on token (read for `increase` approvals). */
  allowance: (token: string, spender: string) => bigint;
}

export const allowanceKey = (token: string, spender: string) => `${token.toLowerCase()}|${spender.toLowerCase()}`;

/** The approvals of a call whose resulting allowance depends on the current on-chain one. */
export function allowancesNeeded(call: DecodedCall): Array<{ token: string; spender: string }> {
  if (call.kind !== "token") return [];
  return call.effects.flatMap((e) =>
    e.type === "approve" && e.mode === "increase" && e.amount > 0n ? [{ token: e.token, spender: e.spender }] : [],
  );
}

/** Tokens of a call's effects. */
export function tokensOf(call: DecodedCall): string[] {
  return call.kind === "token" ? [...new Set(call.effects.map((e) => e.token))] : [];
}

/**
 * Checks that need no history: who receives or may spend (against tx_to_allowlist), which token
 * (against tx_token_allowlist), what to do with calldata nobody can decode, per-transaction token
 * amounts, and approvals: the allowance an approval leaves (for an increase, the current on-chain
 * allowance plus the increase) above the token's approval_cap, or above 2^128 when there is no cap,
 * needs the spender in tx_unlimited_approval_allowlist. Calldata of a known function that is not
 * canonically encoded is always denied. Returns a denial, `simulate` when the policy asks for a
 * simulation first, or null.
 */
export function checkCalldata(policy: CalldataPolicy, call: DecodedCall, facts: CalldataFacts): Denial | "simulate" | null {
  if (call.kind === "none") return null;
  if (call.kind === "malformed") {
    return {
      reason_code: "malformed_calldata",
      detail: `Calldata for ${call.fn} (${call.selector}) is not the canonical ABI encoding (high bits in an address, a bool other than 0 or 1, an out-of-range integer, or extra bytes); it is refused rather than guessed at.`,
      limit: null,
      current: null,
      attempted: call.selector,
    };
  }
  if (call.kind === "unknown") {
    if (policy.unknownCalldata === "deny") {
      return {
        reason_code: "unknown_calldata",
        detail: `Calldata with selector ${call.selector} cannot be decoded and this agent's policy denies it.`,
        limit: "deny",
        current: null,
        attempted: call.selector,
      };
    }
    return policy.unknownCalldata === "simulate" ? "simulate" : null;
  }
  for (const e of call.effects) {
    const d = checkEffect(policy, e, facts);
    if (d) return d;
  }
  return null;
}

function checkEffect(policy: CalldataPolicy, e: TokenEffect, facts: CalldataFacts): Denial | null {
  const token = e.token;
  const tokenDenial = checkAllowlist(
    policy.tokenAllowlist,
    token,
    "token_not_allowlisted",
    `Token contract ${token} is not in this agent's tx_token_allowlist.`,
  );
  if (tokenDenial) return tokenDenial;
  const limit = tokenLimitFor(policy, token);
  const decimals = facts.decimals(token);
  if (e.type === "transfer") {
    const recipientDenial = checkAllowlist(
      policy.toAllowlist,
      e.recipient,
      "token_recipient_not_allowlisted",
      `Token recipient ${e.recipient} is not in this agent's tx_to_allowlist.`,
    );
    if (recipientDenial) return recipientDenial;
    if (limit?.max_per_tx !== undefined && decimals !== undefined) {
      const max = toBaseUnits(limit.max_per_tx, decimals)!;
      if (e.amount > max) {
        return {
          reason_code: "token_max_per_tx_exceeded",
          detail: `Transfer of ${formatMajor(e.amount, decimals)} exceeds this agent's per-transaction limit of ${limit.max_per_tx} for token ${token}.`,
          limit: limit.max_per_tx,
          current: null,
          attempted: formatMajor(e.amount, decimals),
        };
      }
    }
    return null;
  }
  // Approvals. Revoking and lowering never give anything away.
  if (e.amount === 0n || e.mode === "decrease") return null;
  const spenderDenial = checkAllowlist(
    policy.toAllowlist,
    e.spender,
    "spender_not_allowlisted",
    `Spender ${e.spender} is not in this agent's tx_to_allowlist.`,
  );
  if (spenderDenial) return spenderDenial;
  if (policy.unlimitedApprovalAllowlist.includes(e.spender)) return null;
  const current = e.mode === "increase" ? facts.allowance(token, e.spender) : 0n;
  const resulting = current + e.amount;
  const cap = limit?.approval_cap !== undefined && decimals !== undefined ? toBaseUnits(limit.approval_cap, decimals) : null;
  const shown = (v: bigint) => (decimals !== undefined && v <= UNLIMITED_APPROVAL ? formatMajor(v, decimals) : v.toString());
  const fn = e.mode === "operator" ? "operator approval" : e.mode === "increase" ? "allowance increase" : "approval";
  if (resulting > UNLIMITED_APPROVAL && (cap === null || resulting > cap)) {
    return {
      reason_code: "unlimited_approval",
      detail: `An unlimited ${fn} of token ${token} to ${e.spender} is not allowed for this agent.`,
      limit: cap !== null ? limit!.approval_cap! : null,
      current: e.mode === "increase" ? shown(current) : null,
      attempted: shown(resulting),
    };
  }
  if (cap !== null && resulting > cap) {
    return {
      reason_code: "approval_cap_exceeded",
      detail: `An ${fn} leaving ${shown(resulting)} to ${e.spender} exceeds this agent's cap of ${limit!.approval_cap} for token ${token}.`,
      limit: limit!.approval_cap!,
      current: e.mode === "increase" ? shown(current) : null,
      attempted: shown(resulting),
    };
  }
  return null;
}

/** Outflows of `sender` a decoded call states: transfers from the sender (or from the caller). */
export function calldataOutflows(call: DecodedCall, sender: string, decimals: (token: string) => number | undefined): TokenOutflow[] {
  if (call.kind !== "token") return [];
  const from = sender.toLowerCase();
  return call.effects.flatMap((e) =>
    e.type === "transfer" && (e.from === undefined || e.from === from)
      ? [{ token: e.token, amount: e.amount, decimals: decimals(e.token) ?? 0 }]
      : [],
  );
}

/** A token amount leaving the signing address (base units), from calldata or simulation. */
export interface TokenOutflow {
  token: string; // lower-case address
  amount: bigint;
  decimals: number;
}

/** Per-transaction and rolling 24 h limits for each token the transaction moves out. */
export function checkTokenOutflows(policy: CalldataPolicy, outflows: TokenOutflow[], spent: (token: string) => bigint): Denial | null {
  for (const o of outflows) {
    const limit = tokenLimitFor(policy, o.token);
    if (!limit) continue;
    const max = toBaseUnits(limit.max_per_tx, o.decimals);
    if (max !== null && o.amount > max) {
      return {
        reason_code: "token_max_per_tx_exceeded",
        detail: `Moving ${formatMajor(o.amount, o.decimals)} of token ${o.token} exceeds this agent's per-transaction limit of ${limit.max_per_tx}.`,
        limit: limit.max_per_tx!,
        current: null,
        attempted: formatMajor(o.amount, o.decimals),
      };
    }
    const daily = toBaseUnits(limit.daily_limit, o.decimals);
    const before = spent(o.token);
    if (daily !== null && before + o.amount > daily) {
      return {
        reason_code: "token_daily_limit_exceeded",
        detail: `Moving ${formatMajor(o.amount, o.decimals)} of token ${o.token} on top of ${formatMajor(before, o.decimals)} in the last 24 h exceeds this agent's daily limit of ${limit.daily_limit}.`,
        limit: limit.daily_limit!,
        current: formatMajor(before, o.decimals),
        attempted: formatMajor(o.amount, o.decimals),
      };
    }
  }
  return null;
}

/** Merges outflows per token, keeping the larger of two sources' amounts (calldata vs simulation). */
export function mergeOutflows(a: TokenOutflow[], b: TokenOutflow[]): TokenOutflow[] {
  const m = new Map<string, TokenOutflow>();
  for (const o of [...a, ...b]) {
    const prev = m.get(o.token);
    if (!prev || o.amount > prev.amount) m.set(o.token, o);
  }
  return [...m.values()];
}

// ---------------------------------------------------------------------------------------------------
// Simulated logs (tx_unknown_calldata: simulate)

/** A log of a simulated transaction, as the simulators report it. */
export interface SimLog {
  address: string;
  topics: readonly string[];
  data: string;
}

const topic = (sig: string) => toEventSelector(sig).toLowerCase();
/** Event → which topic holds the party that receives tokens or may move them, and whether it grants (non-zero). */
const PARTY_EVENTS = new Map<string, { what: "recipient" | "spender" | "operator"; index: number; topics?: number }>([
  [topic("Transfer(address,address,uint256)"), { what: "recipient", index: 2 }], // ERC-20 (3 topics) and ERC-721 (4)
  [topic("TransferSingle(address,address,address,uint256,uint256)"), { what: "recipient", index: 3 }],
  [topic("TransferBatch(address,address,address,uint256[],uint256[])"), { what: "recipient", index: 3 }],
  [topic("Sent(address,address,address,uint256,bytes,bytes)"), { what: "recipient", index: 3 }],
  [topic("Approval(address,address,uint256)"), { what: "spender", index: 2 }], // ERC-20 (3 topics) and ERC-721 (4)
  [topic("ApprovalForAll(address,address,bool)"), { what: "operator", index: 2 }],
  [topic("AuthorizedOperator(address,address)"), { what: "operator", index: 1 }],
  // Permit2: Approval/Permit(owner, token, spender, …) with three indexed addresses.
  [topic("Approval(address,address,address,uint160,uint48)"), { what: "spender", index: 3 }],
  [topic("Permit(address,address,address,uint160,uint48,uint48)"), { what: "spender", index: 3 }],
]);
const ZERO_WORD = /^0x0*$/;

/** An indexed address topic: a 32-byte word whose top 12 bytes are zero. */
function topicAddress(t: string | undefined): string | undefined {
  if (!t || !/^0x0{24}[0-9a-fA-F]{40}$/.test(t)) return undefined;
  return `0x${t.slice(26)}`.toLowerCase();
}

/**
 * Every Transfer recipient, Approval spender and operator approval in a simulated transaction's logs
 * must pass tx_to_allowlist (the signing address itself excepted), whatever contract emitted them: what
 * the calldata did not say, the simulation shows. Revocations (a zero approval) pass. Returns a denial
 * or null; with an empty allowlist there is nothing to check.
 */
export function checkSimulatedLogs(policy: Pick<CalldataPolicy, "toAllowlist">, sender: string, logs: readonly SimLog[]): Denial | null {
  if (policy.toAllowlist.length === 0) return null;
  const self = sender.toLowerCase();
  for (const l of logs) {
    const ev = PARTY_EVENTS.get(l.topics[0]?.toLowerCase() ?? "");
    if (!ev || l.topics.length <= ev.index) continue;
    const party = topicAddress(l.topics[ev.index]);
    // A revocation: ERC-20 Approval of 0, ERC-721 approval of the zero address, ApprovalForAll(false).
    if (
      ev.what !== "recipient" &&
      (party === "0x0000000000000000000000000000000000000000" || (ev.index === 2 && l.topics.length === 3 && ZERO_WORD.test(l.data)))
    )
      continue;
    if (party === self) continue;
    if (party !== undefined && policy.toAllowlist.includes(party)) continue;
    const who = party ?? (l.topics[ev.index] as Hex);
    return {
      reason_code: ev.what === "recipient" ? "simulated_recipient_not_allowlisted" : "simulated_spender_not_allowlisted",
      detail: `The simulation shows token contract ${l.address.toLowerCase()} giving ${ev.what === "recipient" ? "tokens to" : "an allowance to"} ${who}, which is not in this agent's tx_to_allowlist.`,
      limit: policy.toAllowlist,
      current: null,
      attempted: who,
    };
  }
  return null;
}
