// Approval rules: the operator's third answer beside allow and deny. Pure: which rules a request that
// passed the guardrails matches. Set per agent (agents.approval_rules, PUT /v1/agents/{id}/approval-rules).
import { z } from "zod";

const uint = z.string().regex(/^\d{1,78}$/, "must be a non-negative integer in base units (wei or token units)");
const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, "must be a 0x-prefixed 20-byte address")
  .transform((s) => s.toLowerCase());

export const ApprovalRulesSchema = z.strictObject({
  /** Probation: every transaction and signature waits for operators. */
  everything: z.boolean().optional(),
  /** Worst-case cost of a transaction (value + gas limit × max fee per gas), in wei, above which it waits. */
  cost_above_wei: uint.optional(),
  /** Per token contract: an amount moved or approved (base units) above which it waits. */
  token_amount_above: z
    .record(address, uint)
    .refine((r) => Object.keys(r).length <= 64, "at most 64 tokens")
    .optional(),
  /**
   * A recipient, spender or EIP-7702 delegate outside the agent's allowlists waits for operators instead
   * of being denied; once approved it is allowed for that one execution only.
   */
  allowlist_miss: z.boolean().optional(),
  /** Typed-data kinds that wait (e.g. transfer_with_authorization, permit, permit2_single; "*": all). */
  typed_data_kinds: z.array(z.string().min(1).max(64)).max(32).optional(),
  /** Any EIP-7702 authorization (a type-4 transaction delegating the key's account) waits. */
  eip7702: z.boolean().optional(),
  /** Distinct operator keys needed (default 1). */
  quorum: z.number().int().min(1).max(20).optional(),
  /** How long an approval waits for its quorum (default 3600 s). */
  expiry_seconds: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600)
    .optional(),
  /** Approvals of this agent that may wait at once (default 20); beyond it a held request is a 429. */
  max_pending: z.number().int().min(1).max(1000).optional(),
});
export type ApprovalRules = z.output<typeof ApprovalRulesSchema>;

export const DEFAULT_QUORUM = 1;
export const DEFAULT_EXPIRY_SECONDS = 3600;
export const DEFAULT_MAX_PENDING = 20;

/** What a request that passed the guardrails would do, as far as the rules care. */
export interface GateFacts {
  /** Worst-case cost in wei (value + fee); absent for message and typed-data signatures. */
  costWei?: bigint;
  /** Tokens moved or approved (base units), per token contract (lower case). */
  tokens: Array<{ token: string; amount: bigint }>;
  /** Typed-data kind, for typed_data signatures. */
  typedDataKind?: string;
  /** The request carries EIP-7702 authorizations. */
  eip7702: boolean;
  /** Allowlist misses the approval turns into an allowance (collected by src/approvals/gate.ts). */
  heldAddresses: string[];
  heldDelegates: string[];
}

export interface MatchedRule {
  rule: string;
  detail: string;
}

/** The rules the facts match; empty: the request goes ahead without waiting. */
export function matchRules(rules: ApprovalRules | null | undefined, f: GateFacts): MatchedRule[] {
  if (!rules) return [];
  const out: MatchedRule[] = [];
  if (rules.everything) out.push({ rule: "everything", detail: "every request of this agent waits for operators (probation)" });
  if (rules.cost_above_wei !== undefined && f.costWei !== undefined && f.costWei > BigInt(rules.cost_above_wei)) {
    out.push({ rule: "cost_above_wei", detail: `worst-case cost ${f.costWei} wei is above ${rules.cost_above_wei} wei` });
  }
  for (const t of f.tokens) {
    const limit = rules.token_amount_above?.[t.token];
    if (limit !== undefined && t.amount > BigInt(limit))
      out.push({ rule: "token_amount_above", detail: `${t.amount} of token ${t.token} is above ${limit}` });
  }
  if (
    f.typedDataKind &&
    rules.typed_data_kinds &&
    (rules.typed_data_kinds.includes("*") || rules.typed_data_kinds.includes(f.typedDataKind))
  ) {
    out.push({ rule: "typed_data_kinds", detail: `typed data of kind ${f.typedDataKind}` });
  }
  if (f.eip7702 && rules.eip7702) out.push({ rule: "eip7702", detail: "an EIP-7702 authorization delegates the key's account" });
  for (const a of f.heldAddresses) out.push({ rule: "allowlist_miss", detail: `${a} is not in the agent's tx_to_allowlist` });
  for (const d of f.heldDelegates)
    out.push({ rule: "allowlist_miss", detail: `EIP-7702 delegate ${d} is not in the agent's eip7702_delegate_allowlist` });
  return out;
}

/** Reason codes of denials that `allowlist_miss` turns into an approval, and the list the address joins. */
export const ALLOWLIST_MISSES: Readonly<Record<string, "to" | "delegate">> = {
  to_not_allowlisted: "to",
  token_recipient_not_allowlisted: "to",
  spender_not_allowlisted: "to",
  simulated_recipient_not_allowlisted: "to",
  simulated_spender_not_allowlisted: "to",
  eip7702_delegate_not_allowlisted: "delegate",
};

export function rulesOf(agent: { approval_rules?: unknown }): ApprovalRules | null {
  if (!agent.approval_rules) return null;
  const parsed = ApprovalRulesSchema.safeParse(agent.approval_rules);
  // Stored rules were validated on write; unreadable ones hold everything back rather than nothing.
  return parsed.success ? parsed.data : { everything: true };
}
