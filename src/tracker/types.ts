// What every tracker step receives: its collaborators, the policy knobs, and the chain it works on.
import type { Logger } from "pino";
import type { PublicClient } from "viem";
import type { ChainClients } from "../chains/clients.js";
import type { Chain, ChainRegistry } from "../chains/registry.js";
import type { Pool } from "../db/pool.js";
import type { Metrics } from "../metrics.js";
import type { Signer } from "../signer/signer.js";

export interface TrackerDeps {
  pool: Pool;
  signer: Signer;
  chains: ChainRegistry;
  clients: ChainClients;
  log: Logger;
  metrics?: Metrics;
  /** After a chain reset of an address was recorded (chain-reset.ts): the local dev chain funds it again. */
  onChainReset?(chain: string, address: string): Promise<void>;
}

export interface TrackerOptions {
  /** Pause between two passes over a chain. */
  intervalMs: number;
  /** A transaction next in line for its address and not mined after this long is replaced with higher fees. */
  stuckAfterMs: number;
  /** Per chain name, instead of stuckAfterMs (chains whose blocks come much faster than the default assumes). */
  stuckAfterMsByChain?: Record<string, number>;
  /** A nonce gap that no submission fills within this bound is filled with a zero-value self-transfer. */
  gapFillAfterMs: number;
  /** Gap fills per signing key in a rolling 24 h; past it the tracker raises an alert instead (default 16). */
  gapFillsPerKeyPerDay?: number;
  /** Replacements never sign a max fee per gas (or gas price) above this. */
  maxFeePerGasWei: bigint;
  /** Per-request RPC timeout: a `signed` row is left to the request sending it for one timeout per RPC URL + 1 s. */
  broadcastTimeoutMs: number;
  /** A transaction missing from the node's mempool is resent at most this often. */
  resendAfterMs: number;
  leaseMs: number;
  batchSize: number;
}

/** One chain, one pass. */
export interface StepContext {
  deps: TrackerDeps;
  opts: TrackerOptions;
  chain: Chain;
  client: PublicClient;
  /** The lease owner id of this tracker (or of an operator request). */
  owner: string;
}

export const TRACKER_ACTOR = { type: "system" as const, id: "tracker" };

/** The owner of service-made transactions (gap fills): no agent, so no agent's limits or listings. */
export const SYSTEM_AGENT_ID = "00000000-0000-0000-0000-000000000000";

/** Chain reads shared by the rows of one pass: the head and each address's mined nonce count. */
export class ChainView {
  private readonly counts = new Map<string, Promise<bigint>>();

  constructor(
    private readonly client: PublicClient,
    readonly head: bigint,
  ) {}

  /** The address's mined transaction count, read once per pass and before any receipt of that pass. */
  latestCount(address: string): Promise<bigint> {
    let p = this.counts.get(address);
    if (!p) {
      p = this.client.getTransactionCount({ address: address as `0x${string}`, blockTag: "latest" }).then(BigInt);
      p.catch(() => this.counts.delete(address));
      this.counts.set(address, p);
    }
    return p;
  }
}
