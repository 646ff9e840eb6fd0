// Nonce allocation per (chain, signing address). Takes: a transaction client, the chain's mined
// ("latest") and pending transaction counts for the address. Returns the nonce to sign with.
// Locks: the address's row in `nonces` (held until the caller commits or rolls back), so concurrent
// submits on any number of replicas get distinct, consecutive nonces. The allocation functions take it
// with `INSERT … ON CONFLICT DO UPDATE` (which creates a missing row and row-locks it either way); a
// caller-chosen nonce and a release take it with `SELECT … FOR UPDATE`. Writes: next_nonce,
// and consumes a released nonce when one is waiting.
import { spendFromRow, type SpendRow, type SpendToday } from "../db/agents.js";
import type { PoolClient } from "../db/pool.js";

export interface ChainCounts {
  latest: bigint;
  pending: bigint;
}

/**
 * A commit group's locks and reads in one round trip (SQL function lock_spend_reserve_nonces,
 * migrations/0015_spend_ledger.sql): the limited agents' spend rows, locked in id order, and their
 * rolling spend read after the locks; then `count` nonces per address, ascending, released nonces first,
 * then consecutive fresh ones (reserve_nonces, migrations/0007_reserve_nonces.sql), the address rows
 * locked in the order given, which callers keep sorted. The caller checks the limits with that spend
 * and rolls back if any request is denied.
 */
export async function lockSpendAndReserveNonces(
  tx: PoolClient,
  chainId: number,
  agentIds: string[],
  runs: Array<{ address: string; counts: ChainCounts; count: number }>,
): Promise<{ spend: Map<string, SpendToday>; nonces: Map<string, bigint[]> }> {
  const { rows } = await tx.query<
    Omit<SpendRow, "agent_id"> & { agent_id: string | null; address: string | null; nonces: string[] | null }
  >({
    name: "lock-spend-reserve-nonces",
    text: "SELECT * FROM lock_spend_reserve_nonces($1::uuid[], $2, $3::text[], $4::bigint[], $5::bigint[], $6::integer[])",
    values: [
      agentIds,
      chainId,
      runs.map((r) => r.address),
      runs.map((r) => r.counts.latest.toString()),
      runs.map((r) => r.counts.pending.toString()),
      runs.map((r) => r.count),
    ],
  });
  const spend = new Map<string, SpendToday>();
  const nonces = new Map<string, bigint[]>();
  for (const r of rows) {
    if (r.agent_id !== null) spend.set(r.agent_id, spendFromRow(r));
    else
      nonces.set(
        r.address!,
        r.nonces!.map((n) => BigInt(n)),
      );
  }
  return { spend, nonces };
}

/** Gives a nonce back after a definitive rejection: the next submission on this address reuses it. */
export async function releaseNonce(tx: PoolClient, chainId: number, address: string, nonce: bigint): Promise<void> {
  // Under the address's row lock, so an allocation in progress sees either all or none of it.
  await tx.query("SELECT 1 FROM nonces WHERE chain_id = $1 AND address = $2 FOR UPDATE", [chainId, address]);
  // Not while another live transaction holds the nonce (a refused replacement of a pending one, made
  // with an explicit nonce): the next submission would otherwise collide with, or replace, that one.
  await tx.query(
    `INSERT INTO released_nonces (chain_id, address, nonce)
     SELECT $1, $2, $3
      WHERE NOT EXISTS (SELECT 1 FROM transactions
                         WHERE chain_id = $1 AND from_address = $2 AND nonce = $3 AND block_number IS NULL
                           AND status IN ('signed', 'broadcast', 'sign_only') AND chain_status IS DISTINCT FROM 'dropped')
     ON CONFLICT DO NOTHING`,
    [chainId, address, nonce.toString()],
  );
}

/**
 * A caller-chosen nonce, under the (chain, address) row lock. Nonces are the service's: an explicit
 * one is accepted only inside the window the service itself reserved, [mined count, tracked next
 * nonce), and only when no live transaction of another agent holds it (a signed, broadcast or
 * sign-only row not yet mined or dropped). So it either replaces one of the caller's own unconfirmed
 * transactions (a speed-up or cancel) or fills a nonce that nothing holds; it never moves the next
 * nonce, so no agent can open a gap behind which every other agent waits, nor replace another's
 * transaction. Returns the nonce, or why it is refused.
 */
export async function reserveExplicitNonce(
  tx: PoolClient,
  chainId: number,
  address: string,
  agentId: string,
  counts: ChainCounts,
  nonce: bigint,
): Promise<{ ok: true; nonce: bigint } | { ok: false; why: string; window: [bigint, bigint] }> {
  // The row lock every allocation takes: what is held at this nonce cannot change until COMMIT.
  const locked = await tx.query<{ next_nonce: string }>("SELECT next_nonce FROM nonces WHERE chain_id = $1 AND address = $2 FOR UPDATE", [
    chainId,
    address,
  ]);
  const next = locked.rows[0] ? BigInt(locked.rows[0].next_nonce) : 0n;
  const window: [bigint, bigint] = [counts.latest, next];
  if (nonce < counts.latest)
    return { ok: false, why: `nonce ${nonce} is already mined on this key (its next unmined nonce is ${counts.latest})`, window };
  if (nonce >= next)
    return {
      ok: false,
      why: `nonce ${nonce} is beyond the nonces this service reserved on this key (next: ${next}); omit nonce to get the next one`,
      window,
    };
  const { rows } = await tx.query<{ agent_id: string }>(
    `SELECT agent_id FROM transactions
      WHERE chain_id = $1 AND from_address = $2 AND nonce = $3 AND block_number IS NULL
        AND status IN ('signed', 'broadcast', 'sign_only') AND chain_status IS DISTINCT FROM 'dropped'`,
    [chainId, address, nonce.toString()],
  );
  if (rows.some((r) => r.agent_id !== agentId))
    return { ok: false, why: `nonce ${nonce} is held by another transaction on this key`, window };
  await tx.query("DELETE FROM released_nonces WHERE chain_id = $1 AND address = $2 AND nonce = $3", [chainId, address, nonce.toString()]);
  return { ok: true, nonce };
}
