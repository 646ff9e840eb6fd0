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
 * Nonces for a commit group, which may span several addresses of one chain: `count` per address,
 * ascending, released nonces first, then consecutive fresh ones (SQL function reserve_nonces,
 * migrations/0007_reserve_nonces.sql). One round trip; the address rows are locked in the order given,
 * which callers keep sorted so that two groups never wait on each other in a cycle.
 */
export async function reserveNonceRuns(
  tx: PoolClient,
  chainId: number,
  runs: Array<{ address: string; counts: ChainCounts; count: number }>,
): Promise<Map<string, bigint[]>> {
  const { rows } = await tx.query<{ address: string; nonces: string[] }>(
    `SELECT a.address, reserve_nonces($1, a.address, a.latest, a.pending, a.n) AS nonces
       FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::integer[]) WITH ORDINALITY AS a(address, latest, pending, n, i)`,
    [
      chainId,
      runs.map((r) => r.address),
      runs.map((r) => r.counts.latest.toString()),
      runs.map((r) => r.counts.pending.toString()),
      runs.map((r) => r.count),
    ],
  );
  return new Map(rows.map((r) => [r.address, r.nonces.map((n) => BigInt(n))]));
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
