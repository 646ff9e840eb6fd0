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
  // Creates the row on first use and locks it in one statement (ON CONFLICT DO UPDATE takes the row lock).
  const { rows } = await tx.query<{ next_nonce: string }>(
    `INSERT INTO nonces (chain_id, address, next_nonce) VALUES ($1, $2, 0)
     ON CONFLICT (chain_id, address) DO UPDATE SET updated_at = now()
     RETURNING next_nonce`,
    [chainId, address],
  );
  const tracked = BigInt(rows[0].next_nonce);

  if (explicit !== undefined) {
    // The caller chose the nonce (e.g. to replace its own transaction): keep tracking ahead of it.
    await tx.query("DELETE FROM released_nonces WHERE chain_id = $1 AND address = $2 AND nonce = $3", [chainId, address, explicit.toString()]);
    if (explicit >= tracked) await setNext(tx, chainId, address, explicit + 1n);
    return explicit;
  }

  // A nonce released by a transaction that never reached a node is reused first, so no gap stays
  // open; one the chain has since mined (someone else used it) is discarded.
  const released = await tx.query<{ nonce: string }>(
    `DELETE FROM released_nonces
      WHERE (chain_id, address, nonce) = (
        SELECT chain_id, address, nonce FROM released_nonces
         WHERE chain_id = $1 AND address = $2 AND nonce >= $3 AND nonce < $4
         ORDER BY nonce LIMIT 1)
     RETURNING nonce`,
    [chainId, address, counts.latest.toString(), tracked.toString()],
  );
  if (released.rows[0]) return BigInt(released.rows[0].nonce);

  const nonce = tracked > counts.pending ? tracked : counts.pending;
  await setNext(tx, chainId, address, nonce + 1n);
  return nonce;
}

async function setNext(tx: PoolClient, chainId: number, address: string, next: bigint): Promise<void> {
  await tx.query("UPDATE nonces SET next_nonce = $3 WHERE chain_id = $1 AND address = $2", [chainId, address, next.toString()]);
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
