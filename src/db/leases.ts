// Leases on transaction rows, so that any number of replicas can run the tracker (and operators can
// replace a transaction) without two of them working on one row at once. A claim is one statement:
// the candidate rows (least recently checked first) are locked FOR UPDATE SKIP LOCKED (a row another
// replica is claiming is skipped, never waited for) and stamped with this owner and an expiry. Work
// then happens outside any database transaction (RPC calls, HSM signatures), and every write is
// fenced: it re-locks the row and checks that the lease is still ours. A replica that dies loses its
// leases when they expire.
import type { Pool, PoolClient } from "./pool.js";
import { withTransaction } from "./pool.js";
import type { TxRow } from "./transactions.js";

/** Rows the tracker follows: sent or signed, not yet final on chain. Matches the transactions_tracked index. */
export const OPEN = "status IN ('signed', 'broadcast') AND (chain_status IS NULL OR chain_status = 'unconfirmed')";

export interface ClaimOptions {
  leaseMs: number;
  /** A `signed` row is left to the request that signed it for this long after its last send attempt. */
  unsentGraceMs: number;
  limit: number;
  onlyUnsent?: boolean;
}

export async function claimOpenTransactions(pool: Pool, chainId: number, owner: string, o: ClaimOptions): Promise<TxRow[]> {
  const { rows } = await pool.query<TxRow>(
    `WITH picked AS (
       SELECT id FROM transactions
        WHERE chain_id = $1 AND ${OPEN}
          AND (lease_until IS NULL OR lease_until < now())
          AND (status = 'broadcast' OR coalesce(last_broadcast_at, signed_at, created_at) < now() - make_interval(secs => $4))
          AND ($6::boolean IS FALSE OR status = 'signed')
        ORDER BY tracker_checked_at NULLS FIRST, nonce
        LIMIT $5
        FOR UPDATE SKIP LOCKED)
     UPDATE transactions t SET lease_owner = $2, lease_until = now() + make_interval(secs => $3), tracker_checked_at = now()
       FROM picked WHERE t.id = picked.id
     RETURNING t.*`,
    [chainId, owner, o.leaseMs / 1000, o.unsentGraceMs / 1000, o.limit, o.onlyUnsent === true],
  );
  return rows.sort((a, b) =>
    a.from_address < b.from_address ? -1 : a.from_address > b.from_address ? 1 : Number(a.nonce) - Number(b.nonce),
  );
}

/**
 * Claims one row whatever its state (an operator's request), waiting up to `waitMs` for a tracker
 * holding it to finish. Undefined when the row does not exist; throws LeaseBusy when it stays held.
 */
export async function acquireLease(pool: Pool, id: string, owner: string, leaseMs: number, waitMs: number): Promise<TxRow | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const { rows } = await pool.query<TxRow & { leased: boolean }>(
      `WITH target AS (SELECT id FROM transactions WHERE id = $1 FOR UPDATE SKIP LOCKED)
       UPDATE transactions t SET lease_owner = $2, lease_until = now() + make_interval(secs => $3)
         FROM target WHERE t.id = target.id AND (t.lease_until IS NULL OR t.lease_until < now() OR t.lease_owner = $2)
       RETURNING t.*`,
      [id, owner, leaseMs / 1000],
    );
    if (rows[0]) return rows[0];
    const exists = await pool.query("SELECT 1 FROM transactions WHERE id = $1", [id]);
    if (!exists.rowCount) return undefined;
    if (Date.now() > deadline) throw new LeaseBusy();
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class LeaseBusy extends Error {
  constructor() {
    super("the transaction is being worked on by another process");
  }
}

export async function releaseLease(pool: Pool, id: string, owner: string): Promise<void> {
  await pool.query("UPDATE transactions SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2", [id, owner]);
}

/** Releases the leases of these rows that this owner still holds (the end of a tracker pass). */
export async function releaseLeases(pool: Pool, ids: string[], owner: string): Promise<void> {
  await pool.query("UPDATE transactions SET lease_owner = NULL, lease_until = NULL WHERE id = ANY($1::uuid[]) AND lease_owner = $2", [
    ids,
    owner,
  ]);
}

/**
 * Runs `fn` in a database transaction with the row locked, if the lease is still ours; otherwise
 * returns undefined and writes nothing (another replica took over after our lease expired).
 */
export async function withLease<T>(
  pool: Pool,
  id: string,
  owner: string,
  fn: (tx: PoolClient, row: TxRow) => Promise<T>,
): Promise<T | undefined> {
  return withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<TxRow>("SELECT * FROM transactions WHERE id = $1 AND lease_owner = $2 FOR UPDATE", [id, owner]);
    if (!rows[0]) return undefined;
    return fn(tx, rows[0]);
  });
}

/** Chains with rows to follow (served by the transactions_tracked partial index). */
export async function chainsWithOpenTransactions(pool: Pool): Promise<number[]> {
  const { rows } = await pool.query<{ chain_id: string }>(`SELECT DISTINCT chain_id FROM transactions WHERE ${OPEN}`);
  return rows.map((r) => Number(r.chain_id));
}
