// The approval gate: where a request that passed every guardrail, before any nonce or signature, is
// held for operators when the agent's approval rules say so (202 + a pending approval). Also the
// entry wrapper that turns allowlist misses into approvals (when the rules ask for it) and answers
// resubmissions (`approval_id`, or a replayed Idempotency-Key) from the approval.
//
// Nothing here signs. Execution after the quorum is ./service.ts.
import { createHash, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { appendAudit } from "../db/audit.js";
import type { Principal } from "../auth/principal.js";
import { canonicalJson } from "../canonical-json.js";
import type { Chain } from "../chains/registry.js";
import { countPendingFor, getApproval, insertApproval, type ApprovalAction, type ApprovalRow } from "../db/approvals.js";
import { withTransaction, type Pool } from "../db/pool.js";
import { badRequest, conflict, notFound, ServiceError } from "../errors.js";
import type { Metrics } from "../metrics.js";
import { settleClaims, type Claim } from "../pipeline/idempotency.js";
import {
  ALLOWLIST_MISSES,
  DEFAULT_EXPIRY_SECONDS,
  DEFAULT_MAX_PENDING,
  DEFAULT_QUORUM,
  matchRules,
  rulesOf,
  type GateFacts,
} from "./rules.js";

/** What the pipeline needs to know about the approval a request belongs to. */
export interface ApprovalInput {
  /** The entry point that executes it after the quorum. */
  action: ApprovalAction;
  /** The request body as the agent sent it (without approval_id). */
  body: unknown;
  /** Allowlist misses the rules turned into this approval. */
  heldAddresses: string[];
  heldDelegates: string[];
  /** Set when this run is the approved execution: the gate lets it through. */
  executing?: string;
}

export interface GateDeps {
  pool: Pool;
  log: Logger;
  metrics: Metrics;
}

type AgentPrincipal = Extract<Principal, { type: "agent" }>;

export interface GateResult {
  status: number;
  body: string;
  /** The answer comes from an approval (a 202, or an executed approval's stored result): pass it on as it is. */
  approval?: true;
}

/** What operators read about the request: decoded, with the simulation's balance changes when there was one. */
export interface GateSummary {
  chain: Chain;
  from: string;
  details: Record<string, unknown>;
}

export function payloadHash(action: ApprovalAction, body: unknown): string {
  return "0x" + createHash("sha256").update(canonicalJson({ action, body }), "utf8").digest("hex");
}

/**
 * The pipeline's hook. Returns the 202 to answer when the request must wait (the approval is stored,
 * with its audit event and the Idempotency-Key's answer, in one transaction), or null to go ahead.
 */
export async function approvalGate(
  deps: GateDeps,
  input: { principal: AgentPrincipal; approval?: ApprovalInput; mode: string; body: unknown; requestId?: string; ip?: string },
  claim: Claim | undefined,
  facts: Omit<GateFacts, "heldAddresses" | "heldDelegates">,
  summary: GateSummary,
): Promise<GateResult | null> {
  if (input.approval?.executing) return null;
  const agent = input.principal.agent;
  const rules = rulesOf(agent);
  if (!rules) return null;
  const approval: ApprovalInput = input.approval ?? {
    action: input.mode === "sign" ? "transaction.sign" : "transaction.submit",
    body: input.body,
    heldAddresses: [],
    heldDelegates: [],
  };
  const reasons = matchRules(rules, { ...facts, heldAddresses: approval.heldAddresses, heldDelegates: approval.heldDelegates });
  if (reasons.length === 0) return null;

  const id = randomUUID();
  const expiresAt = new Date(Date.now() + (rules.expiry_seconds ?? DEFAULT_EXPIRY_SECONDS) * 1000);
  const row = await withTransaction(deps.pool, async (tx) => {
    // An agent's waiting approvals are bounded (max_pending): counted under a per-agent transaction
    // lock, so concurrent requests of one agent, on any replica, are counted one after the other.
    await tx.query("SELECT pg_advisory_xact_lock(hashtext('pending_approvals'), hashtext($1))", [agent.id]);
    const max = rules.max_pending ?? DEFAULT_MAX_PENDING;
    if ((await countPendingFor(tx, agent.id)) >= max) {
      throw new ServiceError(
        "too_many_pending_approvals",
        429,
        `This agent already has ${max} approvals waiting for operators (max_pending); retry once some are decided.`,
        { retryAfterSeconds: 60 },
      );
    }
    const row = await insertApproval(tx, {
      id,
      agent_id: agent.id,
      action: approval.action,
      action_payload: approval.body as Record<string, unknown>,
      payload_hash: payloadHash(approval.action, approval.body),
      reasons,
      held_addresses: approval.heldAddresses,
      held_delegates: approval.heldDelegates,
      summary: { chain: summary.chain.name, chain_id: summary.chain.chain_id, from: summary.from.toLowerCase(), ...summary.details },
      chain: summary.chain.name,
      chain_id: String(summary.chain.chain_id),
      required_approvals: rules.quorum ?? DEFAULT_QUORUM,
      expires_at: expiresAt,
    });
    await appendAudit(tx, {
      action: "approval.requested",
      actor: input.principal,
      resourceType: "approval",
      resourceId: id,
      details: {
        agent_id: agent.id,
        action: approval.action,
        chain: summary.chain.name,
        reasons,
        required_approvals: row.required_approvals,
        expires_at: expiresAt.toISOString(),
        payload_hash: row.payload_hash,
      },
      requestId: input.requestId,
      ip: input.ip,
    });
    // The Idempotency-Key's answer is this 202; a replay is answered from the approval (replayAnswer).
    if (claim) await settleClaims(tx, [{ claim, status: 202, body: pendingBody(row) }], []);
    return row;
  });
  deps.metrics.approvalsRequested.inc({ action: approval.action });
  return { status: 202, body: pendingBody(row), approval: true };
}

/** SubmitPendingApprovalResponse. */
export function pendingBody(row: ApprovalRow): string {
  return JSON.stringify({
    pending_approval_id: row.id,
    required_approvals: row.required_approvals,
    current_approvals: row.current_approvals,
    expires_at: new Date(row.expires_at).toISOString(),
    status: "pending_approval",
    message: `Held for operator approval (${row.reasons.map((r) => r.rule).join(", ")}); resubmit with approval_id ${row.id} or the same Idempotency-Key to get the result.`,
  });
}

/** The approval's status as a client sees it: a pending approval past its expiry is expired (the sweep records it). */
export function effectiveStatus(row: ApprovalRow): ApprovalRow["status"] {
  return row.status === "pending" && new Date(row.expires_at).getTime() <= Date.now() ? "expired" : row.status;
}

/** What a resubmission gets: the executed result, the 202 while it waits, or a 409 once it ended otherwise. */
export function answerFromApproval(row: ApprovalRow): GateResult {
  const status = effectiveStatus(row);
  if (status === "executed" && row.result_body !== null) return { status: row.result_status ?? 200, body: row.result_body, approval: true };
  if (status === "pending" || status === "executing") return { status: 202, body: pendingBody(row), approval: true };
  if (status === "failed")
    throw conflict(`The approved request failed when it was executed: ${row.failure_reason ?? "unknown reason"}`, "approval_failed");
  throw conflict(`The approval ${row.id} is ${status}; nothing was signed.`, `approval_${status}`);
}

/** A replayed Idempotency-Key: a stored 202 is answered from its approval as it is now. */
export async function replayAnswer(pool: Pool, agentId: string, stored: { status: number; body: string }): Promise<GateResult> {
  if (stored.status !== 202) return { status: 200, body: stored.body };
  const id = (JSON.parse(stored.body) as { pending_approval_id?: string }).pending_approval_id;
  const row = id ? await getApproval(pool, id) : undefined;
  if (!row || row.agent_id !== agentId) return { status: 202, body: stored.body, approval: true };
  return answerFromApproval(row);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Agents' distinct allowlist misses one request may turn into an approval. */
const MAX_HELD = 8;

/**
 * The entry of every route that can be held (submit, sign-only, sign intents). A body with
 * `approval_id` is a resubmission: answered from the approval, never run again. Otherwise the request
 * runs; when it is denied for an address outside the agent's allowlists and the rules have
 * `allowlist_miss`, it runs again with that address allowed, so that the gate holds it for operators
 * (the denial stays in the audit log, followed by the approval request).
 */
export async function withApprovals<I extends { principal: AgentPrincipal; body: unknown }>(
  deps: GateDeps,
  input: I,
  action: ApprovalAction,
  run: (input: I & { approval: ApprovalInput }) => Promise<GateResult>,
): Promise<GateResult> {
  const agent = input.principal.agent;
  const raw = input.body;
  if (raw !== null && typeof raw === "object" && !Array.isArray(raw) && "approval_id" in raw) {
    const { approval_id: approvalId, ...body } = raw as Record<string, unknown>;
    if (typeof approvalId !== "string" || !UUID.test(approvalId))
      throw badRequest("approval_id must be a UUID.", [{ field: "approval_id", message: "must be a UUID" }]);
    const row = await getApproval(deps.pool, approvalId);
    if (!row || row.agent_id !== agent.id) throw notFound("No such approval for this agent.");
    if (row.action !== action || row.payload_hash !== payloadHash(action, body)) {
      throw conflict("This request is not the one the approval was asked for (its payload hash differs).", "approval_payload_mismatch");
    }
    return answerFromApproval(row);
  }
  const rules = rulesOf(agent);
  const heldAddresses: string[] = [];
  const heldDelegates: string[] = [];
  for (;;) {
    const principal =
      heldAddresses.length + heldDelegates.length === 0 ? input.principal : withHeld(input.principal, heldAddresses, heldDelegates);
    try {
      return await run({
        ...input,
        principal,
        approval: { action, body: raw, heldAddresses: [...heldAddresses], heldDelegates: [...heldDelegates] },
      });
    } catch (err) {
      const g = err instanceof ServiceError ? err.opts.guardrail : undefined;
      const list = g && rules?.allowlist_miss ? ALLOWLIST_MISSES[g.reason_code] : undefined;
      const address = typeof g?.attempted === "string" ? g.attempted.toLowerCase() : "";
      const held = list === "delegate" ? heldDelegates : heldAddresses;
      if (!list || !/^0x[0-9a-f]{40}$/.test(address) || held.includes(address) || heldAddresses.length + heldDelegates.length >= MAX_HELD)
        throw err;
      held.push(address);
    }
  }
}

/** The agent as its approval lets it act: the held addresses join its allowlists, for this request only. */
export function withHeld(p: AgentPrincipal, addresses: string[], delegates: string[]): AgentPrincipal {
  const union = (a: string[], b: string[]) => [...new Set([...a.map((x) => x.toLowerCase()), ...b])];
  return {
    ...p,
    agent: {
      ...p.agent,
      tx_to_allowlist: addresses.length ? union(p.agent.tx_to_allowlist, addresses) : p.agent.tx_to_allowlist,
      eip7702_delegate_allowlist: delegates.length
        ? union(p.agent.eip7702_delegate_allowlist, delegates)
        : p.agent.eip7702_delegate_allowlist,
    },
  };
}
