// The simulator registry: which simulator runs a chain's simulations, and the lifetime of the ones
// that hold resources (the anvil forks). Built once in createContext, closed with it.
//
// Choice per chain: SIMULATOR when set (anvil | tenderly | rpc) applies to every chain. Unset: the
// anvil fork, except that when Tenderly is configured it runs the chains it can see, i.e. every
// chain whose RPC is not on this machine (a local development chain is invisible to Tenderly).
// `perChain` (constructor option) overrides both for named chains.
import type { Logger } from "pino";
import type { ChainClients } from "../chains/clients.js";
import type { Chain } from "../chains/registry.js";
import type { Config } from "../config.js";
import { FairQueue } from "./fair-queue.js";
import { AnvilForkSimulator, type AnvilForkOptions } from "./anvil-fork.js";
import { RpcSimulator } from "./rpc.js";
import type { Simulator, SimulatorKind } from "./simulator.js";
import { TenderlySimulator } from "./tenderly.js";

export type { BalanceChange, SimCall, SimOptions, SimResult, SimStatus, Simulator, SimulatorKind } from "./simulator.js";
export { decodeRevertReason } from "./simulator.js";

export interface SimulatorRegistryOptions {
  config: Pick<Config, "simulator" | "tenderly" | "anvilBin"> & Partial<Pick<Config, "simulationQueue">>;
  clients: ChainClients;
  log: Logger;
  /** Chain name → simulator, overriding the rule above. */
  perChain?: Record<string, SimulatorKind>;
  anvil?: Partial<Omit<AnvilForkOptions, "clients" | "log">>;
}

export class SimulatorRegistry {
  private anvil?: AnvilForkSimulator;
  private rpc?: RpcSimulator;
  private tenderly?: TenderlySimulator;
  private readonly queues = new Map<string, FairQueue>();

  constructor(private readonly opts: SimulatorRegistryOptions) {}

  /**
   * The chain's fair queue (src/simulators/fair-queue.ts): every simulation of the chain, from the
   * simulate routes and from submit's step 5, waits its agent's turn here. One at a time on the
   * anvil fork (it serialises on its snapshot anyway); a few at once on remote simulators.
   */
  queue(chain: Chain): FairQueue {
    let q = this.queues.get(chain.name);
    if (!q) {
      const bounds = this.opts.config.simulationQueue ?? { perAgent: 8, max: 64 };
      q = new FairQueue({ concurrency: this.kindFor(chain) === "anvil" ? 1 : REMOTE_CONCURRENCY, ...bounds });
      this.queues.set(chain.name, q);
    }
    return q;
  }

  /** The kind of simulator that runs `chain`'s simulations. */
  kindFor(chain: Chain): SimulatorKind {
    const override = this.opts.perChain?.[chain.name];
    if (override) return override;
    if (this.opts.config.simulator) return this.opts.config.simulator;
    if (this.opts.config.tenderly && !isLocalChain(chain)) return "tenderly";
    return "anvil";
  }

  forChain(chain: Chain): Simulator {
    switch (this.kindFor(chain)) {
      case "tenderly": {
        const t = this.opts.config.tenderly;
        // Config validation guarantees credentials when SIMULATOR=tenderly; a perChain override may not.
        if (!t) return this.forKind("anvil");
        return this.forKind("tenderly");
      }
      case "rpc":
        return this.forKind("rpc");
      default:
        return this.forKind("anvil");
    }
  }

  forKind(kind: SimulatorKind): Simulator {
    const { config, clients, log } = this.opts;
    if (kind === "tenderly" && config.tenderly) {
      this.tenderly ??= new TenderlySimulator({ ...config.tenderly, clients, log: log.child({ simulator: "tenderly" }) });
      return this.tenderly;
    }
    if (kind === "rpc") {
      this.rpc ??= new RpcSimulator({ clients, log: log.child({ simulator: "rpc" }) });
      return this.rpc;
    }
    this.anvil ??= new AnvilForkSimulator({ binary: config.anvilBin, ...this.opts.anvil, clients, log: log.child({ simulator: "anvil" }) });
    return this.anvil;
  }

  async close(): Promise<void> {
    await Promise.all([this.anvil?.close(), this.rpc?.close(), this.tenderly?.close()]);
  }
}

/** Simulations run at once per chain on Tenderly or a plain RPC node (remote work, mostly waiting). */
const REMOTE_CONCURRENCY = 4;

/** A chain whose every RPC URL is on this machine: a development chain nobody outside can fork. */
export function isLocalChain(chain: Chain): boolean {
  if (chain.rpc_urls.length === 0) return false;
  return chain.rpc_urls.every((u) => {
    try {
      const h = new URL(u).hostname;
      return h === "localhost" || h === "127.0.0.1" || h === "[::1]" || h === "::1" || h.endsWith(".localhost");
    } catch {
      return false;
    }
  });
}
