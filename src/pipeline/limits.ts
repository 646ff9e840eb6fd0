// Stage 7b of the submit pipeline: the rolling limits of a commit group, inside its database
// transaction. Takes the open transaction and the group's requests; returns those accepted (in arrival
// order) and those denied. Locks: each limited agent's `agent_spend_locks` row (FOR UPDATE), held to
// the group's COMMIT. Reads the agents' rolling spend (db/agents.ts lockSpend); writes nothing but the
// pruning of ledger buckets that left the window.
import { lockSpend, tokenSpendToday } from "../db/agents.js";
import type { PoolClient } from "../db/pool.js";
import { checkRollingGuardrails, hasRollingLimits, type Denial } from "./guardrails.js";
import { checkTokenOutflows } from "./token-guardrails.js";
import { ApprovalLedger, calldataPolicyOf } from "./token-policy.js";
import type { Queued } from "./types.js";

/**
 * 7b. Each agent with rolling limits (value, count, per-token) in the group: its spend row is locked
 * (in id order, so two groups never wait on each other in a cycle), which serialises that agent's
 * submissions across addresses and replicas; then the requests are checked in arrival order, each
 * seeing what those before it in the group will spend. Denied requests leave the group.
 */
export async function checkGroupLimits(
  tx: PoolClient,
  items: Queued[],
): Promise<{ accepted: Queued[]; denied: Array<{ item: Queued; denial: Denial }> }> {
  const agentIds = [
    ...new Set(items.filter((i) => hasRollingLimits(i.policy) || i.tokenLimited || i.recheck).map((i) => i.input.principal.agent.id)),
  ].sort();
  if (agentIds.length === 0) return { accepted: items, denied: [] };
  // Locked, then read, in one round trip: the agents' spend rows and their rolling spend.
  const totals = await lockSpend(tx, agentIds);
  const spent = new Map<string, { wei: bigint; fees: bigint; count: number; tokens?: Map<string, bigint> }>();
  for (const id of agentIds) {
    const s = totals.get(id)!;
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
