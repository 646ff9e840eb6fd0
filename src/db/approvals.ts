// Pending approvals and their votes. SQL in plain sight; callers pass a pool or a transaction client.
import type { Queryable } from "./pool.js";
import { ownerGone } from "../pipeline/liveness.js";

export type ApprovalStatus = "pending" | "executing" | "executed" | "failed" | "rejected" | "expired" | "cancelled";
export type ApprovalAction = "transaction.submit" | "transaction.sign" | "sign_intent";

export interface ApprovalRow {
  id: string;
  agent_id: string;
  action: ApprovalAction;
  action_payload: Record<string, unknown>;
  payload_hash: string;
  reasons: Array<{ rule: string; detail: string }>;
  held_addresses: string[];
  held_delegates: string[];
  summary: Record<string, unknown>;
  chain: string;
  chain_id: string;
  status: ApprovalStatus;
  required_approvals: number;
  current_approvals: number;
  executor_key: number | null;
  result_status: number | null;
  result_body: string | null;
  failure_reason: string | null;
  expires_at: Date;
  decided_at: Date | null;
  executed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface VoteRow {
  id: string;
  approval_id: string;
  operator_id: string;
  decision: "approve" | "reject";
  reason: string | null;
  payload_hash: string;
  created_at: Date;
}

export type NewApproval = Pick<
  ApprovalRow,
  | "id"
  | "agent_id"
  | "action"
  | "action_payload"
  | "payload_hash"
  | "reasons"
  | "held_addresses"
  | "held_delegates"
  | "summary"
  | "chain"
  | "chain_id"
  | "required_approvals"
  | "expires_at"
>;

export async function insertApproval(db: Queryable, a: NewApproval): Promise<ApprovalRow> {
  const { rows } = await db.query<ApprovalRow>(
    `INSERT INTO pending_approvals (id, agent_id, action, action_payload, payload_hash, reasons, held_addresses, held_delegates, summary, chain, chain_id, status, required_approvals, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13) RETURNING *`,
    [
      a.id,
      a.agent_id,
      a.action,
      JSON.stringify(a.action_payload),
      a.payload_hash,
      JSON.stringify(a.reasons),
      a.held_addresses,
      a.held_delegates,
      JSON.stringify(a.summary),
      a.chain,
      a.chain_id,
      a.required_approvals,
      a.expires_at,
    ],
  );
  return rows[0];
}

export async function getApproval(db: Queryable, id: string): Promise<ApprovalRow | undefined> {
  const { rows } = await db.query<ApprovalRow>("SELECT * FROM pending_approvals WHERE id = $1", [id]);
  return rows[0];
}

/** The approval, locked: votes on one approval are counted one at a time, on every replica. */
export async function lockApproval(db: Queryable, id: string): Promise<ApprovalRow | undefined> {
  const { rows } = await db.query<ApprovalRow>("SELECT * FROM pending_approvals WHERE id = $1 FOR UPDATE", [id]);
  return rows[0];
}

export async function listVotes(db: Queryable, ids: string[]): Promise<VoteRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<VoteRow>("SELECT * FROM approval_votes WHERE approval_id = ANY($1::uuid[]) ORDER BY created_at, id", [
    ids,
  ]);
  return rows;
}

/** Records a vote; false when this operator key already voted on this approval (it counts once). */
export async function insertVote(db: Queryable, v: Omit<VoteRow, "created_at">): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO approval_votes (id, approval_id, operator_id, decision, reason, payload_hash) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (approval_id, operator_id) DO NOTHING`,
    [v.id, v.approval_id, v.operator_id, v.decision, v.reason, v.payload_hash],
  );
  return (r.rowCount ?? 0) > 0;
}

export async function updateApproval(
  db: Queryable,
  id: string,
  set: Partial<
    Pick<
      ApprovalRow,
      "status" | "current_approvals" | "decided_at" | "executor_key" | "result_status" | "result_body" | "failure_reason" | "executed_at"
    >
  >,
): Promise<ApprovalRow> {
  const cols = Object.keys(set);
  const { rows } = await db.query<ApprovalRow>(
    `UPDATE pending_approvals SET ${cols.map((c, i) => `${c} = $${i + 2}`).join(", ")}, updated_at = now() WHERE id = $1 RETURNING *`,
    [id, ...cols.map((c) => (set as Record<string, unknown>)[c])],
  );
  return rows[0];
}

/**
 * Takes over the execution of an approval whose executor is gone. The row is `executing` from the vote
 * that completed the quorum, naming that vote's process, which runs it; another process takes it only
 * when that process holds no liveness lock any more (or, with no liveness key, after 60 s). The
 * UPDATE's row lock and its WHERE make the takeover one process's.
 */
export async function takeExecution(db: Queryable, id: string, executorKey: number | null): Promise<ApprovalRow | undefined> {
  const { rows } = await db.query<ApprovalRow>(
    `UPDATE pending_approvals SET executor_key = $2, updated_at = now()
      WHERE id = $1 AND status = 'executing' AND result_body IS NULL
        AND ((executor_key IS NULL AND updated_at < now() - interval '60 seconds')
             OR (executor_key IS NOT NULL AND ${ownerGone("executor_key")}))
      RETURNING *`,
    [id, executorKey],
  );
  return rows[0];
}

/** Executions whose executor is gone: the sweep's work. */
export async function orphanedExecutions(db: Queryable, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM pending_approvals
      WHERE status = 'executing' AND result_body IS NULL
        AND ((executor_key IS NULL AND updated_at < now() - interval '60 seconds')
             OR (executor_key IS NOT NULL AND ${ownerGone("executor_key")}))
      ORDER BY updated_at LIMIT $1`,
    [limit],
  );
  return rows.map((r) => r.id);
}

/** Ends pending approvals past their expiry; returns them. Rows another transaction holds are left for the next pass. */
export async function expireApprovals(db: Queryable, limit: number): Promise<ApprovalRow[]> {
  const { rows } = await db.query<ApprovalRow>(
    `UPDATE pending_approvals SET status = 'expired', decided_at = now(), updated_at = now()
      WHERE id IN (SELECT id FROM pending_approvals WHERE status = 'pending' AND expires_at <= now()
                    ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
      RETURNING *`,
    [limit],
  );
  return rows;
}

export interface ApprovalFilter {
  agentId?: string;
  status?: ApprovalStatus;
  chain?: string;
  limit: number;
  offset: number;
}

export async function listApprovals(db: Queryable, f: ApprovalFilter): Promise<{ rows: ApprovalRow[]; total: number }> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (f.agentId) where.push(`agent_id = $${args.push(f.agentId)}`);
  if (f.status) where.push(`status = $${args.push(f.status)}`);
  if (f.chain) where.push(`chain = $${args.push(f.chain)}`);
  const w = where.length ? `WHERE ${where.join(" AND ")}` : "";
  const total = await db.query<{ n: string }>(`SELECT count(*) AS n FROM pending_approvals ${w}`, args);
  const { rows } = await db.query<ApprovalRow>(
    `SELECT * FROM pending_approvals ${w} ORDER BY created_at DESC, id DESC LIMIT $${args.length + 1} OFFSET $${args.length + 2}`,
    [...args, f.limit, f.offset],
  );
  return { rows, total: Number(total.rows[0].n) };
}

export async function countPending(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM pending_approvals WHERE status = 'pending'");
  return Number(rows[0].n);
}

/** Sets an agent's approval rules (null: none). Returns false when there is no such agent. */
export async function setApprovalRules(db: Queryable, agentId: string, rules: unknown): Promise<boolean> {
  const r = await db.query("UPDATE agents SET approval_rules = $2, updated_at = now() WHERE id = $1 AND deleted_at IS NULL", [
    agentId,
    rules === null ? null : JSON.stringify(rules),
  ]);
  return (r.rowCount ?? 0) > 0;
}

/** An agent's approvals still waiting (not past their expiry). */
export async function countPendingFor(db: Queryable, agentId: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    "SELECT count(*) AS n FROM pending_approvals WHERE agent_id = $1 AND status = 'pending' AND expires_at > now()",
    [agentId],
  );
  return Number(rows[0].n);
}
