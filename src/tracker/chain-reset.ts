// Step 0, per chain, every pass: a chain that went back (a development chain restarted empty, a fork
// restored from an older state, a node replaced by one with another history). For each signing
// address with confirmed transactions, two reads (batched with the pass's others): the chain's mined
// transaction count, and the block holding our newest confirmed transaction.
//   - The count is at or below a nonce we recorded as confirmed: the chain lost our transactions.
//     Every row of the address from that count on that was confirmed or still followed gets
//     chain_status `chain_reset` (no longer followed, not resent: the chain they were signed for is
//     gone, an operator decides), released nonces from there are dropped, and the address's next
//     nonce is set to the chain's pending count, so the next submission is mined at once.
//   - The count is fine but that block is gone or has another hash: the transactions are back in an
//     unknown place. Confirmed rows from that block on go back to `unconfirmed` and are followed
//     again (found in their new block, or resent from their stored signature), as after a reorg.
// An observation must repeat on the next pass before anything is written: one answer from a lagging
// node (a failover to a node behind the others) is not a reset.
// Each reset is audited (`chain.reset_detected` per address; `transaction.chain_reset` per row,
// delivered to webhooks as agent.transaction.failed with chain_status `chain_reset`), counted in
// intents_chain_resets_total and logged as a warning. With `onChainReset` (the local development
// chain), the address is funded again.
// Locks: the address's `nonces` row FOR UPDATE (every nonce allocation takes it), so no submission
// reserves a nonce while its address is rewritten; submissions wait for that one short transaction.
import { lockNonceRow, resetNextNonce } from "../db/nonces.js";
import { appendAudit } from "../db/audit.js";
import { auditTransaction } from "./audit.js";
import { withTransaction, type Queryable } from "../db/pool.js";
import { TRACKER_ACTOR, type StepContext } from "./types.js";

const MAX_ADDRESSES_PER_PASS = 200;

export interface ChainResetHooks {
  /** Called after a reset of `address` on `chain` was recorded (e.g. fund it again on a dev chain). */
  onChainReset?(chain: string, address: string): Promise<void>;
}

interface Observation {
  kind: "nonce" | "block";
  /** The chain's mined count (kind nonce) or the block number that vanished (kind block). */
  at: bigint;
}

/** Per tracker: what looked reset on the previous pass, by `chainId:address`. */
export type ResetSuspects = Map<string, Observation>;

export async function detectChainReset(sc: StepContext, suspects: ResetSuspects, hooks: ChainResetHooks = {}): Promise<number> {
  const { pool } = sc.deps;
  const chainId = sc.chain.chain_id;
  // The newest confirmed transaction per address (transactions_nonce index, walked backwards).
  const { rows } = await pool.query<{ address: string; nonce: string; block_number: string | null; block_hash: string | null }>(
    `SELECT n.address, c.nonce, c.block_number, c.block_hash
       FROM nonces n
       CROSS JOIN LATERAL (
         SELECT t.nonce, t.block_number, t.block_hash FROM transactions t
          WHERE t.chain_id = n.chain_id AND t.from_address = n.address AND t.chain_status = 'confirmed'
          ORDER BY t.nonce DESC LIMIT 1) c
      WHERE n.chain_id = $1
      ORDER BY n.address
      LIMIT $2`,
    [chainId, MAX_ADDRESSES_PER_PASS],
  );
  let resets = 0;
  await Promise.all(
    rows.map(async (r) => {
      const key = `${chainId}:${r.address}`;
      const address = r.address as `0x${string}`;
      const [count, block] = await Promise.all([
        sc.client.getTransactionCount({ address, blockTag: "latest" }).then(BigInt),
        r.block_number === null
          ? Promise.resolve(undefined)
          : sc.client.getBlock({ blockNumber: BigInt(r.block_number) }).catch((err) => {
              if (/not found|could not be found/i.test(String((err as Error)?.message))) return null;
              throw err;
            }),
      ]);
      let seen: Observation | undefined;
      if (count <= BigInt(r.nonce)) seen = { kind: "nonce", at: count };
      else if (r.block_number !== null && (block === null || (block && block.hash !== r.block_hash)))
        seen = { kind: "block", at: BigInt(r.block_number) };
      const before = suspects.get(key);
      if (!seen) return void suspects.delete(key);
      if (!before || before.kind !== seen.kind) return void suspects.set(key, seen);
      suspects.delete(key);
      if (seen.kind === "nonce") await recordNonceReset(sc, r.address, r.nonce, hooks);
      else await recordBlockLoss(sc, r.address, seen.at);
      resets++;
    }),
  );
  return resets;
}

async function recordNonceReset(sc: StepContext, address: string, confirmedNonce: string, hooks: ChainResetHooks): Promise<void> {
  const { pool, log, metrics } = sc.deps;
  const chainId = sc.chain.chain_id;
  const out = await withTransaction(pool, async (tx) => {
    const locked = await lockNonceRow(tx, chainId, address);
    if (!locked) return undefined;
    // Read under the lock: no allocation for this address runs meanwhile.
    const addr = address as `0x${string}`;
    const [latest, pending] = await Promise.all([
      sc.client.getTransactionCount({ address: addr, blockTag: "latest" }).then(BigInt),
      sc.client.getTransactionCount({ address: addr, blockTag: "pending" }).then(BigInt),
    ]);
    if (latest > BigInt(confirmedNonce)) return undefined; // the chain caught up meanwhile: not a reset
    const marked = await tx.query<{
      id: string;
      nonce: string;
      tx_hash: string | null;
      chain_status: string | null;
      block_number: string | null;
    }>(
      `UPDATE transactions t
          SET chain_status = 'chain_reset', confirmations = 0, lease_owner = NULL, lease_until = NULL, updated_at = now()
         FROM (SELECT id, chain_status AS old_status FROM transactions
                WHERE chain_id = $1 AND from_address = $2 AND nonce >= $3
                  AND status IN ('signed', 'broadcast') AND (chain_status IS NULL OR chain_status IN ('unconfirmed', 'confirmed', 'reverted'))
                FOR UPDATE) old
        WHERE t.id = old.id
        RETURNING t.id, t.nonce, t.tx_hash, old.old_status AS chain_status, t.block_number`,
      [chainId, address, latest.toString()],
    );
    await resetNextNonce(tx, chainId, address, pending);
    await auditResetDetected(tx, sc, chainId, address, {
      kind: "nonce_went_back",
      chain_nonce: Number(latest),
      confirmed_nonce: Number(confirmedNonce),
      next_nonce_before: Number(locked.next),
      next_nonce_after: Number(pending),
      transactions_marked: marked.rows.length,
    });
    for (const m of marked.rows) {
      await auditTransaction(tx, "transaction.chain_reset", m.id, {
        chain: sc.chain.name,
        chain_id: chainId,
        from: address,
        nonce: Number(m.nonce),
        tx_hash: m.tx_hash,
        chain_status: "chain_reset",
        reason: `chain reset: ${sc.chain.name} no longer holds this transaction (its mined count for the sender went back to ${latest})`,
        previous_chain_status: m.chain_status,
        old_block_number: m.block_number === null ? null : Number(m.block_number),
      });
    }
    return { latest, pending, marked: marked.rows.length, before: locked.next.toString() };
  });
  if (!out) return;
  metrics?.chainResets.inc({ chain: sc.chain.name });
  log.warn(
    {
      chain: sc.chain.name,
      address,
      chain_nonce: Number(out.latest),
      confirmed_nonce: Number(confirmedNonce),
      transactions_marked: out.marked,
      next_nonce: Number(out.pending),
    },
    "chain reset detected: the chain no longer holds transactions recorded as confirmed; marked them chain_reset and resynchronised the nonce",
  );
  await hooks.onChainReset?.(sc.chain.name, address).catch((err) => log.warn({ err: (err as Error).message }, "chain reset hook failed"));
}

async function recordBlockLoss(sc: StepContext, address: string, fromBlock: bigint): Promise<void> {
  const { pool, log, metrics } = sc.deps;
  const chainId = sc.chain.chain_id;
  const n = await withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ id: string }>(
      `UPDATE transactions
          SET chain_status = 'unconfirmed', block_number = NULL, block_hash = NULL, confirmations = 0, updated_at = now()
        WHERE chain_id = $1 AND from_address = $2 AND chain_status = 'confirmed' AND block_number >= $3
        RETURNING id`,
      [chainId, address, fromBlock.toString()],
    );
    await tx.query(
      "UPDATE transaction_attempts SET status = 'sent', updated_at = now() WHERE tx_id = ANY($1::uuid[]) AND status = 'mined'",
      [rows.map((r) => r.id)],
    );
    await auditResetDetected(tx, sc, chainId, address, {
      kind: "block_gone",
      block_number: Number(fromBlock),
      transactions_followed_again: rows.length,
    });
    return rows.length;
  });
  metrics?.chainResets.inc({ chain: sc.chain.name });
  log.warn(
    { chain: sc.chain.name, address, block_number: Number(fromBlock), transactions: n },
    "chain reset detected: a block holding confirmed transactions is gone; following them again",
  );
}

/** The `chain.reset_detected` audit event of one address: which chain, and what `details` say was seen. */
function auditResetDetected(
  tx: Queryable,
  sc: StepContext,
  chainId: number,
  address: string,
  details: { kind: "nonce_went_back" | "block_gone" } & Record<string, unknown>,
) {
  return appendAudit(tx, {
    action: "chain.reset_detected",
    actor: TRACKER_ACTOR,
    resourceType: "chain",
    resourceId: String(chainId),
    details: { chain: sc.chain.name, chain_id: chainId, address, ...details },
  });
}
