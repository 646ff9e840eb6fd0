// Deciding and executing approvals.
//
// Votes: each in one transaction holding the approval's row lock (SELECT … FOR UPDATE), so votes cast
// at once on several replicas are counted one at a time. One operator key votes once (a unique key);
// a vote names the payload hash it saw, and counts only if it is the approval's. A rejection by any key
// ends the approval; so does its expiry.
//
// Execution, exactly once: the vote that completes the quorum moves the row to `executing` in its own
// transaction, naming its process (the liveness key), and that process then runs the stored request
// through the normal pipeline: fresh nonce, current fees, every guardrail and rolling limit checked
// again under the pipeline's own locks, with the Idempotency-Key `approval <id>` (a key no client can
// send: it has a space). If that process dies, the sweep of any replica takes the row over once the
// process's liveness lock is gone (takeExecution) and runs it again; the pipeline's idempotency claim
// then answers from the transaction or signature already committed, so nothing is signed twice.
// The result (or the failure, e.g. a limit exceeded meanwhile) is stored on the approval.
import { randomUUID } from "node:crypto";
import { appendAudit } from "../db/audit.js";
import {
  countPending,
  expireApprovals,
  insertVote,
  listVotes,
  lockApproval,
  orphanedExecutions,
  takeExecution,
  updateApproval,
  type ApprovalRow,
  type VoteRow,
} from "../db/approvals.js";
import { getAgent, type AgentRow } from "../db/agents.js";
import { withTransaction } from "../db/pool.js";
import { conflict, forbidden, notFound, ServiceError } from "../errors.js";
import { signIntent } from "../pipeline/sign-intent.js";
import { submitTransaction } from "../pipeline/submit.js";
import type { Intent, SignRequest } from "../pipeline/request.js";
import type { PipelineDeps } from "../pipeline/types.js";
import { effectiveStatus, withHeld, type ApprovalInput } from "./gate.js";

/**
 * How a stored request is parsed before it runs again: the routes' own parsing (src/http/intents.ts),
 * passed in by them, so an approved request meets the same checks as when it arrived.
 */
export interface RequestParsers {
  transaction(body: unknown, agent: AgentRow): Intent;
  signIntent(body: unknown, agent: AgentRow): SignRequest;
}
export type ApprovalDeps = PipelineDeps & { parsers: RequestParsers };

export interface VoteInput {
  decision: "approve" | "reject";
  payload_hash: string;
  reason?: string;
}

type Operator = { type: "operator"; id: string };

/** The idempotency key of an approval's execution; agents' keys are visible ASCII without spaces. */
export const executionKey = (id: string) => `approval ${id}`;

export async function castVote(
  deps: ApprovalDeps,
  id: string,
  operator: Operator,
  v: VoteInput,
  meta: { requestId?: string; ip?: string } = {},
): Promise<{ row: ApprovalRow; votes: VoteRow[] }> {
  const outcome = await withTransaction(deps.pool, async (tx) => {
    // Locks this approval's row until COMMIT: its vote count and status change one vote at a time.
    const row = await lockApproval(tx, id);
    if (!row) throw notFound("No such approval.");
    if (row.status === "pending" && new Date(row.expires_at).getTime() <= Date.now()) {
      return { expired: await recordExpiry(tx, row) };
    }
    if (row.status !== "pending") throw conflict(`The approval is ${row.status}; it takes no more votes.`, "approval_not_pending");
    if (v.payload_hash.toLowerCase() !== row.payload_hash) {
      throw conflict("payload_hash is not this approval's: the vote must name the payload it was cast on.", "approval_payload_mismatch");
    }
    const counted = await insertVote(tx, {
      id: randomUUID(),
      approval_id: id,
      operator_id: operator.id,
      decision: v.decision,
      reason: v.reason ?? null,
      payload_hash: row.payload_hash,
    });
    await appendAudit(tx, {
      action: "approval.vote",
      actor: operator,
      resourceType: "approval",
      resourceId: id,
      details: { agent_id: row.agent_id, decision: v.decision, reason: v.reason ?? null, payload_hash: row.payload_hash, counted },
      ...meta,
    });
    if (!counted) return { row };
    if (v.decision === "reject") {
      const done = await updateApproval(tx, id, { status: "rejected", decided_at: new Date() });
      await decidedEvent(tx, done, operator, v.reason, meta);
      return { row: done, decided: "rejected" as const };
    }
    const n = row.current_approvals + 1;
    if (n < row.required_approvals) return { row: await updateApproval(tx, id, { current_approvals: n }) };
    // The quorum: this process executes it (after COMMIT, below).
    const done = await updateApproval(tx, id, {
      current_approvals: n,
      status: "executing",
      decided_at: new Date(),
      executor_key: deps.liveness?.key ?? null,
    });
    await decidedEvent(tx, done, operator, v.reason, meta);
    return { row: done, decided: "approved" as const };
  });
  if ("expired" in outcome) {
    observeDecision(deps, outcome.expired!, "expired");
    throw conflict("The approval expired; it takes no more votes.", "approval_not_pending");
  }
  let row = outcome.row!;
  if (outcome.decided) observeDecision(deps, row, outcome.decided);
  // The vote that completed the quorum moved the row to `executing` naming this process: it runs it.
  if (outcome.decided === "approved") row = await runExecution(deps, row);
  return { row, votes: await listVotes(deps.pool, [id]) };
}

/**
 * Takes over an approved request whose executor is gone and runs it (see the head of this file).
 * Returns the row as it ended, or undefined when it is not to be taken (its executor is alive, or it
 * is finished).
 */
export async function executeApproval(deps: ApprovalDeps, id: string): Promise<ApprovalRow | undefined> {
  const row = await takeExecution(deps.pool, id, deps.liveness?.key ?? null);
  return row ? runExecution(deps, row) : undefined;
}

/** Runs the approval this process holds as `executing`, and stores how it ended. */
async function runExecution(deps: ApprovalDeps, row: ApprovalRow): Promise<ApprovalRow> {
  const id = row.id;
  let ended: ApprovalRow;
  try {
    const agent = await getAgent(deps.pool, row.agent_id);
    if (!agent || !agent.is_active) throw forbidden("The agent is gone or inactive.", "agent_inactive");
    if (!agent.intents_api_enabled) throw forbidden("The Intents API is not enabled for this agent.", "intents_disabled");
    const principal = withHeld({ type: "agent", id: agent.id, agent, via: "api_key" }, row.held_addresses, row.held_delegates);
    const approval: ApprovalInput = {
      action: row.action,
      body: row.action_payload,
      heldAddresses: row.held_addresses,
      heldDelegates: row.held_delegates,
      executing: row.id,
    };
    const common = { principal, body: row.action_payload, idempotencyKey: executionKey(row.id), approval };
    const result =
      row.action === "sign_intent"
        ? await signIntent(deps, { ...common, request: deps.parsers.signIntent(common.body, agent) })
        : await submitTransaction(deps, {
            ...common,
            intent: deps.parsers.transaction(common.body, agent),
            mode: row.action === "transaction.sign" ? "sign" : "submit",
          });
    ended = await finish(deps, row, {
      status: "executed",
      result_status: result.status,
      result_body: result.body,
      executed_at: new Date(),
    });
  } catch (err) {
    const reason =
      err instanceof ServiceError ? `${err.opts.guardrail?.reason_code ?? err.code}: ${err.detail}` : "internal error while executing";
    if (!(err instanceof ServiceError)) deps.log.error({ err, approval_id: id }, "approval execution failed");
    ended = await finish(deps, row, {
      status: "failed",
      failure_reason: reason,
      result_status: err instanceof ServiceError ? err.status : 500,
      executed_at: new Date(),
    });
  }
  deps.metrics.approvalExecutions.inc({ result: ended.status });
  return ended;
}

async function finish(deps: PipelineDeps, row: ApprovalRow, set: Parameters<typeof updateApproval>[2]): Promise<ApprovalRow> {
  return withTransaction(deps.pool, async (tx) => {
    const ended = await updateApproval(tx, row.id, set);
    const result = ended.result_body ? safeJson(ended.result_body) : null;
    await appendAudit(tx, {
      action: "approval.executed",
      actor: { type: "system", id: "approvals" },
      resourceType: "approval",
      resourceId: row.id,
      details: {
        agent_id: row.agent_id,
        action: row.action,
        status: ended.status,
        ...(ended.failure_reason ? { failure_reason: ended.failure_reason } : {}),
        ...(result && typeof result === "object"
          ? { result_id: (result as { id?: unknown }).id ?? null, tx_hash: (result as { tx_hash?: unknown }).tx_hash ?? null }
          : {}),
      },
    });
    return ended;
  });
}

export async function cancelApproval(
  deps: PipelineDeps,
  id: string,
  actor: { type: "operator" | "agent"; id: string },
  canCancel: (row: ApprovalRow) => void,
): Promise<ApprovalRow> {
  return withTransaction(deps.pool, async (tx) => {
    const row = await lockApproval(tx, id);
    if (!row) throw notFound("No such approval.");
    canCancel(row);
    if (effectiveStatus(row) !== "pending")
      throw conflict(`The approval is ${effectiveStatus(row)}; it cannot be cancelled.`, "approval_not_pending");
    const done = await updateApproval(tx, id, { status: "cancelled", decided_at: new Date() });
    await appendAudit(tx, {
      action: "approval.cancelled",
      actor: actor as Operator,
      resourceType: "approval",
      resourceId: id,
      details: { agent_id: row.agent_id },
    });
    return done;
  });
}

/**
 * One pass of the sweep (every replica, every few seconds): expire approvals past their expiry (with
 * their event), take over executions whose process is gone, refresh the pending gauge.
 */
export async function sweepApprovals(deps: ApprovalDeps): Promise<{ expired: number; resumed: number }> {
  const expired = await withTransaction(deps.pool, async (tx) => {
    const rows = await expireApprovals(tx, 100);
    for (const r of rows) await expiredEvent(tx, r);
    return rows;
  });
  for (const r of expired) observeDecision(deps, r, "expired");
  let resumed = 0;
  for (const id of await orphanedExecutions(deps.pool, 20)) if (await executeApproval(deps, id)) resumed++;
  deps.metrics.approvalsPending.set(await countPending(deps.pool));
  return { expired: expired.length, resumed };
}

async function recordExpiry(tx: Parameters<typeof appendAudit>[0], row: ApprovalRow): Promise<ApprovalRow> {
  const done = await updateApproval(tx, row.id, { status: "expired", decided_at: new Date() });
  await expiredEvent(tx, row);
  return done;
}

/** The audit event of an approval that expired, whoever noticed (the sweep, or a vote that came too late). */
function expiredEvent(tx: Parameters<typeof appendAudit>[0], row: ApprovalRow) {
  return appendAudit(tx, {
    action: "approval.expired",
    actor: { type: "system", id: "approvals" },
    resourceType: "approval",
    resourceId: row.id,
    details: { agent_id: row.agent_id, action: row.action, status: "expired", expires_at: new Date(row.expires_at).toISOString() },
  });
}

async function decidedEvent(
  tx: Parameters<typeof appendAudit>[0],
  row: ApprovalRow,
  operator: Operator,
  reason: string | undefined,
  meta: { requestId?: string; ip?: string },
) {
  await appendAudit(tx, {
    action: "approval.decided",
    actor: operator,
    resourceType: "approval",
    resourceId: row.id,
    details: {
      agent_id: row.agent_id,
      action: row.action,
      decision: row.status === "rejected" ? "rejected" : "approved",
      status: row.status,
      current_approvals: row.current_approvals,
      required_approvals: row.required_approvals,
      reason: reason ?? null,
    },
    ...meta,
  });
}

function observeDecision(deps: PipelineDeps, row: ApprovalRow, outcome: string) {
  deps.metrics.approvalDecisionSeconds.observe({ outcome }, Math.max(0, (Date.now() - new Date(row.created_at).getTime()) / 1000));
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

/** Starts the sweep; returns its stop function. */
export function startApprovalSweep(deps: ApprovalDeps, everyMs: number): () => Promise<void> {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = sweepApprovals(deps)
      .catch((err) => deps.log.warn({ err: (err as Error)?.message }, "approvals sweep failed; will retry"))
      .finally(() => (running = undefined));
  }, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
