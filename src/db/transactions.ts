// Transaction rows: insert at signing, update after broadcast and by the tracker, read for the API.
import type { Queryable } from "./pool.js";
import { auditInsertSql } from "./audit.js";

/** The `status` and `chain_status` values a row can hold; the API's filters list the same. */
export const TX_STATUSES = ["pending", "signed", "sign_only", "broadcast", "failed", "simulation_failed"] as const;
export const CHAIN_STATUSES = ["unconfirmed", "confirmed", "reverted", "replaced", "dropped", "chain_reset"] as const;
export type TxStatus = (typeof TX_STATUSES)[number];
export type ChainStatus = (typeof CHAIN_STATUSES)[number];

/**
 * A signed row's status and audit action, by the pipeline's mode: `submit` rows are broadcast,
 * `sign` rows handed back unsent. Read one way by the pipeline, the other by webhooks/fanout.ts.
 */
export const SIGNED_BY_MODE = {
  submit: { status: "signed", action: "transaction.submit" },
  sign: { status: "sign_only", action: "transaction.sign" },
} as const;

export interface TxRow {
  id: string;
  agent_id: string;
  chain: string;
  chain_id: string;
  from_address: string;
  to_address: string;
  value_wei: string;
  data: string | null;
  nonce: string | null;
  gas_limit: string | null;
  gas_price: string | null;
  max_fee_per_gas: string | null;
  max_priority_fee_per_gas: string | null;
  tx_type: string | null;
  signing_key_path: string;
  status: TxStatus;
  tx_hash: string | null;
  signed_tx: string | null;
  error_message: string | null;
  simulation_id: string | null;
  simulation_status: string | null;
  chain_status: ChainStatus | null;
  block_number: string | null;
  block_hash: string | null;
  confirmations: number;
  replaced_by: string | null;
  broadcast_attempts: number;
  last_broadcast_at: Date | null;
  counts_toward_limits: boolean;
  /** Largest worst-case fee (gas_limit × max fee) of the row's signatures, wei. */
  fee_wei: string;
  /** The signed bytes may have left the service: the row counts toward limits even if a node refuses it later. */
  signed_tx_disclosed: boolean;
  created_at: Date;
  signed_at: Date | null;
  updated_at: Date;
}

export type NewTx = Pick<
  TxRow,
  | "id"
  | "agent_id"
  | "chain"
  | "from_address"
  | "to_address"
  | "data"
  | "tx_type"
  | "signing_key_path"
  | "status"
  | "tx_hash"
  | "signed_tx"
  | "error_message"
  | "simulation_id"
  | "simulation_status"
> & {
  chain_id: number;
  value_wei: bigint;
  nonce: bigint | null;
  gas_limit: bigint | null;
  gas_price: bigint | null;
  max_fee_per_gas: bigint | null;
  max_priority_fee_per_gas: bigint | null;
  signed_at: Date | null;
  /** False for rows that spend nothing of an agent's (a failed simulation, a gap fill); default true. */
  counts_toward_limits?: boolean;
};

const str = (v: bigint | null) => (v === null ? null : v.toString());

export async function insertTransaction(db: Queryable, t: NewTx): Promise<TxRow> {
  const { rows } = await db.query<TxRow>(
    `INSERT INTO transactions (id, agent_id, chain, chain_id, from_address, to_address, value_wei, data, nonce,
        gas_limit, gas_price, max_fee_per_gas, max_priority_fee_per_gas, tx_type, signing_key_path, status,
        tx_hash, signed_tx, error_message, simulation_id, simulation_status, signed_at, fee_wei, counts_toward_limits)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
             coalesce($10::bigint, 0) * coalesce($12::numeric, $11::numeric, 0), $23)
     RETURNING *`,
    [
      t.id,
      t.agent_id,
      t.chain,
      t.chain_id,
      t.from_address,
      t.to_address,
      t.value_wei.toString(),
      t.data,
      str(t.nonce),
      str(t.gas_limit),
      str(t.gas_price),
      str(t.max_fee_per_gas),
      str(t.max_priority_fee_per_gas),
      t.tx_type,
      t.signing_key_path,
      t.status,
      t.tx_hash,
      t.signed_tx,
      t.error_message,
      t.simulation_id,
      t.simulation_status,
      t.signed_at,
      t.counts_toward_limits ?? true,
    ],
  );
  return rows[0];
}

/** What a group commit writes besides the rows: idempotency links and token spend, per row id. */
export interface GroupExtras {
  /** Idempotency claims to link to their row (key hash as hex). */
  links: Array<{ agent_id: string; key_hash: string; tx_id: string }>;
  tokenSpend: Array<{ agent_id: string; chain_id: number; token: string; amount: bigint; tx_id: string }>;
}

/**
 * The rows of a group commit, their audit events (already rendered: `auditRecordset`), token spend and
 * idempotency links, in one statement. Rows are inserted in the given order with increasing
 * `created_at` (clock_timestamp), so listings keep submission order within a group. Returns the rows
 * in that order.
 */
export async function insertTransactionGroup(db: Queryable, txs: NewTx[], audit: string, extras: GroupExtras): Promise<TxRow[]> {
  const rows = txs.map((t) => ({
    ...t,
    value_wei: t.value_wei.toString(),
    nonce: str(t.nonce),
    gas_limit: str(t.gas_limit),
    gas_price: str(t.gas_price),
    max_fee_per_gas: str(t.max_fee_per_gas),
    max_priority_fee_per_gas: str(t.max_priority_fee_per_gas),
  }));
  const { rows: inserted } = await db.query<TxRow>(
    `WITH inserted AS (
       INSERT INTO transactions (id, agent_id, chain, chain_id, from_address, to_address, value_wei, data, nonce,
           gas_limit, gas_price, max_fee_per_gas, max_priority_fee_per_gas, tx_type, signing_key_path, status,
           tx_hash, signed_tx, error_message, simulation_id, simulation_status, signed_at, created_at,
           fee_wei, signed_tx_disclosed)
       SELECT x.id, x.agent_id, x.chain, x.chain_id, x.from_address, x.to_address, x.value_wei, x.data, x.nonce,
              x.gas_limit, x.gas_price, x.max_fee_per_gas, x.max_priority_fee_per_gas, x.tx_type, x.signing_key_path, x.status,
              x.tx_hash, x.signed_tx, x.error_message, x.simulation_id, x.simulation_status, x.signed_at, clock_timestamp(),
              -- Worst-case fee; and the bytes count as handed out until a node's refusal before the
              -- answer says otherwise (markFailed).
              coalesce(x.gas_limit, 0) * coalesce(x.max_fee_per_gas, x.gas_price, 0), true
         FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, agent_id uuid, chain text, chain_id bigint, from_address text,
              to_address text, value_wei numeric, data text, nonce bigint, gas_limit bigint, gas_price numeric,
              max_fee_per_gas numeric, max_priority_fee_per_gas numeric, tx_type text, signing_key_path text, status text,
              tx_hash text, signed_tx text, error_message text, simulation_id text, simulation_status text, signed_at timestamptz)
       RETURNING *
     ), audit AS (
       ${auditInsertSql("$2")}
     ), spend AS (
       INSERT INTO token_spend (agent_id, chain_id, token, amount, tx_id)
       SELECT s.agent_id, s.chain_id, s.token, s.amount, s.tx_id
         FROM jsonb_to_recordset($3::jsonb) AS s(agent_id uuid, chain_id bigint, token text, amount numeric, tx_id uuid)
     ), links AS (
       UPDATE idempotency_keys k SET tx_id = l.tx_id
         FROM jsonb_to_recordset($4::jsonb) AS l(agent_id uuid, key_hash text, tx_id uuid)
        WHERE k.agent_id = l.agent_id AND k.key_hash = decode(l.key_hash, 'hex')
     )
     SELECT * FROM inserted`,
    [
      JSON.stringify(rows),
      audit,
      JSON.stringify(extras.tokenSpend.map((s) => ({ ...s, amount: s.amount.toString() }))),
      JSON.stringify(extras.links),
    ],
  );
  const byId = new Map(inserted.map((r) => [r.id, r]));
  return txs.map((t) => byId.get(t.id)!);
}

/**
 * Rows a node accepted (or already knew), in one statement: status `broadcast` (an earlier "Broadcast
 * pending: …" from a timed-out send no longer applies), their attempts (if the tracker recorded any)
 * marked sent, and their audit events (`auditRecordset`). One row or a commit group's.
 */
export async function markBroadcastGroup(db: Queryable, ids: string[], hashes: string[], audit: string): Promise<TxRow[]> {
  const { rows } = await db.query<TxRow>(
    `WITH sent AS (
       UPDATE transactions
          SET status = 'broadcast', chain_status = coalesce(chain_status, 'unconfirmed'),
              error_message = CASE WHEN status = 'signed' THEN NULL ELSE error_message END,
              broadcast_attempts = broadcast_attempts + 1, last_broadcast_at = now(), updated_at = now()
        WHERE id = ANY($1::uuid[]) RETURNING *
     ), attempts AS (
       UPDATE transaction_attempts
          SET status = CASE WHEN status = 'signed' THEN 'sent' ELSE status END, error_message = NULL,
              send_count = send_count + 1, last_sent_at = now(), updated_at = now()
        WHERE tx_hash = ANY($2::text[])
     ), audit AS (
       ${auditInsertSql("$3")}
     )
     SELECT * FROM sent`,
    [ids, hashes, audit],
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.map((id) => byId.get(id)!);
}

/**
 * A node refused the row's signature. `beforeAnswer`: its bytes were never handed out (the submit
 * pipeline records the refusal before it answers, and a failed answer carries no bytes), so the row
 * stops counting toward the agent's limits; otherwise it keeps counting.
 */
export async function markFailed(db: Queryable, id: string, message: string, beforeAnswer = false): Promise<TxRow> {
  const { rows } = await db.query<TxRow>(
    `UPDATE transactions
        SET status = 'failed', error_message = $2, broadcast_attempts = broadcast_attempts + 1,
            last_broadcast_at = now(), updated_at = now(),
            signed_tx_disclosed = signed_tx_disclosed AND NOT $3
      WHERE id = $1 RETURNING *`,
    [id, message, beforeAnswer],
  );
  return rows[0];
}

/** Unknown outcome: stays `signed`; the tracker keeps rebroadcasting it. */
export async function markBroadcastAttempt(db: Queryable, id: string, message: string): Promise<TxRow> {
  const { rows } = await db.query<TxRow>(
    `UPDATE transactions
        SET error_message = $2, broadcast_attempts = broadcast_attempts + 1, last_broadcast_at = now(), updated_at = now()
      WHERE id = $1 RETURNING *`,
    [id, message],
  );
  return rows[0];
}

export async function getTransaction(db: Queryable, id: string, agentId?: string): Promise<TxRow | undefined> {
  const { rows } = agentId
    ? await db.query<TxRow>("SELECT * FROM transactions WHERE id = $1 AND agent_id = $2", [id, agentId])
    : await db.query<TxRow>("SELECT * FROM transactions WHERE id = $1", [id]);
  return rows[0];
}

/** A position in the (created_at, id) order; `ts` is UTC ISO 8601 to the microsecond (a JS Date
 * holds only milliseconds, and rows created within one millisecond would be skipped between pages). */
export interface TxCursor {
  ts: string;
  id: string;
}

export interface TxFilter {
  agentId?: string;
  status?: string;
  chain?: string;
  chainStatus?: string;
  from?: Date;
  to?: Date;
  limit: number;
  after?: TxCursor;
}

export type ListedTx = TxRow & { cursor_ts: string };

/** Newest first; keyset pagination on (created_at, id), served by the (agent_id, created_at, id) or (created_at, id) index. */
export async function listTransactions(db: Queryable, f: TxFilter): Promise<ListedTx[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace("?", `$${params.length}`));
  };
  if (f.agentId) add("agent_id = ?", f.agentId);
  if (f.status) add("status = ?", f.status);
  if (f.chain) add("chain = ?", f.chain);
  if (f.chainStatus) add("chain_status = ?", f.chainStatus);
  if (f.from) add("created_at >= ?", f.from);
  if (f.to) add("created_at < ?", f.to);
  if (f.after) {
    params.push(f.after.ts, f.after.id);
    where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  params.push(f.limit);
  const { rows } = await db.query<ListedTx>(
    `SELECT *, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_ts
       FROM transactions ${where.length ? "WHERE " + where.join(" AND ") : ""}
      ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  return rows;
}
