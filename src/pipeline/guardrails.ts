// Guardrail checks: pure functions of (policy, request, spent so far). No I/O, so every boundary is
// tested directly (see test/pipeline/guardrails.test.ts). Each denial names its rule, the limit, the
// current value and the attempted one, in the shape of the contract's `guardrail` member.
import { fieldPolicy, type FieldPolicy } from "../agents/guardrail-fields.js";
import type { AgentRow } from "../db/agents.js";
import { formatMajor } from "../units.js";

/**
 * What the checks read of an agent: the fields with a `policy` in src/agents/guardrail-fields.ts
 * (amounts as bigint, addresses lower-case; an empty list allows any, null sets no limit).
 */
export type GuardrailPolicy = FieldPolicy;

export interface GuardrailInput {
  chain: { name: string; chain_id: number; aliases: string[] };
  to: string; // lower-case
  valueWei: bigint;
  data?: string;
}

export interface Spent {
  spentWei: bigint;
  countToday: number;
  /** Worst-case fees signed in the rolling 24 h. */
  feesWei?: bigint;
}

export interface Denial {
  reason_code: string;
  detail: string;
  limit: string | number | string[] | null;
  current: string | number | null;
  attempted: string | number | null;
}

export function chainAllowed(policy: Pick<GuardrailPolicy, "allowedChains">, chain: GuardrailInput["chain"]): boolean {
  if (policy.allowedChains.length === 0) return true;
  const names = new Set([chain.name, String(chain.chain_id), ...chain.aliases].map((s) => s.toLowerCase()));
  return policy.allowedChains.some((c) => names.has(c.toLowerCase()));
}

/** An allowlist rule: an empty list allows any value, else the value (null: none) must be on it. */
export function checkAllowlist(list: string[], value: string | null, reason_code: string, detail: string): Denial | null {
  if (list.length === 0 || (value !== null && list.includes(value))) return null;
  return { reason_code, detail, limit: list, current: null, attempted: value };
}

/** tx_allowed_chains: the one denial for a chain the agent may not use (transactions, simulations, signatures). */
export function checkChainAllowed(policy: Pick<GuardrailPolicy, "allowedChains">, chain: GuardrailInput["chain"]): Denial | null {
  if (chainAllowed(policy, chain)) return null;
  return {
    reason_code: "chain_not_allowed",
    detail: `Chain ${chain.name} is not in this agent's tx_allowed_chains.`,
    limit: policy.allowedChains,
    current: null,
    attempted: chain.name,
  };
}

/** Checks that need no history: chain and recipient allowlists, per-transaction value (token checks: token-guardrails.ts). */
export function checkStaticGuardrails(policy: GuardrailPolicy, input: GuardrailInput): Denial | null {
  const chainDenial = checkChainAllowed(policy, input.chain);
  if (chainDenial) return chainDenial;
  const to = input.to.toLowerCase();
  const toDenial = checkAllowlist(policy.toAllowlist, to, "to_not_allowlisted", `Recipient ${to} is not in this agent's tx_to_allowlist.`);
  if (toDenial) return toDenial;
  if (policy.maxValueWei !== null && input.valueWei > policy.maxValueWei) {
    return {
      reason_code: "max_value_exceeded",
      detail: `Value ${formatMajor(input.valueWei)} exceeds this agent's tx_max_value of ${formatMajor(policy.maxValueWei)}.`,
      limit: formatMajor(policy.maxValueWei),
      current: null,
      attempted: formatMajor(input.valueWei),
    };
  }
  return null;
}

export function hasRollingLimits(policy: GuardrailPolicy): boolean {
  return policy.dailyLimitWei !== null || policy.maxPerDay !== null || policy.dailyFeeBudgetWei !== null;
}

/** The per-transaction fee limit: worst-case fee = gas_limit × max fee per gas (or gas price). */
export function checkFeeGuardrail(policy: GuardrailPolicy, feeWei: bigint): Denial | null {
  if (policy.maxFeeWei !== null && feeWei > policy.maxFeeWei) {
    return {
      reason_code: "max_fee_exceeded",
      detail: `Worst-case fee ${formatMajor(feeWei)} (gas_limit × max fee per gas) exceeds this agent's tx_max_fee of ${formatMajor(policy.maxFeeWei)}.`,
      limit: formatMajor(policy.maxFeeWei),
      current: null,
      attempted: formatMajor(feeWei),
    };
  }
  return null;
}

/** Checks against what the agent already signed: rolling 24 h value and transactions today. */
export function checkRollingGuardrails(
  policy: GuardrailPolicy,
  input: Pick<GuardrailInput, "valueWei"> & { feeWei?: bigint },
  spent: Spent,
): Denial | null {
  if (policy.maxPerDay !== null && spent.countToday + 1 > policy.maxPerDay) {
    return {
      reason_code: "max_per_day_exceeded",
      detail: `This agent has already signed ${spent.countToday} of its ${policy.maxPerDay} transactions for today (UTC).`,
      limit: policy.maxPerDay,
      current: spent.countToday,
      attempted: spent.countToday + 1,
    };
  }
  if (policy.dailyLimitWei !== null && spent.spentWei + input.valueWei > policy.dailyLimitWei) {
    return {
      reason_code: "daily_limit_exceeded",
      detail: `Value ${formatMajor(input.valueWei)} on top of ${formatMajor(spent.spentWei)} signed in the last 24 h exceeds this agent's tx_daily_limit of ${formatMajor(policy.dailyLimitWei)}.`,
      limit: formatMajor(policy.dailyLimitWei),
      current: formatMajor(spent.spentWei),
      attempted: formatMajor(input.valueWei),
    };
  }
  const fee = input.feeWei ?? 0n;
  const fees = spent.feesWei ?? 0n;
  if (policy.dailyFeeBudgetWei !== null && fees + fee > policy.dailyFeeBudgetWei) {
    return {
      reason_code: "daily_fee_budget_exceeded",
      detail: `Worst-case fee ${formatMajor(fee)} on top of ${formatMajor(fees)} signed in the last 24 h exceeds this agent's tx_daily_fee_budget of ${formatMajor(policy.dailyFeeBudgetWei)}.`,
      limit: formatMajor(policy.dailyFeeBudgetWei),
      current: formatMajor(fees),
      attempted: formatMajor(fee),
    };
  }
  return null;
}

/** The agent's recipient allowlist, lower-case: the same list for the value and the calldata rules. */
export const toAllowlistOf = (agent: { tx_to_allowlist: string[] }) => agent.tx_to_allowlist.map((a) => a.toLowerCase());

/** The agent's row as the guardrail checks read it. */
export const policyOf = (agent: AgentRow): GuardrailPolicy => fieldPolicy(agent);
