// Signed attempts of a transaction (table transaction_attempts): the first signature and every
// replacement for the same nonce. The transaction row keeps its id; its attempts are its hash history,
// and the tracker reads them to know which hashes may still be mined and which one to resend. The
// first attempt is written lazily from the row (ensureAttempts), never on the submit's hot path.
// Writes only attempt rows; callers hold whatever lock or lease the change needs.
import type { Queryable } from "./pool.js";
import type { TxRow } from "./transactions.js";

export type AttemptKind = "original" | "bump" | "speed_up" | "cancel";
export type AttemptStatus = "signed" | "sent" | "replaced" | "mined" | "failed" | "dropped";

export interface AttemptRow {
  id: string;
  tx_id: string;
  kind: AttemptKind;
  tx_hash: string;
  signed_tx: string;
  to_address: string;
  value_wei: string;
  gas_limit: string | null;
  gas_price: string | null;
  max_fee_per_gas: string | null;
  max_priority_fee_per_gas: string | null;
  status: AttemptStatus;
  replaced_by: string | null;
  error_message: string | null;
  send_count: number;
  last_sent_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewAttempt {
  tx_id: string;
  kind: AttemptKind;
  tx_hash: string;
  signed_tx: string;
  to_address: string;
  value_wei: bigint | string;
  gas_limit: bigint | string | null;
  gas_price: bigint | string | null;
  max_fee_per_gas: bigint | string | null;
  max_priority_fee_per_gas: bigint | string | null;
  status: AttemptStatus;
}

const str = (v: bigint | string | null) => (v === null ? null : v.toString());

export async function insertAttempt(db: Queryable, a: NewAttempt): Promise<AttemptRow> {
  const { rows } = await db.query<AttemptRow>(
    `INSERT INTO transaction_attempts (tx_id, kind, tx_hash, signed_tx, to_address, value_wei, gas_limit, gas_price,
        max_fee_per_gas, max_priority_fee_per_gas, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     RETURNING *`,
    [
      a.tx_id,
      a.kind,
      a.tx_hash,
      a.signed_tx,
      a.to_address,
      str(a.value_wei),
      str(a.gas_limit),
      str(a.gas_price),
      str(a.max_fee_per_gas),
      str(a.max_priority_fee_per_gas),
      a.status,
    ],
  );
  return rows[0];
}

/** The row's own signature as its original attempt's fields. */
function originalOf(row: TxRow) {
  return {
    tx_id: row.id,
    kind: "original" as const,
    tx_hash: row.tx_hash!,
    signed_tx: row.signed_tx!,
    to_address: row.to_address,
    value_wei: row.value_wei,
    gas_limit: row.gas_limit,
    gas_price: row.gas_price,
    max_fee_per_gas: row.max_fee_per_gas,
    max_priority_fee_per_gas: row.max_priority_fee_per_gas,
  };
}

/** The first attempt, from the row that holds it (inside the transaction that inserts the row). */
export async function recordAttempt(db: Queryable, row: TxRow, status: AttemptStatus = "signed"): Promise<AttemptRow> {
  return insertAttempt(db, { ...originalOf(row), status });
}

/** The history to show: the stored attempts, or the row's own signature while none is stored yet. */
export function attemptsOrOriginal(row: TxRow, stored: AttemptRow[]): AttemptRow[] {
  if (stored.length > 0 || !row.signed_tx || !row.tx_hash || row.status === "sign_only") return stored;
  return [
    {
      id: "0",
      ...originalOf(row),
      status: row.status === "failed" ? "failed" : row.block_number !== null ? "mined" : row.status === "broadcast" ? "sent" : "signed",
      replaced_by: null,
      error_message: null,
      send_count: row.broadcast_attempts,
      last_sent_at: row.last_broadcast_at,
      created_at: row.signed_at ?? row.created_at,
      updated_at: row.updated_at,
    },
  ];
}

/** Oldest first. */
export async function listAttempts(db: Queryable, txId: string): Promise<AttemptRow[]> {
  const { rows } = await db.query<AttemptRow>("SELECT * FROM transaction_attempts WHERE tx_id = $1 ORDER BY id", [txId]);
  return rows;
}

/**
 * The first attempt is the row itself (its hash, signature and fees), so the submit pipeline does not
 * write it inside its nonce-locked transaction: it is recorded here, from the row, the first time the
 * tracker or an operator needs the history.
 */
export async function ensureAttempts(db: Queryable, row: TxRow): Promise<AttemptRow[]> {
  const attempts = await listAttempts(db, row.id);
  if (attempts.length > 0 || !row.signed_tx || !row.tx_hash) return attempts;
  await db.query(
    `INSERT INTO transaction_attempts (tx_id, kind, tx_hash, signed_tx, to_address, value_wei, gas_limit, gas_price,
        max_fee_per_gas, max_priority_fee_per_gas, status, send_count, last_sent_at)
     SELECT id, 'original', tx_hash, signed_tx, to_address, value_wei, gas_limit, gas_price, max_fee_per_gas,
            max_priority_fee_per_gas, CASE WHEN status = 'broadcast' THEN 'sent' ELSE 'signed' END,
            broadcast_attempts, last_broadcast_at
       FROM transactions WHERE id = $1
     ON CONFLICT (tx_hash) DO NOTHING`,
    [row.id],
  );
  return listAttempts(db, row.id);
}

/** The attempt to (re)send: the newest one a node may still take. */
export function currentAttempt(attempts: AttemptRow[]): AttemptRow | undefined {
  for (let i = attempts.length - 1; i >= 0; i--) if (attempts[i].status === "signed" || attempts[i].status === "sent") return attempts[i];
  return undefined;
}

/** Attempts that could be, or are, in a block: everything but the rejected and the superseded-for-good. */
export function minableAttempts(attempts: AttemptRow[]): AttemptRow[] {
  return attempts.filter((a) => a.status !== "failed" && a.status !== "dropped");
}

/** A node accepted (or already knew) the attempt. */
export async function markAttemptSent(db: Queryable, hash: string): Promise<void> {
  await db.query(
    `UPDATE transaction_attempts
        SET status = CASE WHEN status = 'signed' THEN 'sent' ELSE status END, error_message = NULL,
            send_count = send_count + 1, last_sent_at = now(), updated_at = now()
      WHERE tx_hash = $1`,
    [hash],
  );
}

/** A send whose outcome is unknown, or an answer that changes nothing yet: counted, status kept. */
export async function markAttemptTried(db: Queryable, hash: string, message: string): Promise<void> {
  await db.query(
    `UPDATE transaction_attempts SET error_message = $2, send_count = send_count + 1, last_sent_at = now(), updated_at = now()
      WHERE tx_hash = $1`,
    [hash, message.slice(0, 500)],
  );
}

export async function markAttemptFailed(db: Queryable, hash: string, message: string): Promise<void> {
  await db.query(
    `UPDATE transaction_attempts SET status = 'failed', error_message = $2, send_count = send_count + 1, last_sent_at = now(), updated_at = now()
      WHERE tx_hash = $1`,
    [hash, message.slice(0, 500)],
  );
}
