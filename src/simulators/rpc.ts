// The plain-RPC simulator, for chains where running a fork is not wanted: it asks the chain's own
// nodes, read-only, and never sends anything.
//
// One call: eth_estimateGas (unless a gas limit is given) and eth_call decide success or revert and
// give the revert data; where the node has debug_traceCall, the callTracer gives the exact gas used
// and the emitted logs (ERC-20 changes) and the prestateTracer diff gives ETH changes including the
// fee. Without debug_traceCall, gas_used is the estimate and ETH changes are computed from the value
// and gas × gas price.
//
// A bundle needs state carried from one call to the next, which eth_call cannot do: it runs through
// eth_simulateV1 (ETH movements come back as Transfer logs with traceTransfers; the fee is added as
// gas used × gas price). A node without eth_simulateV1 gets the first call simulated and the others
// reported as errors that say why.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Address, Hex, PublicClient } from "viem";
import type { ChainClients } from "../chains/clients.js";
import type { Chain } from "../chains/registry.js";
import { describeRpcError, isTransportError, nodeErrorMessage } from "../chains/node-errors.js";
import {
  balanceChange,
  decodeRevertReason,
  erc20Transfers,
  errorResult,
  hex,
  nativeAsset,
  netTokenDeltas,
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

export interface RpcSimulatorOptions {
  clients: ChainClients;
  log: Logger;
}

interface CallFrame {
  gasUsed?: Hex;
  output?: Hex;
  error?: string;
  logs?: RawLog[];
  calls?: CallFrame[];
}

type PrestateDiff = { pre?: Record<string, { balance?: Hex }>; post?: Record<string, { balance?: Hex }> };

interface SimulateV1Call {
  status: Hex;
  gasUsed: Hex;
  returnData?: Hex;
  logs?: RawLog[];
  error?: { message?: string; data?: Hex };
}

/** eth_simulateV1 reports ETH movements as Transfer logs from this pseudo-address (traceTransfers). */
const NATIVE_TRANSFER_ADDRESS = "0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
const METHOD_MISSING = /method not found|not supported|does not exist|not available|unsupported|unknown method|-32601/i;

export class RpcSimulator implements Simulator {
  readonly kind = "rpc" as const;
  private readonly tokens = new TokenMetaCache();
  /** What each chain's node turned out not to answer, so it is not asked again. */
  private readonly missing = new Map<string, Set<string>>();

  constructor(private readonly opts: RpcSimulatorOptions) {}

  async simulate(chain: Chain, calls: SimCall[], _opts: SimOptions = {}): Promise<SimResult[]> {
    let client: PublicClient;
    try {
      client = this.opts.clients.get(chain);
    } catch {
      return calls.map(() => errorResult(randomUUID(), `Chain ${chain.name} has no RPC URL.`));
    }
    try {
      if (calls.length === 1) return [await this.single(chain, client, calls[0]!)];
      return await this.bundle(chain, client, calls);
    } catch (err) {
      if (!isTransportError(err)) throw err;
      return calls.map(() =>
        errorResult(randomUUID(), `Could not simulate on ${chain.name}: ${describeRpcError(err, "the chain's RPC")}.`),
      );
    }
  }

  async close(): Promise<void> {}

  private async single(chain: Chain, client: PublicClient, call: SimCall): Promise<SimResult> {
    const id = randomUUID();
    const tx = txObject(call);
    let gas = call.gas;
    let estimateError: unknown;
    if (gas === undefined) {
      try {
        gas = BigInt(await rpc<Hex>(client, "eth_estimateGas", [tx]));
      } catch (err) {
        if (isTransportError(err)) throw err;
        estimateError = err;
      }
    }
    const withGas = gas !== undefined ? { ...tx, gas: hex(gas) } : tx;

    // Outcome and revert data: the callTracer where the node has it, else eth_call.
    const trace = await this.optional<CallFrame>(chain, client, "debug_traceCall", [
      withGas,
      "latest",
      { tracer: "callTracer", tracerConfig: { withLog: true } },
    ]);
    let reverted: boolean;
    let revertReason: string | undefined;
    let gasUsed: bigint | undefined = gas;
    if (trace) {
      reverted = !!trace.error;
      if (trace.gasUsed) gasUsed = BigInt(trace.gasUsed);
      if (reverted) revertReason = decodeRevertReason(trace.output, trace.error);
    } else {
      try {
        await rpc(client, "eth_call", [withGas, "latest"]);
        reverted = false;
      } catch (err) {
        if (isTransportError(err)) throw err;
        reverted = true;
        revertReason = decodeRevertReason(revertData(err), nodeErrorMessage(err));
      }
    }
    if (estimateError !== undefined && !reverted) {
      // The call itself runs, yet the node would not estimate it (e.g. the sender cannot pay).
      return errorResult(id, nodeErrorMessage(estimateError) ?? "Gas estimation failed.");
    }
    if (reverted) return { id, status: "reverted", gasUsed, balanceChanges: [], revertReason };

    const price = await this.gasPrice(client, call);
    const used = gasUsed ?? 0n;
    const native = await this.nativeChangesSingle(chain, client, call, withGas, price, used);
    const logs = trace ? successfulLogs(trace) : [];
    const tokens = await this.tokenChanges(chain, client, [logs], new Map()).then((r) => r[0]!);
    // Without a call tracer the logs are unknown (undefined), not empty.
    return {
      id,
      status: "success",
      gasUsed: used,
      balanceChanges: orderChanges([...native, ...tokens], call.from),
      ...(trace ? { logs } : {}),
    };
  }

  private async nativeChangesSingle(
    chain: Chain,
    client: PublicClient,
    call: SimCall,
    tx: Record<string, Hex>,
    price: bigint,
    gasUsed: bigint,
  ): Promise<BalanceChange[]> {
    const asset = nativeAsset(chain);
    const diff = await this.optional<PrestateDiff>(chain, client, "debug_traceCall", [
      { ...tx, gasPrice: hex(price), maxFeePerGas: undefined, maxPriorityFeePerGas: undefined },
      "latest",
      { tracer: "prestateTracer", tracerConfig: { diffMode: true } },
    ]);
    if (diff) {
      const miner = ((await client.getBlock({ blockTag: "latest" })).miner ?? "").toLowerCase();
      const out: BalanceChange[] = [];
      for (const addr of new Set([...Object.keys(diff.pre ?? {}), ...Object.keys(diff.post ?? {})])) {
        if (addr.toLowerCase() === miner) continue;
        const post = diff.post?.[addr]?.balance;
        if (post === undefined) continue;
        const c = balanceChange(addr, asset, BigInt(diff.pre?.[addr]?.balance ?? "0x0"), BigInt(post));
        if (c) out.push(c);
      }
      return out;
    }
    // No tracer: the top-level value and the fee, from balances at the latest block.
    const deltas = new Map<string, bigint>();
    deltas.set(call.from.toLowerCase(), -(call.value + gasUsed * price));
    if (call.value > 0n) deltas.set(call.to.toLowerCase(), (deltas.get(call.to.toLowerCase()) ?? 0n) + call.value);
    return this.applyNative(chain, client, [deltas], new Map()).then((r) => r[0]!);
  }

  private async bundle(chain: Chain, client: PublicClient, calls: SimCall[]): Promise<SimResult[]> {
    const ids = calls.map(() => randomUUID());
    let blocks: Array<{ calls: SimulateV1Call[] }> | undefined;
    try {
      blocks = await this.optional(chain, client, "eth_simulateV1", [
        {
          blockStateCalls: [{ calls: calls.map((c) => ({ ...txObject(c), ...(c.gas !== undefined ? { gas: hex(c.gas) } : {}) })) }],
          traceTransfers: true,
          validation: false,
        },
        "latest",
      ]);
    } catch (err) {
      if (isTransportError(err)) throw err;
      const m = nodeErrorMessage(err) ?? "The node refused the simulation.";
      return ids.map((id) => errorResult(id, m));
    }
    if (!blocks) {
      const first = await this.single(chain, client, calls[0]!);
      const why = `Not simulated: ${chain.name}'s RPC has no eth_simulateV1, so state cannot be carried from one transaction to the next; use SIMULATOR=anvil for bundles.`;
      return [first, ...ids.slice(1).map((id) => errorResult(id, why))];
    }
    const results = blocks[0]?.calls ?? [];
    const prices = await Promise.all(calls.map((c) => this.gasPrice(client, c)));
    const nativeDeltas: Array<Map<string, bigint>> = [];
    const tokenLogs: RawLog[][] = [];
    results.forEach((r, i) => {
      const call = calls[i]!;
      const ok = r.status === "0x1";
      const d = new Map<string, bigint>();
      d.set(call.from.toLowerCase(), -(BigInt(r.gasUsed) * prices[i]!));
      const logs = ok ? (r.logs ?? []) : [];
      for (const l of logs) {
        if (l.address.toLowerCase() !== NATIVE_TRANSFER_ADDRESS) continue;
        for (const t of erc20Transfers([{ ...l, address: NATIVE_TRANSFER_ADDRESS }])) {
          d.set(t.from, (d.get(t.from) ?? 0n) - t.amount);
          d.set(t.to, (d.get(t.to) ?? 0n) + t.amount);
        }
      }
      nativeDeltas.push(d);
      tokenLogs.push(logs.filter((l) => l.address.toLowerCase() !== NATIVE_TRANSFER_ADDRESS));
    });
    const native = await this.applyNative(chain, client, nativeDeltas, new Map());
    const tokens = await this.tokenChanges(chain, client, tokenLogs, new Map());
    return calls.map((call, i) => {
      const r = results[i];
      if (!r) return errorResult(ids[i]!, "The node returned no result for this transaction.");
      const ok = r.status === "0x1";
      const res: SimResult = {
        id: ids[i]!,
        status: ok ? "success" : "reverted",
        gasUsed: BigInt(r.gasUsed),
        balanceChanges: orderChanges([...native[i]!, ...tokens[i]!], call.from),
      };
      if (ok) res.logs = tokenLogs[i]!;
      if (!ok) res.revertReason = decodeRevertReason(r.returnData ?? r.error?.data, r.error?.message);
      return res;
    });
  }

  /** ETH changes for a sequence of per-call deltas, with balances read once at the latest block. */
  private async applyNative(
    chain: Chain,
    client: PublicClient,
    deltas: Array<Map<string, bigint>>,
    running: Map<string, bigint>,
  ): Promise<BalanceChange[][]> {
    const asset = nativeAsset(chain);
    const addrs = new Set(deltas.flatMap((d) => [...d.keys()]));
    await Promise.all(
      [...addrs].filter((a) => !running.has(a)).map(async (a) => running.set(a, await client.getBalance({ address: a as Address }))),
    );
    return deltas.map((d) => {
      const out: BalanceChange[] = [];
      for (const [addr, delta] of d) {
        const before = running.get(addr)!;
        const after = before + delta;
        running.set(addr, after);
        const c = balanceChange(addr, asset, before, after);
        if (c) out.push(c);
      }
      return out;
    });
  }

  /** ERC-20 changes for a sequence of per-call logs: balanceOf at the latest block, then the deltas. */
  private async tokenChanges(
    chain: Chain,
    client: PublicClient,
    logsPerCall: RawLog[][],
    running: Map<string, bigint>,
  ): Promise<BalanceChange[][]> {
    const call: EthCall = (to, data, block) =>
      rpc<Hex>(client, "eth_call", [{ to, data }, block === undefined || block === "latest" ? "latest" : hex(block)]);
    const out: BalanceChange[][] = [];
    for (const logs of logsPerCall) {
      const changes: BalanceChange[] = [];
      for (const [key, delta] of netTokenDeltas(erc20Transfers(logs))) {
        const [token, holder] = key.split("|") as [Address, Address];
        const meta = await this.tokens.get(chain.chain_id, token, call);
        let before = running.get(key);
        if (before === undefined) {
          try {
            before = await readBalanceOf(call, token, holder);
          } catch (err) {
            if (isTransportError(err)) throw err;
            continue;
          }
        }
        running.set(key, before + delta);
        const c = balanceChange(holder, { token, symbol: meta.symbol, decimals: meta.decimals }, before, before + delta);
        if (c) changes.push(c);
      }
      out.push(changes);
    }
    return out;
  }

  private async gasPrice(client: PublicClient, call: SimCall): Promise<bigint> {
    if (call.gasPrice !== undefined) return call.gasPrice;
    if (call.maxFeePerGas !== undefined) return call.maxFeePerGas;
    return BigInt(await rpc<Hex>(client, "eth_gasPrice", []));
  }

  /** Calls a method the node may not have; undefined when it says it does not (remembered per chain). */
  private async optional<T>(chain: Chain, client: PublicClient, method: string, params: unknown[]): Promise<T | undefined> {
    const missing = this.missing.get(chain.name) ?? new Set<string>();
    this.missing.set(chain.name, missing);
    if (missing.has(method)) return undefined;
    try {
      return await rpc<T>(client, method, params);
    } catch (err) {
      if (isTransportError(err)) throw err;
      const code = (err as { code?: number }).code;
      const m = nodeErrorMessage(err) ?? "";
      if (code === -32601 || code === -32004 || METHOD_MISSING.test(m)) {
        missing.add(method);
        this.opts.log.info({ chain: chain.name, method }, "RPC method not available; simulating without it");
        return undefined;
      }
      if (method === "debug_traceCall") return undefined; // a tracer this node does not know
      throw err;
    }
  }
}

function rpc<T = unknown>(client: PublicClient, method: string, params: unknown[]): Promise<T> {
  return client.request({ method: method as never, params: params as never }) as Promise<T>;
}

function txObject(call: SimCall): Record<string, Hex> {
  const tx: Record<string, Hex> = { from: call.from, to: call.to, value: hex(call.value), data: call.data ?? "0x" };
  if (call.gasPrice !== undefined) tx.gasPrice = hex(call.gasPrice);
  if (call.maxFeePerGas !== undefined) tx.maxFeePerGas = hex(call.maxFeePerGas);
  if (call.maxPriorityFeePerGas !== undefined) tx.maxPriorityFeePerGas = hex(call.maxPriorityFeePerGas);
  return tx;
}

/** Logs of the frames that did not revert (a reverted frame's logs are discarded on chain too). */
function successfulLogs(frame: CallFrame): RawLog[] {
  if (frame.error) return [];
  return [...(frame.logs ?? []), ...(frame.calls ?? []).flatMap(successfulLogs)];
}

/** Revert data carried by a viem error from eth_call, if any. */
function revertData(err: unknown): Hex | undefined {
  let e: unknown = err;
  for (let i = 0; i < 8 && e; i++) {
    const d = (e as { data?: unknown }).data;
    if (typeof d === "string" && /^0x[0-9a-fA-F]*$/.test(d)) return d as Hex;
    if (d && typeof d === "object" && typeof (d as { data?: unknown }).data === "string") return (d as { data: Hex }).data;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
