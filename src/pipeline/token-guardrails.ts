// Guardrails over what calldata (and simulation) says a transaction does with tokens. Pure functions
// of (policy, decoded call or outflows, token decimals, spent so far); the pipeline supplies the I/O.
import { formatMajor, parseMajor } from "../units.js";
import type { DecodedCall } from "./calldata.js";
import type { Denial } from "./guardrails.js";

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

/** Approvals at or above 2^255 are "unlimited" whatever the exact sentinel a wallet uses. */
export const UNLIMITED_APPROVAL = 1n << 255n;

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

/**
 * Checks that need no history: who receives or may spend (against tx_to_allowlist), which contract
 * (against tx_token_allowlist), what to do with calldata nobody can decode, per-transaction token
 * amounts, and unlimited or over-cap approvals. `decimals` is the token's, when the call is a token call.
 * Returns a denial, or `simulate` when the policy asks for a simulation first, or null.
 */
export function checkCalldata(
  policy: CalldataPolicy,
  to: string,
  call: DecodedCall,
  decimals: number | undefined,
): Denial | "simulate" | null {
  if (call.kind === "none") return null;
  if (call.kind === "unknown") {
    if (policy.unknownCalldata === "deny") {
      return { reason_code: "unknown_calldata", detail: `Calldata with selector ${call.selector} cannot be decoded and this agent's policy denies it.`, limit: "deny", current: null, attempted: call.selector };
    }
    return policy.unknownCalldata === "simulate" ? "simulate" : null;
  }
  const token = to.toLowerCase();
  if (policy.tokenAllowlist.length > 0 && !policy.tokenAllowlist.includes(token)) {
    return { reason_code: "token_not_allowlisted", detail: `Token contract ${token} is not in this agent's tx_token_allowlist.`, limit: policy.tokenAllowlist, current: null, attempted: token };
  }
  const limit = tokenLimitFor(policy, token);
  if (call.kind === "transfer") {
    if (policy.toAllowlist.length > 0 && !policy.toAllowlist.includes(call.recipient)) {
      return { reason_code: "token_recipient_not_allowlisted", detail: `Token recipient ${call.recipient} is not in this agent's tx_to_allowlist.`, limit: policy.toAllowlist, current: null, attempted: call.recipient };
    }
    if (limit?.max_per_tx !== undefined && decimals !== undefined) {
      const max = toBaseUnits(limit.max_per_tx, decimals)!;
      if (call.amount > max) {
        return { reason_code: "token_max_per_tx_exceeded", detail: `Transfer of ${formatMajor(call.amount, decimals)} exceeds this agent's per-transaction limit of ${limit.max_per_tx} for token ${token}.`, limit: limit.max_per_tx, current: null, attempted: formatMajor(call.amount, decimals) };
      }
    }
    return null;
  }
  // Approvals: the spender must be an allowed recipient, and unlimited or over-cap amounts need the
  // spender to be allowed unlimited approvals.
  if (call.amount === 0n) return null; // revoking is always allowed
  if (policy.toAllowlist.length > 0 && !policy.toAllowlist.includes(call.spender)) {
    return { reason_code: "spender_not_allowlisted", detail: `Spender ${call.spender} is not in this agent's tx_to_allowlist.`, limit: policy.toAllowlist, current: null, attempted: call.spender };
  }
  if (policy.unlimitedApprovalAllowlist.includes(call.spender)) return null;
  const cap = limit?.approval_cap !== undefined && decimals !== undefined ? toBaseUnits(limit.approval_cap, decimals) : null;
  const shown = (v: bigint) => (decimals !== undefined && v < UNLIMITED_APPROVAL ? formatMajor(v, decimals) : v.toString());
  if (call.amount >= UNLIMITED_APPROVAL) {
    return { reason_code: "unlimited_approval", detail: `An unlimited ${call.fn} to ${call.spender} is not allowed for this agent.`, limit: cap !== null ? limit!.approval_cap! : null, current: null, attempted: shown(call.amount) };
  }
  if (cap !== null && call.amount > cap) {
    return { reason_code: "approval_cap_exceeded", detail: `Approval of ${shown(call.amount)} exceeds this agent's cap of ${limit!.approval_cap} for token ${token}.`, limit: limit!.approval_cap!, current: null, attempted: shown(call.amount) };
  }
  return null;
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
      return { reason_code: "token_max_per_tx_exceeded", detail: `Moving ${formatMajor(o.amount, o.decimals)} of token ${o.token} exceeds this agent's per-transaction limit of ${limit.max_per_tx}.`, limit: limit.max_per_tx!, current: null, attempted: formatMajor(o.amount, o.decimals) };
    }
    const daily = toBaseUnits(limit.daily_limit, o.decimals);
    const before = spent(o.token);
    if (daily !== null && before + o.amount > daily) {
      return { reason_code: "token_daily_limit_exceeded", detail: `Moving ${formatMajor(o.amount, o.decimals)} of token ${o.token} on top of ${formatMajor(before, o.decimals)} in the last 24 h exceeds this agent's daily limit of ${limit.daily_limit}.`, limit: limit.daily_limit!, current: formatMajor(before, o.decimals), attempted: formatMajor(o.amount, o.decimals) };
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
