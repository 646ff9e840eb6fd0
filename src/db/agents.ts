// Agents and their credentials. SQL in plain sight; callers pass a pool or a transaction client.
import { columnParam, GUARDRAIL_COLUMNS, type GuardrailColumn, type GuardrailColumns } from "../agents/guardrail-fields.js";
import type { PoolClient, Queryable } from "./pool.js";

/** An agent: its identity and credentials here, its settings (guardrails and the rest) in the field table. */
export interface AgentRow extends GuardrailColumns {
  id: string;
  name: string;
  is_active: boolean;
  api_key_hash: Buffer;
  tokens_valid_after: Date;
  /** Bumped by triggers whenever anything that decides which keys this agent may use changes (migration 0016). */
  key_access_version: string;
  /** Approval rules (src/approvals/rules.ts, migration 0014); null: nothing waits for operators. */
  approval_rules?: unknown;
  last_active_at: Date | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

export async function getAgent(db: Queryable, id: string): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow>("SELECT * FROM agents WHERE id = $1 AND deleted_at IS NULL", [id]);
  return rows[0];
}

export async function getAgentByKeyHash(db: Queryable, hash: Buffer): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow>("SELECT * FROM agents WHERE api_key_hash = $1 AND deleted_at IS NULL", [hash]);
  return rows[0];
}

/** The agent behind a JWT, and whether that token's jti was revoked: one round trip per request. */
export async function getAgentForToken(db: Queryable, id: string, jti: string): Promise<{ agent?: AgentRow; revoked: boolean }> {
  const { rows } = await db.query<AgentRow & { token_revoked: boolean }>(
    `SELECT a.*, EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = $2) AS token_revoked
       FROM agents a WHERE a.id = $1 AND a.deleted_at IS NULL`,
    [id, jti],
  );
  if (!rows[0]) return { revoked: false };
  const { token_revoked, ...agent } = rows[0];
  return { agent, revoked: token_revoked };
}

export async function listAgents(db: Queryable): Promise<AgentRow[]> {
  const { rows } = await db.query<AgentRow>("SELECT * FROM agents WHERE deleted_at IS NULL ORDER BY created_at DESC, id DESC");
  return rows;
}

/** What the API writes: the name, whether the agent is active, and any field of the table. */
export type AgentWritable = Partial<Pick<AgentRow, "name" | "is_active" | GuardrailColumn>>;

const WRITABLE: Array<keyof AgentWritable> = ["name", "is_active", ...GUARDRAIL_COLUMNS];

export async function insertAgent(db: Queryable, id: string, keyHash: Buffer, fields: AgentWritable & { name: string }): Promise<AgentRow> {
  const cols = WRITABLE.filter((k) => fields[k] !== undefined);
  const values = cols.map((k) => columnParam(k, fields[k]));
  const { rows } = await db.query<AgentRow>(
    `INSERT INTO agents (id, api_key_hash${cols.map((c) => ", " + c).join("")})
     VALUES ($1, $2${cols.map((_, i) => `, $${i + 3}`).join("")}) RETURNING *`,
    [id, keyHash, ...values],
  );
  await db.query("INSERT INTO agent_spend_locks (agent_id) VALUES ($1) ON CONFLICT DO NOTHING", [id]);
  return rows[0];
}

export async function updateAgent(db: Queryable, id: string, fields: AgentWritable): Promise<AgentRow | undefined> {
  const cols = WRITABLE.filter((k) => fields[k] !== undefined);
  if (cols.length === 0) return getAgent(db, id);
  const { rows } = await db.query<AgentRow>(
    `UPDATE agents SET ${cols.map((c, i) => `${c} = $${i + 2}`).join(", ")}, updated_at = now()
      WHERE id = $1 AND deleted_at IS NULL RETURNING *`,
    [id, ...cols.map((k) => columnParam(k, fields[k]))],
  );
  return rows[0];
}

/** New key; every token issued before now stops working. */
export async function rotateAgentKey(db: Queryable, id: string, keyHash: Buffer): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow>(
    `UPDATE agents SET api_key_hash = $2, tokens_valid_after = clock_timestamp(), updated_at = now()
      WHERE id = $1 AND deleted_at IS NULL RETURNING *`,
    [id, keyHash],
  );
  return rows[0];
}

export async function softDeleteAgent(db: Queryable, id: string): Promise<boolean> {
  const r = await db.query(
    "UPDATE agents SET deleted_at = now(), is_active = false, tokens_valid_after = clock_timestamp() WHERE id = $1 AND deleted_at IS NULL",
    [id],
  );
  return (r.rowCount ?? 0) > 0;
}

export interface SpendToday {
  /** Rolling 24 h of value signed (wei). */
  spent_wei: bigint;
  /** Rolling 24 h of worst-case fees signed (wei): each row's largest gas_limit × max fee. */
  fees_wei: bigint;
  /** Transactions signed since 00:00 UTC. */
  count_today: number;
}

// What counts: every row whose signature left the service. A node's refusal (`failed`) uncounts a row
// only when its bytes were never handed out (signed_tx_disclosed, migrations/0008_spend_model.sql). The
// rule is the SQL function transaction_counts() (migrations/0015_spend_ledger.sql), which keeps the
// per-minute ledger these reads sum.

const ZERO: SpendToday = { spent_wei: 0n, fees_wei: 0n, count_today: 0 };

export async function spendToday(db: Queryable, agentId: string): Promise<SpendToday> {
  return (await spendOf(db, [agentId])).get(agentId) ?? ZERO;
}

/** A row of the SQL functions agent_spend and lock_agent_spend (numerics arrive as text). */
export type SpendRow = { agent_id: string; spent_wei: string; fees_wei: string; count_today: string };
export const spendFromRow = (r: Omit<SpendRow, "agent_id">): SpendToday => ({
  spent_wei: BigInt(r.spent_wei),
  fees_wei: BigInt(r.fees_wei),
  count_today: Number(r.count_today),
});
const toSpend = (rows: SpendRow[]) => new Map(rows.map((r) => [r.agent_id, spendFromRow(r)]));

/**
 * The rolling spend of several agents in one statement, from the per-minute ledger that the triggers of
 * migrations/0015_spend_ledger.sql keep (SQL function agent_spend there). No lock.
 */
export async function spendOf(db: Queryable, agentIds: string[]): Promise<Map<string, SpendToday>> {
  const { rows } = await db.query<SpendRow>("SELECT * FROM agent_spend($1::uuid[])", [agentIds]);
  return toSpend(rows);
}

/**
 * Locks the agents' spend rows (agent_spend_locks, FOR UPDATE, in id order, held to the end of `tx`)
 * and then reads their rolling spend, in one round trip (SQL function lock_agent_spend): everything
 * the previous holders committed is counted, and nothing this agent signs elsewhere can be counted
 * until `tx` ends.
 */
export async function lockSpend(tx: PoolClient, agentIds: string[]): Promise<Map<string, SpendToday>> {
  const { rows } = await tx.query<SpendRow>("SELECT * FROM lock_agent_spend($1::uuid[])", [agentIds]);
  return toSpend(rows);
}

/** Token amounts (base units) this agent moved out in the last 24 h, per token, excluding failed transactions. */
export async function tokenSpendToday(db: Queryable, agentId: string): Promise<Map<string, bigint>> {
  // A row's tx_id is a transaction (counted unless it failed) or a typed-data signature (always counted:
  // a signed permit or payment authorisation cannot be taken back).
  const { rows } = await db.query<{ token: string; spent: string }>(
    `SELECT s.token, sum(s.amount) AS spent
       FROM token_spend s
      WHERE s.agent_id = $1 AND s.created_at > now() - interval '24 hours'
        AND NOT EXISTS (SELECT 1 FROM transactions t
                         WHERE t.id = s.tx_id AND t.status IN ('failed', 'simulation_failed') AND NOT t.signed_tx_disclosed)
      GROUP BY s.token`,
    [agentId],
  );
  return new Map(rows.map((r) => [r.token, BigInt(r.spent)]));
}
