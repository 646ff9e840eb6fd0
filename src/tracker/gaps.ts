// Step 4, per (chain, address): nonce gaps and drift. Runs under the address's `nonces` row lock, the
// lock every nonce allocation takes, so what it sees agrees with every committed reservation; it takes
// that lock with SKIP LOCKED and simply tries again on a later pass when a submit holds it.
//   - A released nonce (its transaction never reached a node) is reused first by the next submission
//     (pipeline/nonce.ts). A gap — a nonce below a transaction of ours that waits for it, held by no
//     transaction that can still be mined — that no submission fills within GAP_FILL_AFTER_SECONDS
//     (counted from the later of its release and the signing of the oldest transaction waiting
//     behind it) is filled with a zero-value transfer to the sender itself, signed in the HSM, owned
//     by no agent (SYSTEM_AGENT_ID).
//   - Drift: the tracked next nonce ahead of everything that can still be mined and of the node's
//     pending count, with no reservation for GAP_FILL_AFTER_SECONDS: it is brought back down, so the
//     next submission does not queue behind nonces nobody will ever send.
// Nonces below the node's pending count are taken (the node holds transactions for them); nonces the
// chain has mined are not gaps. A sign-only transaction holds its nonce for the same bound (its client
// may broadcast it); after that its nonce counts as a gap and is reused.
// Writes: nonces, released_nonces, new transactions rows (+ first attempt, audit); then broadcasts them.
import type { Hex } from "viem";
import { appendAudit } from "../db/audit.js";
import { auditTransaction } from "./audit.js";
import { withTransaction, type PoolClient } from "../db/pool.js";
import { insertTransaction, type TxRow } from "../db/transactions.js";
import { broadcastSigned } from "../pipeline/broadcast.js";
import { recordAttempt } from "../db/attempts.js";
import { dropReleased, dropReleasedBelow, lockNonceRow, releasedNonces, resetNextNonce, trackedNextNonce } from "../db/nonces.js";
import { OPEN } from "../db/leases.js";
import { estimateReplacementFees } from "./fee-bump.js";
import { auditDetails, buildTransaction, signedRow } from "../pipeline/rows.js";
import { SYSTEM_AGENT_ID, TRACKER_ACTOR, type StepContext } from "./types.js";

// Bounds on what gap repair signs: per key and pass, and per key over a rolling 24 h (the tracker's
// GAP_FILLS_PER_KEY_PER_DAY). Past the daily bound the tracker raises an alert (metric
// intents_nonce_gap_alerts_total, audit `nonce.gap_alert`, webhook `signing_key.nonce_gap_alert`)
// instead of filling: a gap that keeps coming back needs an operator, not endless self-transfers.
const MAX_FILLS_PER_PASS = 16;
const MAX_FILLS_PER_KEY_PER_PASS = 4;
const DEFAULT_FILLS_PER_KEY_PER_DAY = 16;
const ALERT_EVERY_MS = 10 * 60_000;
const lastAlert = new Map<string, number>();
const MAX_ADDRESSES_PER_PASS = 50;
const FILL_GAS = 21_000n;

export interface GapView {
  /** The chain's mined and pending transaction counts for the address. */
  latest: bigint;
  pending: bigint;
  /** The tracked next nonce and when a nonce was last reserved (ms). */
  next: bigint;
  nextUpdatedAt: number;
  /** Our rows with nonces in [latest, next): status, chain status, when signed (ms). */
  rows: Array<{ nonce: bigint; status: string; chain_status: string | null; at: number }>;
  /** Released nonces in [latest, next) and when they were released (ms). */
  released: Array<{ nonce: bigint; at: number }>;
  now: number;
  boundMs: number;
  maxFills: number;
}

export interface GapPlan {
  /** Nonces to fill with a zero-value self-transfer, lowest first. */
  fill: bigint[];
  /** Lower the tracked next nonce to this. */
  reconcileTo?: bigint;
}

/** Pure: what to do for one address, given what the chain and the database say. */
export function planGapRepair(v: GapView): GapPlan {
  const held = new Map<bigint, number>();
  for (const r of v.rows) {
    if (r.nonce < v.latest) continue;
    const live = (r.status === "signed" || r.status === "broadcast") && r.chain_status !== "dropped" && r.chain_status !== "chain_reset";
    const signOnly = r.status === "sign_only" && v.now - r.at < v.boundMs;
    if (live || signOnly) held.set(r.nonce, r.at);
  }
  const released = new Map(v.released.map((r) => [r.nonce, r.at]));
  const heldSorted = [...held.keys()].sort((a, b) => (a < b ? -1 : 1));
  const maxHeld = heldSorted.length ? heldSorted[heldSorted.length - 1] : v.latest - 1n;
  const start = v.pending > v.latest ? v.pending : v.latest;

  // waitingSince[i]: since when the longest-waiting held transaction at or above heldSorted[i] waits.
  const waitingSince = heldSorted.map((n) => held.get(n)!);
  for (let i = waitingSince.length - 2; i >= 0; i--) waitingSince[i] = Math.min(waitingSince[i], waitingSince[i + 1]);
  const fill: bigint[] = [];
  let j = 0;
  for (let g = start; g < maxHeld && fill.length < v.maxFills; g++) {
    if (held.has(g)) continue;
    while (heldSorted[j] <= g) j++;
    const since = Math.max(waitingSince[j], released.get(g) ?? 0);
    if (v.now - since >= v.boundMs) fill.push(g);
  }

  let floor = maxHeld + 1n;
  if (v.pending > floor) floor = v.pending;
  if (v.latest > floor) floor = v.latest;
  const reconcileTo = v.next > floor && v.now - v.nextUpdatedAt >= v.boundMs ? floor : undefined;
  return { fill, ...(reconcileTo !== undefined ? { reconcileTo } : {}) };
}

/** One pass over the chain's addresses that may have a gap or drift. */
export async function repairGaps(sc: StepContext): Promise<void> {
  const bound = sc.opts.gapFillAfterMs / 1000;
  const { rows } = await sc.deps.pool.query<{ address: string }>(
    `SELECT address FROM released_nonces WHERE chain_id = $1 AND released_at < now() - make_interval(secs => $2)
     UNION
     SELECT from_address FROM transactions
      WHERE chain_id = $1 AND ${OPEN} AND block_number IS NULL AND coalesce(signed_at, created_at) < now() - make_interval(secs => $2)
     UNION
     SELECT n.address FROM nonces n
      WHERE n.chain_id = $1 AND n.updated_at < now() - make_interval(secs => $2)
        AND n.next_nonce > coalesce((SELECT max(t.nonce) + 1 FROM transactions t
                                      WHERE t.chain_id = n.chain_id AND t.from_address = n.address
                                        AND t.status IN ('signed', 'broadcast', 'sign_only')
                                        AND coalesce(t.chain_status, '') NOT IN ('dropped', 'chain_reset')), 0)
     LIMIT ${MAX_ADDRESSES_PER_PASS}`,
    [sc.chain.chain_id, bound],
  );
  for (const { address } of rows) {
    await repairAddress(sc, address).catch((err) =>
      sc.deps.log.warn({ err, chain: sc.chain.name, address }, "nonce gap repair failed; will retry"),
    );
  }
}

export async function repairAddress(sc: StepContext, address: string): Promise<void> {
  const { pool, log } = sc.deps;
  const chainId = sc.chain.chain_id;
  // Chain state and fees first: no lock is held across an RPC round trip.
  const [latest, pending] = await Promise.all(
    (["latest", "pending"] as const).map((blockTag) => sc.client.getTransactionCount({ address: address as Hex, blockTag }).then(BigInt)),
  );
  // Nothing outstanding above what the chain mined (the common case once a candidate settled): no
  // fee estimate, no lock. Released nonces below the mined count are dropped as they can never be used.
  const tracked = await trackedNextNonce(pool, chainId, address);
  if (tracked === undefined || tracked <= latest) {
    await dropReleasedBelow(pool, chainId, address, latest);
    return;
  }
  const keyPath = await signingKeyPath(sc, address);
  const fees = keyPath ? await estimateReplacementFees(sc.client, sc.chain, sc.chain.eip1559 ? "eip1559" : "legacy") : undefined;

  const fills = await withTransaction(pool, async (tx) => {
    const locked = await lockNonceRow(tx, chainId, address, { skipLocked: true });
    if (!locked) return [];
    const next = locked.next;
    // Released nonces the chain has since mined can never be reused.
    await dropReleasedBelow(tx, chainId, address, latest);
    if (next <= latest) return [];
    // One client runs one query at a time.
    const ours = await tx.query<{ nonce: string; status: string; chain_status: string | null; at: Date }>(
      `SELECT nonce, status, chain_status, coalesce(signed_at, created_at) AS at FROM transactions
        WHERE chain_id = $1 AND from_address = $2 AND nonce >= $3 AND nonce < $4`,
      [chainId, address, latest.toString(), next.toString()],
    );
    const released = await releasedNonces(tx, chainId, address, latest, next);
    const now = await tx.query<{ now: Date }>("SELECT now()");
    const filled = await tx.query<{ n: string }>(
      `SELECT count(*) AS n FROM transactions
        WHERE chain_id = $1 AND from_address = $2 AND agent_id = $3 AND created_at > now() - interval '24 hours'`,
      [chainId, address, SYSTEM_AGENT_ID],
    );
    const perDay = sc.opts.gapFillsPerKeyPerDay ?? DEFAULT_FILLS_PER_KEY_PER_DAY;
    const fillsLeft = Math.max(0, perDay - Number(filled.rows[0].n));
    const plan = planGapRepair({
      latest,
      pending,
      next,
      nextUpdatedAt: locked.updatedAt.getTime(),
      rows: ours.rows.map((r) => ({ nonce: BigInt(r.nonce), status: r.status, chain_status: r.chain_status, at: r.at.getTime() })),
      released,
      now: now.rows[0].now.getTime(),
      boundMs: sc.opts.gapFillAfterMs,
      maxFills: keyPath && fees ? MAX_FILLS_PER_PASS : 0,
    });

    if (plan.reconcileTo !== undefined) {
      await resetNextNonce(tx, chainId, address, plan.reconcileTo);
      log.warn(
        { chain: sc.chain.name, address, from: next.toString(), to: plan.reconcileTo.toString() },
        "tracked nonce was ahead of the chain; reconciled",
      );
    }
    if (plan.fill.length === 0 || !fees || !keyPath) return [];
    const allowed = plan.fill.slice(0, Math.min(MAX_FILLS_PER_KEY_PER_PASS, fillsLeft));
    if (allowed.length < plan.fill.length && fillsLeft < plan.fill.length) {
      await gapAlert(sc, tx, address, { gaps: plan.fill.map(Number), fillsToday: Number(filled.rows[0].n), limit: perDay });
    }
    const rows: TxRow[] = [];
    for (const nonce of allowed) {
      // A zero-value self-transfer: it spends nothing of any agent's, so it counts toward no limit.
      const fill = { to: address as Hex, valueWei: 0n };
      const signedTx = await sc.deps.signer.signTransaction(keyPath, buildTransaction(sc.chain, fill, nonce, FILL_GAS, fees));
      const fillRow = signedRow({
        agentId: SYSTEM_AGENT_ID,
        chain: sc.chain,
        from: address,
        intent: fill,
        nonce,
        gas: FILL_GAS,
        fees,
        keyPath,
        status: "signed",
        signedTx,
        countsTowardLimits: false,
      });
      const row = await insertTransaction(tx, fillRow);
      await recordAttempt(tx, row);
      await dropReleased(tx, chainId, address, nonce);
      await auditTransaction(tx, "transaction.submit", row.id, auditDetails(fillRow, undefined, { reason: "gap_fill" }));
      rows.push(row);
    }
    return rows;
  });

  for (const row of fills) {
    log.warn({ chain: sc.chain.name, address, nonce: row.nonce, tx_id: row.id }, "filled a nonce gap with a zero-value self-transfer");
    await broadcastSigned(sc.deps, sc.chain, row, { actor: TRACKER_ACTOR });
  }
}

/** The key's gap-fill bound is reached: say so (metric, audit, webhook), at most every ALERT_EVERY_MS per key and process. */
async function gapAlert(
  sc: StepContext,
  tx: PoolClient,
  address: string,
  d: { gaps: number[]; fillsToday: number; limit: number },
): Promise<void> {
  const key = `${sc.chain.chain_id}:${address}`;
  const now = Date.now();
  if (now - (lastAlert.get(key) ?? 0) < ALERT_EVERY_MS) return;
  lastAlert.set(key, now);
  sc.deps.metrics?.nonceGapAlerts.inc({ chain: sc.chain.name });
  await appendAudit(tx, {
    action: "nonce.gap_alert",
    actor: TRACKER_ACTOR,
    resourceType: "signing_key",
    resourceId: address,
    details: {
      chain: sc.chain.name,
      chain_id: sc.chain.chain_id,
      from: address,
      gaps: d.gaps,
      fills_today: d.fillsToday,
      limit: d.limit,
      reason: "gap-fill bound reached; the gaps stay open until an operator acts",
    },
  });
  sc.deps.log.error(
    { chain: sc.chain.name, address, gaps: d.gaps, fills_today: d.fillsToday },
    "nonce gaps left open: the key's gap-fill bound is reached",
  );
}

/** The HSM key that signs for this address: the one its latest transaction used, else the registered one. */
async function signingKeyPath(sc: StepContext, address: string): Promise<string | undefined> {
  const { rows } = await sc.deps.pool.query<{ path: string }>(
    `SELECT signing_key_path AS path FROM transactions WHERE chain_id = $1 AND from_address = $2 ORDER BY created_at DESC LIMIT 1`,
    [sc.chain.chain_id, address],
  );
  if (rows[0]) return rows[0].path;
  const keys = await sc.deps.pool.query<{ path: string }>(
    "SELECT path FROM signing_keys WHERE address = $1 AND is_active ORDER BY created_at LIMIT 1",
    [address],
  );
  return keys.rows[0]?.path;
}
