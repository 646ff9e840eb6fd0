// Stage 7b of the submit pipeline: the rolling limits of a commit group, inside its database
// transaction. Takes the open transaction, the group's requests and the limited agents' rolling spend
// read under their spend locks (`agent_spend_locks` rows, FOR UPDATE, held to the group's COMMIT);
// returns the requests accepted (in arrival order) and those denied. Writes nothing.
import { tokenSpendToday, type SpendToday } from "../db/agents.js";
import type { PoolClient } from "../db/pool.js";
import { checkRollingGuardrails, hasRollingLimits, type Denial } from "./guardrails.js";
import { checkTokenOutflows } from "./token-guardrails.js";
import { ApprovalLedger, calldataPolicyOf } from "./token-policy.js";
import type { Queued } from "./types.js";

/** The agents of a group whose rolling limits apply: their spend rows are locked and read for the group. */
export function limitedAgents(items: Queued[]): string[] {
  return [
    ...new Set(items.filter((i) => hasRollingLimits(i.policy) || i.tokenLimited || i.recheck).map((i) => i.input.principal.agent.id)),
  ].sort();
}

/**
 * 7b. The rolling limits of a group, given the limited agents' spend as read under their spend locks
 * (db/agents.ts lockSpend, or with the nonces in one round trip, nonce.ts lockSpendAndReserveNonces).
 * The locks serialise each agent's submissions across addresses, chains and replicas; the requests are
 * checked in arrival order, each seeing what those before it in the group will spend. Denied requests
 * leave the group. Token limits and approval caps read their own history here, under the same locks.
 */
export async function checkGroupLimits(
  tx: PoolClient,
  items: Queued[],
  totals: Map<string, SpendToday>,
): Promise<{ accepted: Queued[]; denied: Array<{ item: Queued; denial: Denial }> }> {
  if (totals.size === 0) return { accepted: items, denied: [] };
  const spent = new Map<string, { wei: bigint; fees: bigint; count: number; tokens?: Map<string, bigint> }>();
  for (const [id, s] of totals) {
    const needsTokens = items.some((i) => i.tokenLimited && i.input.principal.agent.id === id);
    spent.set(id, {
      wei: s.spent_wei,
      fees: s.fees_wei,
      count: s.count_today,
      tokens: needsTokens ? await tokenSpendToday(tx, id) : undefined,
    });
  }
  const accepted: Queued[] = [];
  const denied: Array<{ item: Queued; denial: Denial }> = [];
  const approvals = new ApprovalLedger(tx);
  for (const item of items) {
    const s = spent.get(item.input.principal.agent.id);
    if (s) {
      const denial =
        checkRollingGuardrails(
          item.policy,
          { valueWei: item.intent.valueWei, feeWei: item.feeWei },
          { spentWei: s.wei, countToday: s.count, feesWei: s.fees },
        ) ??
        (item.tokenLimited
          ? checkTokenOutflows(calldataPolicyOf(item.input.principal.agent), item.outflows, (t) => s.tokens?.get(t) ?? 0n)
          : null) ??
        (item.recheck ? await approvals.check(item.recheck) : null);
      if (denial) {
        denied.push({ item, denial });
        continue;
      }
      s.wei += item.intent.valueWei;
      s.fees += item.feeWei;
      s.count += 1;
      for (const o of item.outflows) s.tokens?.set(o.token, (s.tokens.get(o.token) ?? 0n) + o.amount);
      if (item.recheck) approvals.add(item.recheck);
    }
    accepted.push(item);
  }
  return { accepted, denied };
}
