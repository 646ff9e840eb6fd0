// The default simulator: a local anvil forked from the chain's RPC, one warm fork per chain.
//
// Takes: a chain and a list of calls. Returns one result per call. Writes nothing outside its own
// anvil process: the fork is a separate node that only *reads* from the chain's RPC, so the real
// chain never sees a simulated transaction.
//
// How one simulation runs (serialised per fork: snapshot/revert is global state of the fork):
//   refresh the fork if the chain's head moved (anvil_reset to that block) → evm_snapshot →
//   for each call: impersonate the sender, estimate gas (a call that cannot be estimated is traced
//   with debug_traceCall and reported reverted, as the submit pipeline would refuse it), send it with
//   eth_sendTransaction, mine it (evm_mine), read the receipt; ETH changes from the prestateTracer
//   diff of the mined transaction (so the sender's change includes the fee), ERC-20 changes from its
//   Transfer logs with balanceOf before/after; the revert reason from the callTracer →
//   evm_revert. A fork whose revert fails, or whose process stops answering, is thrown away and the
//   next simulation starts a fresh one.
//
// The fork is started lazily on the first simulation of a chain (~0.2 s) and kept; `close()` stops it.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { createPublicClient, http, type Address, type Hex, type PublicClient } from "viem";
import { startAnvil, type AnvilNode } from "../chains/anvil.js";
import type { ChainClients } from "../chains/clients.js";
import type { Chain } from "../chains/registry.js";
import { describeRpcError, isTransportError, nodeErrorMessage, safeMessage } from "../chains/node-errors.js";
import {
  balanceChange,
  decodeRevertReason,
  erc20Transfers,
  errorResult,
  hex,
  holdersByToken,
  nativeAsset,
  orderChanges,
  readBalanceOf,
  TokenMetaCache,
  type BalanceChange,
  type EthCall,
  type RawLog,
  type SimCall,
  type SimOptions,
  type SimResult,
  type Simulator,
} from "./simulator.js";

export interface AnvilForkOptions {
  /** The anvil binary (ANVIL_BIN); the npm package's by default. */
  binary?: string;
  /** Clients of the real chains: used only to read the head block number. */
  clients: ChainClients;
  log: Logger;
  /** A fork this old is reset even when the head did not move (e.g. a reorg at equal height). */
  maxAgeMs?: number;
  /**
   * A moved head resets the fork only when it is at least this old. 0 (default): every simulation
   * sees the newest block. Raise it for chains whose blocks come faster than simulations need.
   */
  minRefreshMs?: number;
  /** Per-RPC timeout towards the fork. */
  rpcTimeoutMs?: number;
}

interface Fork {
  urlsKey: string;
  node: AnvilNode;
  client: PublicClient;
  upstream: string;
  block: bigint;
  refreshedAt: number;
  coinbase?: string;
}

interface TraceFrame {
  gasUsed?: Hex;
  output?: Hex;
  error?: string;
  revertReason?: string;
}

type PrestateDiff = {
  pre?: Record<string, { balance?: Hex }>;
  post?: Record<string, { balance?: Hex }>;
};

interface Receipt {
  status: Hex;
  gasUsed: Hex;
  blockNumber: Hex;
  logs: RawLog[];
}

class ForkUnavailable extends Error {}

export class AnvilForkSimulator implements Simulator {
  readonly kind = "anvil" as const;
  private readonly forks = new Map<string, Promise<Fork>>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly tokens = new TokenMetaCache();
  private closed = false;

  constructor(private readonly opts: AnvilForkOptions) {}

  async simulate(chain: Chain, calls: SimCall[], _opts: SimOptions = {}): Promise<SimResult[]> {
    return this.exclusive(chain.name, () => this.simulateLocked(chain, calls));
  }

  async close(): Promise<void> {
    this.closed = true;
    const forks = [...this.forks.values()];
    this.forks.clear();
    await Promise.all(
      forks.map((f) =>
        f.then(
          (x) => x.node.stop(),
          () => {},
        ),
      ),
    );
  }

  /** Runs `fn` after every earlier simulation on the same chain has finished. */
  private exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }

  private async simulateLocked(chain: Chain, calls: SimCall[]): Promise<SimResult[]> {
    const fail = (message: string) => calls.map(() => errorResult(randomUUID(), message));
    if (this.closed) return fail("The simulator is shut down.");
    let fork: Fork | undefined;
    let snapshot: Hex | undefined;
    // A warm fork whose process died answers nothing: throw it away and start one fresh, once.
    for (let attempt = 0; attempt < 2 && snapshot === undefined; attempt++) {
      try {
        fork = await this.ensureFork(chain);
        await this.refresh(chain, fork);
        snapshot = await rpc<Hex>(fork, "evm_snapshot", []);
      } catch (err) {
        await this.dispose(chain.name);
        const retry = attempt === 0 && fork !== undefined && isTransportError(err);
        this.opts.log.warn(
          { chain: chain.name, retry, err: safeMessage(String((err as Error)?.message ?? err)) },
          "simulation fork unavailable",
        );
        if (!retry) {
          return fail(
            `Could not fork ${chain.name} for simulation: ${err instanceof ForkUnavailable ? err.message : describeRpcError(err, "the chain's RPC")}.`,
          );
        }
        fork = undefined;
      }
    }
    if (!fork || snapshot === undefined) return fail(`Could not fork ${chain.name} for simulation.`);
    try {
      const results: SimResult[] = [];
      for (const call of calls) results.push(await this.runCall(chain, fork, call));
      return results;
    } catch (err) {
      // Only the fork itself failing gets here (a node verdict is a result): start afresh next time.
      await this.dispose(chain.name);
      this.opts.log.warn({ chain: chain.name, err: safeMessage(String((err as Error)?.message ?? err)) }, "simulation fork failed");
      return fail(`The simulation fork of ${chain.name} failed: ${describeRpcError(err, "fork")}.`);
    } finally {
      const reverted = await rpc<boolean>(fork, "evm_revert", [snapshot]).catch(() => false);
      // A fork whose state cannot be rolled back must never serve another simulation.
      if (!reverted) await this.dispose(chain.name);
    }
  }

  private async runCall(chain: Chain, fork: Fork, call: SimCall): Promise<SimResult> {
    const id = randomUUID();
    await rpc(fork, "anvil_impersonateAccount", [call.from]);
    const tx: Record<string, Hex> = {
      from: call.from,
      to: call.to,
      value: hex(call.value),
      data: call.data ?? "0x",
    };
    if (call.gasPrice !== undefined) tx.gasPrice = hex(call.gasPrice);
    if (call.maxFeePerGas !== undefined) tx.maxFeePerGas = hex(call.maxFeePerGas);
    if (call.maxPriorityFeePerGas !== undefined) tx.maxPriorityFeePerGas = hex(call.maxPriorityFeePerGas);

    let gas = call.gas;
    if (gas === undefined) {
      try {
        gas = BigInt(await rpc<Hex>(fork, "eth_estimateGas", [tx]));
      } catch (err) {
        if (isTransportError(err)) throw err;
        return this.explainFailedEstimate(fork, tx, err, id);
      }
    }

    let hash: Hex;
    try {
      hash = await rpc<Hex>(fork, "eth_sendTransaction", [{ ...tx, gas: hex(gas) }]);
    } catch (err) {
      if (isTransportError(err)) throw err;
      return errorResult(id, nodeErrorMessage(err) ?? "The simulated transaction was refused.");
    }
    await rpc(fork, "evm_mine", []);
    // Independent reads of the mined transaction, in parallel (each is a round trip to the fork).
    const [receipt, diff, coinbase] = await Promise.all([
      rpc<Receipt | null>(fork, "eth_getTransactionReceipt", [hash]),
      rpc<PrestateDiff>(fork, "debug_traceTransaction", [hash, { tracer: "prestateTracer", tracerConfig: { diffMode: true } }]).catch(
        (err) => {
          if (isTransportError(err)) throw err;
          return undefined; // not mined: answered below
        },
      ),
      this.coinbase(fork),
    ]);
    if (!receipt || !diff) {
      // Not mined (e.g. a fee cap under the base fee): keep it out of later simulations.
      await rpc(fork, "anvil_dropAllTransactions", []).catch(() => {});
      return errorResult(id, "The simulated transaction was not mined (its fee cap may be below the base fee).");
    }
    const success = receipt.status === "0x1";
    const block = BigInt(receipt.blockNumber);
    const trace = success ? undefined : await rpc<TraceFrame>(fork, "debug_traceTransaction", [hash, { tracer: "callTracer" }]);
    const changes = [
      ...nativeChanges(chain, diff, coinbase),
      ...(success ? await this.tokenChanges(chain, fork, receipt.logs, block) : []),
    ];
    const result: SimResult = {
      id,
      status: success ? "success" : "reverted",
      gasUsed: BigInt(receipt.gasUsed),
      balanceChanges: orderChanges(changes, call.from),
    };
    if (success) result.logs = receipt.logs;
    if (!success) result.revertReason = decodeRevertReason(trace?.output, trace?.error);
    return result;
  }

  /**
   * Gas estimation failed: the submit pipeline would refuse this transaction, so nothing is sent.
   * The call is traced to tell a revert (with its reason and the gas it burned) from other refusals
   * (e.g. insufficient funds), which are simulation errors.
   */
  private async explainFailedEstimate(fork: Fork, tx: Record<string, Hex>, estimateErr: unknown, id: string): Promise<SimResult> {
    try {
      const trace = await rpc<TraceFrame>(fork, "debug_traceCall", [tx, "latest", { tracer: "callTracer" }]);
      if (trace.error) {
        return {
          id,
          status: "reverted",
          gasUsed: trace.gasUsed ? BigInt(trace.gasUsed) : undefined,
          balanceChanges: [],
          revertReason: decodeRevertReason(trace.output, trace.error),
        };
      }
    } catch (err) {
      if (isTransportError(err)) throw err;
    }
    return errorResult(id, nodeErrorMessage(estimateErr) ?? "Gas estimation failed.");
  }

  private async tokenChanges(chain: Chain, fork: Fork, logs: RawLog[], block: bigint): Promise<BalanceChange[]> {
    const transfers = erc20Transfers(logs);
    if (transfers.length === 0) return [];
    const call = ethCall(fork);
    const out: BalanceChange[] = [];
    for (const [token, holders] of holdersByToken(transfers)) {
      const meta = await this.tokens.get(chain.chain_id, token, call);
      const rows = await Promise.all(
        [...holders].map(async (holder) => {
          try {
            const [before, after] = await Promise.all([
              readBalanceOf(call, token, holder, block - 1n),
              readBalanceOf(call, token, holder, block),
            ]);
            return balanceChange(holder, { token, symbol: meta.symbol, decimals: meta.decimals }, before, after);
          } catch (err) {
            if (isTransportError(err)) throw err;
            return undefined; // a contract that logs Transfer without a working balanceOf: not an ERC-20
          }
        }),
      );
      for (const r of rows) if (r) out.push(r);
    }
    return out;
  }

  private async coinbase(fork: Fork): Promise<string> {
    if (fork.coinbase === undefined) fork.coinbase = (await rpc<string>(fork, "eth_coinbase", [])).toLowerCase();
    return fork.coinbase;
  }

  private async ensureFork(chain: Chain): Promise<Fork> {
    const urlsKey = chain.rpc_urls.join(" ");
    const existing = this.forks.get(chain.name);
    if (existing) {
      const fork = await existing.catch(() => undefined);
      if (fork && fork.urlsKey === urlsKey) return fork;
      await this.dispose(chain.name);
    }
    const started = this.startFork(chain, urlsKey);
    this.forks.set(chain.name, started);
    started.catch(() => {
      if (this.forks.get(chain.name) === started) this.forks.delete(chain.name);
    });
    return started;
  }

  private async startFork(chain: Chain, urlsKey: string): Promise<Fork> {
    if (chain.rpc_urls.length === 0) throw new ForkUnavailable(`chain ${chain.name} has no RPC URL`);
    const head = await this.opts.clients
      .get(chain)
      .getBlockNumber()
      .catch(() => undefined);
    let lastErr: unknown;
    for (const url of chain.rpc_urls) {
      const t = Date.now();
      try {
        const node = await startAnvil({
          binary: this.opts.binary,
          forkUrl: url,
          forkBlockNumber: head,
          // Mined only on request: one block per simulated transaction, and nothing mined by itself.
          noMining: true,
          // No dev accounts: they would overwrite real balances of the well-known anvil addresses.
          accounts: 0,
          extraArgs: { noStorageCaching: true },
        });
        const client = createPublicClient({
          transport: http(node.url, { timeout: this.opts.rpcTimeoutMs ?? 30_000, retryCount: 0 }),
        }) as PublicClient;
        const fork: Fork = { urlsKey, node, client, upstream: url, block: 0n, refreshedAt: Date.now() };
        fork.block = head ?? BigInt(await rpc<Hex>(fork, "eth_blockNumber", []));
        this.opts.log.info({ chain: chain.name, block: fork.block.toString(), ms: Date.now() - t }, "simulation fork started");
        if (this.closed) {
          await node.stop();
          throw new ForkUnavailable("the simulator is shut down");
        }
        return fork;
      } catch (err) {
        lastErr = err;
      }
    }
    if (lastErr instanceof ForkUnavailable) throw lastErr;
    throw new ForkUnavailable("anvil could not fork the chain's RPC");
  }

  /** Moves the fork to the chain's newest block when the head moved (or the fork is old). */
  private async refresh(chain: Chain, fork: Fork): Promise<void> {
    const age = Date.now() - fork.refreshedAt;
    const head = await this.opts.clients
      .get(chain)
      .getBlockNumber()
      .catch(() => undefined);
    if (head === undefined) return; // the chain's RPC is down: simulate on the state we have
    const moved = head !== fork.block;
    if (!((moved && age >= (this.opts.minRefreshMs ?? 0)) || age >= (this.opts.maxAgeMs ?? 60_000))) return;
    await rpc(fork, "anvil_reset", [{ forking: { jsonRpcUrl: fork.upstream, blockNumber: Number(head) } }]);
    fork.block = head;
    fork.refreshedAt = Date.now();
    fork.coinbase = undefined;
  }

  private async dispose(chainName: string): Promise<void> {
    const f = this.forks.get(chainName);
    this.forks.delete(chainName);
    if (f)
      await f.then(
        (x) => x.node.stop(),
        () => {},
      );
  }
}

function rpc<T = unknown>(fork: Fork, method: string, params: unknown[]): Promise<T> {
  return fork.client.request({ method: method as never, params: params as never }) as Promise<T>;
}

function ethCall(fork: Fork): EthCall {
  return (to: Address, data: Hex, block?: bigint | "latest") =>
    rpc<Hex>(fork, "eth_call", [{ to, data }, block === undefined || block === "latest" ? "latest" : hex(block)]);
}

/** ETH changes from a prestateTracer diff: every account whose balance moved, except the block's miner. */
function nativeChanges(chain: Chain, diff: PrestateDiff, coinbase: string): BalanceChange[] {
  const out: BalanceChange[] = [];
  const asset = nativeAsset(chain);
  const addrs = new Set([...Object.keys(diff.pre ?? {}), ...Object.keys(diff.post ?? {})]);
  for (const addr of addrs) {
    if (addr.toLowerCase() === coinbase) continue;
    const post = diff.post?.[addr]?.balance;
    if (post === undefined) continue; // unchanged
    const pre = diff.pre?.[addr]?.balance ?? "0x0";
    const c = balanceChange(addr, asset, BigInt(pre), BigInt(post));
    if (c) out.push(c);
  }
  return out;
}
