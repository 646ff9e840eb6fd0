// Tenderly's Simulation API: POST {api}/api/v1/account/{account}/project/{project}/simulate for one
// call, /simulate-bundle ({ simulations: [...] } → { simulation_results: [...] }) for several, with the
// access key in the X-Access-Key header. Simulations are saved (save, save_if_fails) so that
// `tenderly_dashboard_url` opens them.
//
// Results: status from transaction.status; gas_used from transaction.gas_used; the revert reason from
// the call trace's output (decoded like the other simulators), else Tenderly's error_reason /
// error_message; ETH changes from transaction_info.balance_diff (original → dirty, the miner left out)
// or, without it, from the native asset_changes; ERC-20 changes from asset_changes (raw_amount),
// with the balance before read from the chain's RPC when it answers.
//
// Any failure to get an answer (network error, timeout, non-2xx, unreadable body) is a result with
// status "error" and a safe message: never the access key, never the URL.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Address, Hex } from "viem";
import type { ChainClients } from "../chains/clients.js";
import type { Chain } from "../chains/registry.js";
import { safeMessage } from "../chains/node-errors.js";
import {
  balanceChange,
  decodeRevertReason,
  errorResult,
  nativeAsset,
  orderChanges,
  readBalanceOf,
  type BalanceChange,
  type EthCall,
  type SimCall,
  type SimOptions,
  type SimResult,
  type Simulator,
} from "./simulator.js";

export interface TenderlyOptions {
  account: string;
  project: string;
  accessKey: string;
  /** https://api.tenderly.co, or a local server in tests. */
  apiUrl: string;
  /** Used only to read token balances before the simulation; optional. */
  clients?: ChainClients;
  log: Logger;
  timeoutMs?: number;
}

export const TENDERLY_DASHBOARD = "https://dashboard.tenderly.co";

/** The request body of one simulation, as Tenderly documents it. */
export interface TenderlySimulationRequest {
  network_id: string;
  from: string;
  to: string;
  input: string;
  gas: number;
  gas_price?: string;
  value: string;
  save: boolean;
  save_if_fails: boolean;
  simulation_type: "full" | "quick" | "abi";
  estimate_gas?: boolean;
}

interface TenderlyAssetChange {
  token_info?: { standard?: string; type?: string; contract_address?: string; symbol?: string; decimals?: number };
  type?: string;
  from?: string;
  to?: string;
  raw_amount?: string;
}

interface TenderlyResult {
  simulation?: { id?: string; status?: boolean; gas_used?: number };
  transaction?: {
    status?: boolean;
    gas_used?: number;
    error_message?: string;
    transaction_info?: {
      call_trace?: { output?: string; error?: string; error_reason?: string };
      asset_changes?: TenderlyAssetChange[] | null;
      balance_diff?: Array<{ address: string; original: string; dirty: string; is_miner?: boolean }> | null;
    };
  };
}

/** Gas limit sent when the caller gave none; Tenderly is also asked to estimate. */
const DEFAULT_GAS = 8_000_000;

export class TenderlySimulator implements Simulator {
  readonly kind = "tenderly" as const;

  constructor(private readonly opts: TenderlyOptions) {}

  async close(): Promise<void> {}

  dashboardUrl(simulationId: string): string {
    return `${TENDERLY_DASHBOARD}/${encodeURIComponent(this.opts.account)}/${encodeURIComponent(this.opts.project)}/simulator/${encodeURIComponent(simulationId)}`;
  }

  requestBody(chain: Chain, call: SimCall): TenderlySimulationRequest {
    const body: TenderlySimulationRequest = {
      network_id: String(chain.chain_id),
      from: call.from.toLowerCase(),
      to: call.to.toLowerCase(),
      input: call.data ?? "0x",
      gas: call.gas !== undefined ? Number(call.gas) : DEFAULT_GAS,
      value: call.value.toString(),
      save: true,
      save_if_fails: true,
      simulation_type: "full",
    };
    const price = call.gasPrice ?? call.maxFeePerGas;
    if (price !== undefined) body.gas_price = price.toString();
    if (call.gas === undefined) body.estimate_gas = true;
    return body;
  }

  async simulate(chain: Chain, calls: SimCall[], opts: SimOptions = {}): Promise<SimResult[]> {
    const base = `${this.opts.apiUrl.replace(/\/+$/, "")}/api/v1/account/${encodeURIComponent(this.opts.account)}/project/${encodeURIComponent(this.opts.project)}`;
    const bundle = calls.length > 1;
    const url = bundle ? `${base}/simulate-bundle` : `${base}/simulate`;
    const body = bundle ? { simulations: calls.map((c) => this.requestBody(chain, c)) } : this.requestBody(chain, calls[0]!);
    const fail = (message: string) => calls.map(() => errorResult(randomUUID(), message));

    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", "X-Access-Key": this.opts.accessKey },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? this.opts.timeoutMs ?? 20_000),
      });
    } catch (err) {
      const timedOut = (err as Error)?.name === "TimeoutError" || (err as Error)?.name === "AbortError";
      this.opts.log.warn({ chain: chain.name, timedOut }, "Tenderly simulation request failed");
      return fail(timedOut ? "Tenderly did not answer in time." : "Tenderly could not be reached.");
    }
    const text = await res.text().catch(() => "");
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const msg = (json as { error?: { message?: string; slug?: string } } | undefined)?.error;
      const detail = msg?.message ? `: ${this.clean(msg.message)}` : "";
      this.opts.log.warn({ chain: chain.name, status: res.status, slug: msg?.slug }, "Tenderly refused the simulation");
      return fail(`Tenderly answered HTTP ${res.status}${detail}`);
    }
    const results: Array<TenderlyResult | undefined> = bundle
      ? ((json as { simulation_results?: TenderlyResult[] } | undefined)?.simulation_results ?? [])
      : json && typeof json === "object"
        ? [json as TenderlyResult]
        : [];
    if (results.length === 0 || !results[0]?.simulation) return fail("Tenderly's answer could not be read.");

    const tokenBalances = new Map<string, bigint>();
    const out: SimResult[] = [];
    for (let i = 0; i < calls.length; i++) {
      const r = results[i];
      if (!r?.simulation) {
        // Tenderly stops a bundle at the first failure.
        out.push(errorResult(randomUUID(), "Not simulated: Tenderly stopped the bundle at an earlier transaction that failed."));
        continue;
      }
      out.push(await this.toResult(chain, calls[i]!, r, tokenBalances));
    }
    return out;
  }

  private async toResult(chain: Chain, call: SimCall, r: TenderlyResult, tokenBalances: Map<string, bigint>): Promise<SimResult> {
    const id = r.simulation?.id ? String(r.simulation.id) : randomUUID();
    const tx = r.transaction;
    const ok = tx?.status ?? r.simulation?.status ?? false;
    const gasUsed = tx?.gas_used ?? r.simulation?.gas_used;
    const result: SimResult = {
      id,
      status: ok ? "success" : "reverted",
      balanceChanges: [],
      dashboardUrl: r.simulation?.id ? this.dashboardUrl(String(r.simulation.id)) : undefined,
    };
    if (typeof gasUsed === "number" && Number.isFinite(gasUsed)) result.gasUsed = BigInt(Math.trunc(gasUsed));
    if (!ok) {
      const trace = tx?.transaction_info?.call_trace;
      const output = trace?.output && trace.output !== "0x" ? trace.output : undefined;
      result.revertReason = output
        ? decodeRevertReason(output)
        : trace?.error_reason
          ? this.clean(trace.error_reason)
          : decodeRevertReason(undefined, trace?.error ?? tx?.error_message);
    }
    try {
      result.balanceChanges = orderChanges(await this.balanceChanges(chain, tx?.transaction_info, tokenBalances), call.from);
    } catch (err) {
      this.opts.log.warn(
        { chain: chain.name, err: safeMessage(String((err as Error)?.message ?? err)) },
        "could not read Tenderly's balance changes",
      );
    }
    return result;
  }

  private async balanceChanges(
    chain: Chain,
    info: NonNullable<TenderlyResult["transaction"]>["transaction_info"],
    tokenBalances: Map<string, bigint>,
  ): Promise<BalanceChange[]> {
    const out: BalanceChange[] = [];
    const native = nativeAsset(chain);
    const assets = info?.asset_changes ?? [];
    if (info?.balance_diff && info.balance_diff.length > 0) {
      for (const d of info.balance_diff) {
        if (d.is_miner) continue;
        const c = balanceChange(d.address, native, toBig(d.original), toBig(d.dirty));
        if (c) out.push(c);
      }
    } else {
      const deltas = new Map<string, bigint>();
      for (const a of assets) {
        if (!isNative(a)) continue;
        const amt = toBig(a.raw_amount);
        if (amt === undefined) continue;
        if (a.from) deltas.set(a.from.toLowerCase(), (deltas.get(a.from.toLowerCase()) ?? 0n) - amt);
        if (a.to) deltas.set(a.to.toLowerCase(), (deltas.get(a.to.toLowerCase()) ?? 0n) + amt);
      }
      for (const [addr, delta] of deltas) {
        const c = balanceChange(addr, native, undefined, undefined, delta);
        if (c) out.push(c);
      }
    }

    // ERC-20: net change per (token, holder); the balance before from the chain, carried across a bundle.
    const tokens = new Map<string, { token: string; holder: string; symbol: string; decimals: number; delta: bigint }>();
    for (const a of assets) {
      const standard = a.token_info?.standard?.toUpperCase();
      if (standard !== "ERC20" || !a.token_info?.contract_address) continue;
      const amt = toBig(a.raw_amount);
      if (amt === undefined) continue;
      const token = a.token_info.contract_address.toLowerCase();
      const add = (holder: string | undefined, d: bigint) => {
        if (!holder || /^0x0{40}$/i.test(holder)) return;
        const k = `${token}|${holder.toLowerCase()}`;
        const e = tokens.get(k) ?? {
          token,
          holder: holder.toLowerCase(),
          symbol: a.token_info?.symbol ?? "UNKNOWN",
          decimals: a.token_info?.decimals ?? 0,
          delta: 0n,
        };
        e.delta += d;
        tokens.set(k, e);
      };
      add(a.from, -amt);
      add(a.to, amt);
    }
    for (const [k, t] of tokens) {
      let before = tokenBalances.get(k);
      if (before === undefined) before = await this.readTokenBalance(chain, t.token as Address, t.holder as Address);
      if (before !== undefined) tokenBalances.set(k, before + t.delta);
      const c = balanceChange(
        t.holder,
        { token: t.token, symbol: t.symbol, decimals: t.decimals },
        before,
        before !== undefined ? before + t.delta : undefined,
        t.delta,
      );
      if (c) out.push(c);
    }
    return out;
  }

  private async readTokenBalance(chain: Chain, token: Address, holder: Address): Promise<bigint | undefined> {
    if (!this.opts.clients) return undefined;
    try {
      const client = this.opts.clients.get(chain);
      const call: EthCall = (to, data) => client.request({ method: "eth_call", params: [{ to, data }, "latest"] }) as Promise<Hex>;
      return await readBalanceOf(call, token, holder);
    } catch {
      return undefined; // the chain's RPC is not needed for the simulation itself: leave before/after out
    }
  }

  /** Tenderly's own text, bounded, with anything looking like our key removed. */
  private clean(text: string): string {
    return safeMessage(text.split(this.opts.accessKey).join("[redacted]"), 200);
  }
}

function isNative(a: TenderlyAssetChange): boolean {
  const s = `${a.token_info?.standard ?? ""} ${a.token_info?.type ?? ""}`.toLowerCase();
  return s.includes("native");
}

function toBig(v: string | number | undefined | null): bigint | undefined {
  if (v === undefined || v === null) return undefined;
  const s = String(v).trim();
  if (/^-?\d+$/.test(s) || /^0x[0-9a-fA-F]+$/.test(s)) return BigInt(s);
  return undefined;
}
