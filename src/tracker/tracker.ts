// The tracker: runs inside every replica of the service and follows each broadcast (or signed but
// unacknowledged) transaction to its final state on chain. One loop: every TRACKER_INTERVAL_MS it
// looks for chains with rows to follow and starts a pass for each chain not already in a pass (a slow
// chain never holds up the others). A pass claims up to `batchSize` rows with a lease (db/leases.ts:
// FOR UPDATE SKIP LOCKED, so replicas split the work and never wait for each other), reads the head
// once, follows each row (follow.ts: receipts → rebroadcast → replacement), a few at a time, lowest
// nonces first, releases each lease as soon as its row is done, then repairs nonce gaps
// (gaps.ts) at a slower cadence. At start, rows left signed but never sent are sent first (recovery.ts).
// Operators' speed-up and cancel go through `replace` here, under the same lease.
import { randomUUID } from "node:crypto";
import os from "node:os";
import type { Principal } from "../auth/principal.js";
import type { Chain } from "../chains/registry.js";
import type { Config } from "../config.js";
import { chainUnavailable, notFound, transactionBusy, ServiceError } from "../errors.js";
import { chainsWithNonces } from "../db/nonces.js";
import { acquireLease, chainsWithOpenTransactions, claimOpenTransactions, LeaseBusy, releaseLease, releaseLeases } from "../db/leases.js";
import { followTransaction } from "./follow.js";
import { settleFinalReceipts } from "./bulk.js";
import { repairGaps } from "./gaps.js";
import { detectChainReset, type ResetSuspects } from "./chain-reset.js";
import { recoverUnsent } from "./recovery.js";
import { replaceTransaction, type ReplaceOutcome } from "./replace.js";
import { ChainView, type StepContext, type TrackerDeps, type TrackerOptions } from "./types.js";

const ROW_CONCURRENCY = 8;

export function trackerOptions(config: Config): TrackerOptions {
  return {
    intervalMs: config.trackerIntervalMs,
    stuckAfterMs: config.stuckAfterSeconds * 1000,
    // The local anvil mines at once, so a transaction next in line and unmined for a few seconds is
    // stuck; and under concurrent sends anvil can keep one in its pool for good (it takes a replacement).
    stuckAfterMsByChain:
      config.localChain === "anvil" ? { local: Math.min(config.localChainStuckAfterSeconds, config.stuckAfterSeconds) * 1000 } : {},
    gapFillAfterMs: config.gapFillAfterSeconds * 1000,
    gapFillsPerKeyPerDay: config.gapFillsPerKeyPerDay,
    maxFeePerGasWei: config.maxFeePerGasCapWei,
    broadcastTimeoutMs: config.broadcastTimeoutMs,
    resendAfterMs: Math.max(2 * config.trackerIntervalMs, 1000),
    leaseMs: Math.max(30_000, 10 * config.trackerIntervalMs),
    batchSize: 200,
  };
}

export class Tracker {
  readonly owner = `tracker:${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly running = new Map<number, Promise<void>>();
  /** Rows whose nonce looked taken by someone else on the last pass (confirmed on the next one). */
  private readonly suspects = new Map<string, number>();
  private readonly lastGapScan = new Map<number, number>();
  /** Addresses that looked reset on the last pass (chain-reset.ts acts when it repeats). */
  private readonly resetSuspects: ResetSuspects = new Map();

  constructor(
    readonly deps: TrackerDeps,
    readonly opts: TrackerOptions,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const loop = async () => {
      if (this.stopped) return;
      await this.pass().catch((err) => this.deps.log.warn({ err }, "tracker pass failed; will retry"));
      if (!this.stopped) this.timer = setTimeout(() => void (this.loopDone = loop()), this.opts.intervalMs);
    };
    this.loopDone = (async () => {
      const n = await recoverUnsent(this.deps, (chain, o) => this.runChain(chain, o)).catch(
        (err) => (this.deps.log.warn({ err }, "startup recovery failed; the tracker will retry"), 0),
      );
      if (n) this.deps.log.info({ transactions: n }, "startup recovery: sent transactions left signed but unsent");
      await loop();
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.loopDone.catch(() => {});
    await Promise.allSettled([...this.running.values()]);
  }

  /** Starts a pass on every chain with work that is not already in one; does not wait for them. */
  async pass(): Promise<void> {
    const now = Date.now();
    const ids = new Set(await chainsWithOpenTransactions(this.deps.pool));
    const gapEvery = Math.max(this.opts.intervalMs, this.opts.gapFillAfterMs / 2);
    const signedOn = await chainsWithNonces(this.deps.pool);
    const gapDue = new Set<number>();
    for (const id of signedOn) {
      // Every chain we have signed on gets a pass, even with nothing open: the chain-reset check runs in it.
      ids.add(id);
      if (now - (this.lastGapScan.get(id) ?? 0) >= gapEvery) gapDue.add(id);
    }
    for (const id of ids) {
      const chain = this.deps.chains.resolve(id);
      if (!chain || chain.rpc_urls.length === 0 || this.running.has(id)) continue;
      const gaps = gapDue.has(id);
      if (gaps) this.lastGapScan.set(id, now);
      const p = this.runChain(chain, { gaps })
        .then(() => undefined)
        .catch((err) => this.deps.log.warn({ err, chain: chain.name }, "tracker pass on chain failed; will retry"))
        .finally(() => this.running.delete(id));
      this.running.set(id, p);
    }
  }

  /** One pass on one chain, awaited (startup recovery uses it directly). */
  async runChain(chain: Chain, o: { gaps?: boolean; onlyUnsent?: boolean } = {}): Promise<number> {
    const sc = this.stepContext(chain, this.owner);
    // First: has the chain gone back under us? Then the rows below are already marked and the nonce resynchronised.
    if (!o.onlyUnsent) {
      await detectChainReset(sc, this.resetSuspects, { onChainReset: this.deps.onChainReset }).catch((err) =>
        this.deps.log.warn({ err: errText(err), chain: chain.name }, "chain reset check failed; will retry"),
      );
    }
    const rows = await claimOpenTransactions(this.deps.pool, chain.chain_id, this.owner, {
      leaseMs: this.opts.leaseMs,
      // The request that signed a row may spend one timeout per RPC URL sending it.
      unsentGraceMs: this.opts.broadcastTimeoutMs * Math.max(1, chain.rpc_urls.length) + 1000,
      limit: this.opts.batchSize,
      onlyUnsent: o.onlyUnsent,
    });
    try {
      const oldest = rows.reduce((m, r) => Math.min(m, (r.signed_at ?? r.created_at).getTime()), Date.now());
      this.deps.metrics?.trackerLag.set({ chain: chain.name }, (Date.now() - oldest) / 1000);
      if (rows.length > 0) {
        const view = new ChainView(sc.client, BigInt(await sc.client.getBlockNumber()));
        // Rows are independent (a resend of nonce n+1 before n only waits in the node's queue), so a
        // few run at once, lowest nonces first; the head-of-line check reads the pass's mined count.
        // First, in bulk, every row whose first receipt is already final (the common case).
        const settled = await settleFinalReceipts(sc, rows, view, this.suspects).catch((err) => {
          this.deps.log.warn({ err: errText(err), chain: chain.name }, "bulk receipt check failed; following rows one by one");
          return new Set<string>();
        });
        const queue = rows.filter((r) => !settled.has(r.id));
        const worker = async () => {
          for (let row = queue.shift(); row; row = queue.shift()) {
            if (this.stopped) break;
            try {
              await followTransaction(sc, row, view, this.suspects);
            } catch (err) {
              this.deps.log.warn(
                { err: errText(err), tx_id: row.id, chain: chain.name },
                "could not follow a transaction this pass; will retry",
              );
            } finally {
              await releaseLease(this.deps.pool, row.id, this.owner).catch(() => {});
            }
          }
        };
        await Promise.all(Array.from({ length: Math.min(ROW_CONCURRENCY, queue.length) }, worker));
      }
    } finally {
      if (rows.length) {
        await releaseLeases(
          this.deps.pool,
          rows.map((r) => r.id),
          this.owner,
        ).catch(() => {});
      }
    }
    if (o.gaps) await repairGaps(sc);
    return rows.length;
  }

  /** An operator's speed-up or cancel of one transaction, by id. */
  async replace(txId: string, kind: "speed_up" | "cancel", actor: Principal, requestId?: string): Promise<ReplaceOutcome> {
    const owner = `operator:${randomUUID()}`;
    let row;
    try {
      row = await acquireLease(this.deps.pool, txId, owner, this.opts.leaseMs, 5_000);
    } catch (err) {
      if (err instanceof LeaseBusy) throw transactionBusy();
      throw err;
    }
    if (!row) throw notFound("Transaction not found.");
    try {
      const chain = this.deps.chains.resolve(Number(row.chain_id));
      if (!chain || chain.rpc_urls.length === 0) throw chainUnavailable(row.chain);
      const reason = kind === "cancel" ? "cancelled by an operator" : "sped up by an operator";
      return await replaceTransaction(this.stepContext(chain, owner), row, kind, { actor, reason, requestId });
    } finally {
      await releaseLease(this.deps.pool, txId, owner).catch(() => {});
    }
  }

  private stepContext(chain: Chain, owner: string): StepContext {
    const stuckAfterMs = this.opts.stuckAfterMsByChain?.[chain.name] ?? this.opts.stuckAfterMs;
    return { deps: this.deps, opts: { ...this.opts, stuckAfterMs }, chain, client: this.deps.clients.get(chain), owner };
  }
}

function errText(err: unknown): string {
  if (err instanceof ServiceError) return `${err.code}: ${err.detail}`;
  const e = err as { shortMessage?: string; message?: string };
  return e?.shortMessage ?? e?.message ?? String(err);
}
