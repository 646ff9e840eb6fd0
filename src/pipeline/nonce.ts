// Nonce allocation per (chain, signing address). Takes: a transaction client, the chain's mined
// ("latest") and pending transaction counts for the address. Returns the nonce to sign with.
// Locks: the address's row in `nonces` FOR UPDATE (held until the caller commits or rolls back), so
// concurrent submits on any number of replicas get distinct, consecutive nonces. Writes: next_nonce,
// and consumes a released nonce when one is waiting.
import type { PoolClient } from "../db/pool.js";

export interface ChainCounts {
  latest: bigint;
  pending: bigint;
}

export async function reserveNonce(tx: PoolClient, chainId: number, address: string, counts: ChainCounts, explicit?: bigint): Promise<bigint> {
  // One round trip: the rules (released nonces first, else max(tracked, pending)) are in the SQL
  // function reserve_nonce, migrations/0006_reserve_nonce.sql.
  const { rows } = await tx.query<{ nonce: string }>("SELECT reserve_nonce($1, $2, $3, $4, $5) AS nonce", [
    chainId, address, counts.latest.toString(), counts.pending.toString(), explicit === undefined ? null : explicit.toString(),
  ]);
  return BigInt(rows[0].nonce);
}

/**
 * `count` nonces at once, ascending, for a group of submissions committed together: released nonces
 * first, then consecutive fresh ones (SQL function reserve_nonces, migrations/0007_reserve_nonces.sql).
 * Same lock as reserveNonce.
 */
export async function reserveNonces(tx: PoolClient, chainId: number, address: string, counts: ChainCounts, count: number): Promise<bigint[]> {
  const { rows } = await tx.query<{ nonces: string[] }>("SELECT reserve_nonces($1, $2, $3, $4, $5) AS nonces", [
    chainId, address, counts.latest.toString(), counts.pending.toString(), count,
  ]);
  return rows[0].nonces.map((n) => BigInt(n));
}

/** Gives a nonce back after a definitive rejection: the next submission on this address reuses it. */
export async function releaseNonce(tx: PoolClient, chainId: number, address: string, nonce: bigint): Promise<void> {
  // Under the address's row lock, so an allocation in progress sees either all or none of it.
  await tx.query("SELECT 1 FROM nonces WHERE chain_id = $1 AND address = $2 FOR UPDATE", [chainId, address]);
  await tx.query(
    "INSERT INTO released_nonces (chain_id, address, nonce) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    [chainId, address, nonce.toString()],
  );
}
