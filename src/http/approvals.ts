// Human approvals: the agent's approval rules (operators set them), and the pending approvals they
// produce: listed and read by operators (an agent reads its own), approved or rejected by operator
// keys, cancelled, executed. The logic is src/approvals/; these handlers check who may call.
import type { FastifyRequest } from "fastify";
import { requireOperator, requirePrincipal, requireReader } from "../auth/principal.js";
import { appendAudit } from "../db/audit.js";
import type { ChainRegistry } from "../chains/registry.js";
import { getAgent } from "../db/agents.js";
import { getApproval, listApprovals, listVotes, setApprovalRules, type ApprovalRow, type VoteRow } from "../db/approvals.js";
import { withTransaction } from "../db/pool.js";
import { badRequest, conflict, forbidden, notFound } from "../errors.js";
import type { PipelineDeps } from "../pipeline/types.js";
import { effectiveStatus } from "../approvals/gate.js";
import { DEFAULT_EXPIRY_SECONDS, DEFAULT_QUORUM, rulesOf } from "../approvals/rules.js";
import { cancelApproval, castVote, executeApproval, startApprovalSweep, type ApprovalDeps } from "../approvals/service.js";
import { requestParsers } from "./intents.js";
import type { App } from "./types.js";
import {
  AgentParams,
  ApprovalRulesBody,
  ApprovalRulesRequest,
  ApprovePendingApprovalRequestSchema,
  IdParams,
  ListQuery,
} from "./schemas/approvals.js";
import { UUID } from "../uuid.js";

/** The Location of a 202's pending approval. */
export function approvalLocation(body: string): string {
  return `/v1/pending-approvals/${(JSON.parse(body) as { pending_approval_id: string }).pending_approval_id}`;
}

/** PendingApprovalResponse, with what operators need to decide: the reasons and the decoded request. */
export function toApprovalResponse(r: ApprovalRow, votes: VoteRow[]) {
  const result = r.result_body !== null ? JSON.parse(r.result_body) : null;
  return {
    id: r.id,
    agent_id: r.agent_id,
    action: r.action,
    action_payload: r.action_payload,
    payload_hash: r.payload_hash,
    submitted_by: r.agent_id,
    submitted_by_type: "agent",
    status: effectiveStatus(r),
    required_approvals: r.required_approvals,
    current_approvals: r.current_approvals,
    reasons: r.reasons,
    summary: r.summary,
    chain: r.chain,
    chain_id: Number(r.chain_id),
    result,
    failure_reason: r.failure_reason,
    expires_at: new Date(r.expires_at).toISOString(),
    decided_at: r.decided_at ? new Date(r.decided_at).toISOString() : null,
    // Absent rather than null where the reference types a string.
    ...(r.executed_at ? { executed_at: new Date(r.executed_at).toISOString() } : {}),
    created_at: new Date(r.created_at).toISOString(),
    updated_at: new Date(r.updated_at).toISOString(),
    signatures: votes
      .filter((v) => v.approval_id === r.id)
      .map((v) => ({
        id: v.id,
        approver_id: v.operator_id,
        approver_type: "operator_key",
        decision: v.decision,
        ...(v.reason !== null ? { reason: v.reason } : {}),
        created_at: new Date(v.created_at).toISOString(),
      })),
  };
}

/** The approval, readable by operators and by the agent it belongs to; 404 for anyone else (no probing). */
async function readable(deps: { pool: PipelineDeps["pool"] }, req: FastifyRequest, id: string): Promise<ApprovalRow> {
  if (!UUID.test(id)) throw notFound("No such approval.");
  const p = requirePrincipal(req);
  const row = await getApproval(deps.pool, id);
  if (!row || (p.type === "agent" && p.id !== row.agent_id)) throw notFound("No such approval.");
  return row;
}

export async function approvalRoutes(
  app: App,
  deps: PipelineDeps & { chains: ChainRegistry },
  opts: { sweepMs?: number } = {},
): Promise<void> {
  // An approved request runs again through the routes' own parsing.
  const executing: ApprovalDeps = { ...deps, parsers: requestParsers(deps) };
  // Every replica sweeps: expiries, executions whose process died, the pending gauge.
  const stop = startApprovalSweep(executing, opts.sweepMs ?? 2000);
  app.addHook("onClose", stop);

  app.get(
    "/v1/agents/:agent_id/approval-rules",
    {
      schema: { tags: ["Approvals"], summary: "An agent's approval rules (null: none)", params: AgentParams },
    },
    async (req) => {
      requireReader(req, req.params.agent_id);
      const agent = UUID.test(req.params.agent_id) ? await getAgent(deps.pool, req.params.agent_id) : undefined;
      if (!agent) throw notFound("No such agent.");
      return {
        agent_id: agent.id,
        approval_rules: rulesOf(agent),
        defaults: { quorum: DEFAULT_QUORUM, expiry_seconds: DEFAULT_EXPIRY_SECONDS },
      };
    },
  );

  app.put(
    "/v1/agents/:agent_id/approval-rules",
    {
      schema: {
        tags: ["Approvals"],
        summary: "Set an agent's approval rules (operators); null removes them",
        params: AgentParams,
        body: ApprovalRulesBody,
      },
      validatorCompiler: () => (data: unknown) => ({ value: data }),
    },
    async (req) => {
      const op = requireOperator(req);
      const parsed = ApprovalRulesRequest.safeParse(req.body);
      if (!parsed.success) {
        const errors = parsed.error.issues.map((i) => ({ field: i.path.join(".") || "body", message: i.message }));
        throw badRequest(
          `Invalid approval rules: ${errors
            .slice(0, 5)
            .map((e) => `${e.field}: ${e.message}`)
            .join("; ")}`,
          errors,
        );
      }
      const id = req.params.agent_id;
      if (!UUID.test(id)) throw notFound("No such agent.");
      await withTransaction(deps.pool, async (tx) => {
        if (!(await setApprovalRules(tx, id, parsed.data.approval_rules))) throw notFound("No such agent.");
        await appendAudit(tx, {
          action: "agent.approval_rules",
          actor: op,
          resourceType: "agent",
          resourceId: id,
          details: { approval_rules: parsed.data.approval_rules },
          requestId: req.id,
          ip: req.ip,
        });
      });
      return { agent_id: id, approval_rules: parsed.data.approval_rules };
    },
  );

  app.get(
    "/v1/pending-approvals",
    {
      schema: {
        tags: ["Approvals"],
        summary: "List approvals (operators: all, filtered by agent, status, chain; an agent: its own)",
        querystring: ListQuery,
      },
    },
    async (req) => {
      const p = requirePrincipal(req);
      const q = req.query;
      if (p.type === "agent" && q.agent_id !== undefined && q.agent_id !== p.id)
        throw forbidden("An agent may list only its own approvals.");
      let chain: string | undefined;
      if (q.chain !== undefined) {
        const c = deps.chains.resolve(q.chain);
        if (!c) throw badRequest(`Unknown chain '${q.chain}'.`, [{ field: "chain", message: "is not a configured chain" }]);
        chain = c.name;
      }
      const { rows, total } = await listApprovals(deps.pool, {
        agentId: p.type === "agent" ? p.id : q.agent_id,
        status: q.status,
        chain,
        limit: q.limit,
        offset: q.offset,
      });
      const votes = await listVotes(
        deps.pool,
        rows.map((r) => r.id),
      );
      return { pending_approvals: rows.map((r) => toApprovalResponse(r, votes)), total };
    },
  );

  app.get(
    "/v1/pending-approvals/:id",
    {
      schema: {
        tags: ["Approvals"],
        summary: "Read an approval: the decoded request, why it waits, the votes, the result",
        params: IdParams,
      },
    },
    async (req) => {
      const row = await readable(deps, req, req.params.id);
      return toApprovalResponse(row, await listVotes(deps.pool, [row.id]));
    },
  );

  app.post(
    "/v1/pending-approvals/:id/approve",
    {
      schema: {
        tags: ["Approvals"],
        summary: "Approve or reject (operator keys; one vote per key, bound to the payload hash)",
        params: IdParams,
        body: ApprovePendingApprovalRequestSchema,
      },
      validatorCompiler: () => (data: unknown) => ({ value: data }),
    },
    async (req) => {
      const op = requireOperator(req);
      const parsed = ApprovePendingApprovalRequestSchema.safeParse(req.body);
      if (!parsed.success) {
        const errors = parsed.error.issues.map((i) => ({ field: i.path.join(".") || "body", message: i.message }));
        throw badRequest(
          `Invalid vote: ${errors
            .slice(0, 5)
            .map((e) => `${e.field}: ${e.message}`)
            .join("; ")}`,
          errors,
        );
      }
      if (!UUID.test(req.params.id)) throw notFound("No such approval.");
      const { row, votes } = await castVote(executing, req.params.id, op, parsed.data, { requestId: req.id, ip: req.ip });
      return toApprovalResponse(row, votes);
    },
  );

  app.post(
    "/v1/pending-approvals/:id/execute",
    {
      schema: {
        tags: ["Approvals"],
        summary:
          "Execute an approved request (it runs by itself when the quorum is reached; this answers its result, or runs one whose executor died)",
        params: IdParams,
      },
    },
    async (req) => {
      requireOperator(req);
      let row = await readable(deps, req, req.params.id);
      if (row.status === "executing") row = (await executeApproval(executing, row.id)) ?? row;
      const status = effectiveStatus(row);
      if (status !== "executed" && status !== "failed" && status !== "executing")
        throw conflict(`The approval is ${status}: it has not been approved.`, "approval_not_approved");
      return {
        pending_approval_id: row.id,
        status,
        executed_at: row.executed_at ? new Date(row.executed_at).toISOString() : null,
        result: row.result_body !== null ? JSON.parse(row.result_body) : null,
        failure_reason: row.failure_reason,
      };
    },
  );

  app.post(
    "/v1/pending-approvals/:id/cancel",
    {
      schema: { tags: ["Approvals"], summary: "Cancel a pending approval (operators, or the agent that asked)", params: IdParams },
    },
    async (req) => {
      const p = requirePrincipal(req);
      await readable(deps, req, req.params.id);
      const row = await cancelApproval(deps, req.params.id, { type: p.type, id: p.id }, () => {});
      return toApprovalResponse(row, await listVotes(deps.pool, [row.id]));
    },
  );
}
