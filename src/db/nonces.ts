// The `nonces` and `released_nonces` rows as the tracker reads and repairs them (gap repair,
// chain-reset detection). Reservation at signing time is the SQL functions reserve_nonce and
// reserve_nonces (migrations 0006, 0007), called from src/pipeline/nonce.ts.
import type { PoolClient, Queryable } from "./pool.js";

/** Chains this service has signed on (a nonce row exists for some address). */
export async function chainsWithNonces(db: Queryable): Promise<number[]> {
  const { rows } = await db.query<{ chain_id: string }>("SELECT DISTINCT chain_id FROM nonces");
  return rows.map((r) => Number(r.chain_id));
}

/** The next nonce this service would hand out for the address, read without a lock. */
export async function trackedNextNonce(db: Queryable, chainId: number, address: string): Promise<bigint | undefined> {
  const { rows } = await db.query<{ next_nonce: string }>("SELECT next_nonce FROM nonces WHERE chain_id = $1 AND address = $2", [
    chainId,
    address,
  ]);
  return rows[0] ? BigInt(rows[0].next_nonce) : undefined;
}

/**
 * Locks the address's nonce row for the rest of the caller's transaction: no nonce is reserved for it
 * meanwhile. `skipLocked`: a row another process holds is not waited for (undefined, as for no row).
 */
export async function lockNonceRow(
  tx: PoolClient,
  chainId: number,
  address: string,
  opts: { skipLocked?: boolean } = {},
): Promise<{ next: bigint; updatedAt: Date } | undefined> {
  const { rows } = await tx.query<{ next_nonce: string; updated_at: Date }>(
    `SELECT next_nonce, updated_at FROM nonces WHERE chain_id = $1 AND address = $2 FOR UPDATE${opts.skipLocked ? " SKIP LOCKED" : ""}`,
    [chainId, address],
  );
  return rows[0] ? { next: BigInt(rows[0].next_nonce), updatedAt: rows[0].updated_at } : undefined;
}

/**
 * Sets the next nonce and forgets released nonces at or above it (they are handed out afresh). The
 * caller holds the row's lock (lockNonceRow).
 */
export async function resetNextNonce(tx: PoolClient, chainId: number, address: string, next: bigint): Promise<void> {
  await tx.query("DELETE FROM released_nonces WHERE chain_id = $1 AND address = $2 AND nonce >= $3", [chainId, address, next.toString()]);
  await tx.query("UPDATE nonces SET next_nonce = $3, updated_at = now() WHERE chain_id = $1 AND address = $2", [
    chainId,
    address,
    next.toString(),
  ]);
}

/** Released nonces below the chain's mined count can never be used again. */
export async function dropReleasedBelow(db: Queryable, chainId: number, address: string, minedCount: bigint): Promise<void> {
  await db.query("DELETE FROM released_nonces WHERE chain_id = $1 AND address = $2 AND nonce < $3", [
    chainId,
    address,
    minedCount.toString(),
  ]);
}

/** One released nonce, now used (a gap fill took it). */
export async function dropReleased(db: Queryable, chainId: number, address: string, nonce: bigint): Promise<void> {
  await db.query("DELETE FROM released_nonces WHERE chain_id = $1 AND address = $2 AND nonce = $3", [chainId, address, nonce.toString()]);
}

/** Released nonces in [from, to), with when they were released. */
export async function releasedNonces(
  db: Queryable,
  chainId: number,
  address: string,
  from: bigint,
  to: bigint,
): Promise<Array<{ nonce: bigint; at: number }>> {
  const { rows } = await db.query<{ nonce: string; released_at: Date }>(
    "SELECT nonce, released_at FROM released_nonces WHERE chain_id = $1 AND address = $2 AND nonce >= $3 AND nonce < $4",
    [chainId, address, from.toString(), to.toString()],
  );
  return rows.map((r) => ({ nonce: BigInt(r.nonce), at: r.released_at.getTime() }));
}
