// Agents and their credentials. SQL in plain sight; callers pass a pool or a transaction client.
import { columnParam, GUARDRAIL_COLUMNS, type GuardrailColumn, type GuardrailColumns } from "../agents/guardrail-fields.js";
import type { Queryable } from "./pool.js";

/** An agent: its identity and credentials here, its settings (guardrails and the rest) in the field table. */
export interface AgentRow extends GuardrailColumns {
  id: string;
  name: string;
  is_active: boolean;
  api_key_hash: Buffer;
  tokens_valid_after: Date;
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

// jsonb columns are sent as JSON text; arrays and scalars go as they are.
const param = (k: keyof AgentWritable, v: unknown) => columnParam(k, v);

export async function insertAgent(db: Queryable, id: string, keyHash: Buffer, fields: AgentWritable & { name: string }): Promise<AgentRow> {
  const cols = WRITABLE.filter((k) => fields[k] !== undefined);
  const values = cols.map((k) => param(k, fields[k]));
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
    [id, ...cols.map((k) => param(k, fields[k]))],
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
// only when its bytes were never handed out (signed_tx_disclosed, migrations/0008_spend_model.sql).
const COUNTS = `counts_toward_limits AND (status NOT IN ('failed', 'simulation_failed') OR signed_tx_disclosed)`;

export async function spendToday(db: Queryable, agentId: string): Promise<SpendToday> {
  const { rows } = await db.query<{ spent: string | null; fees: string | null; count_today: string }>(
    `SELECT sum(value_wei) AS spent, sum(fee_wei) AS fees,
            count(*) FILTER (WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS count_today
       FROM transactions
      WHERE agent_id = $1 AND created_at > now() - interval '24 hours' AND ${COUNTS}`,
    [agentId],
  );
  return { spent_wei: BigInt(rows[0].spent ?? "0"), fees_wei: BigInt(rows[0].fees ?? "0"), count_today: Number(rows[0].count_today) };
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
