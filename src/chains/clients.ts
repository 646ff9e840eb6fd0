// viem clients per chain, with failover across the chain's RPC URLs. Clients are cached per
// (chain, URL set) so an admin change or override of the URLs takes effect on the next call.
//
// Failover and health: each request goes to the healthiest URL first. A URL that fails at the
// transport level (refused, reset, timed out, HTTP error, rate limited) is demoted for a cooldown
// that doubles with each consecutive failure (1 s … 30 s) and the request moves to the next URL. A
// JSON-RPC error answer ("nonce too low", "execution reverted", "insufficient funds") is the node
// working as it should: it counts as a success for the URL and is returned to the caller at once.
// Reads are idempotent and get up to three more rounds over the URLs that failed fast (refused, reset,
// HTTP error; not one that timed out), within about one timeout; a send gets one round only (the same
// signed bytes may go to each URL once; the tracker resends later when every URL failed).
import {
  createPublicClient,
  createTransport,
  defineChain,
  http,
  HttpRequestError,
  RpcRequestError,
  type EIP1193RequestFn,
  type PublicClient,
  type Transport,
} from "viem";
import type { Chain } from "./registry.js";

export interface ChainClientOptions {
  /** Per-request timeout; a broadcast that times out is an unknown outcome, never a failure. */
  timeoutMs?: number;
  /**
   * Calls made in the same turn of the event loop to one URL go as one JSON-RPC batch of at most this
   * many (a commit group's broadcasts, the tracker's receipt reads, concurrent gas estimates): one HTTP
   * round trip instead of many. 1 sends every call on its own (for nodes that refuse batches).
   */
  batchSize?: number;
}

export function viemChain(c: Chain) {
  return defineChain({
    id: c.chain_id,
    name: c.display_name,
    nativeCurrency: { name: c.native_currency, symbol: c.native_currency, decimals: 18 },
    rpcUrls: { default: { http: c.rpc_urls } },
    blockExplorers: c.explorer_url ? { default: { name: "explorer", url: c.explorer_url } } : undefined,
  });
}

const SEND_METHODS = new Set(["eth_sendRawTransaction", "eth_sendRawTransactionSync", "eth_sendTransaction"]);
const READ_ROUNDS = 4;
const READ_RETRY_DELAY_MS = 50;
const COOLDOWN_BASE_MS = 1_000;
const COOLDOWN_MAX_MS = 30_000;
const RATE_LIMITED = /rate limit|too many requests|limit exceeded/i;

export interface EndpointHealth {
  url: string;
  healthy: boolean;
  consecutive_failures: number;
  last_error?: string;
}

/** Recent transport failures per RPC URL, shared by every client of this process. */
export class RpcHealth {
  private readonly state = new Map<string, { failures: number; until: number; lastError?: string }>();

  succeeded(url: string): void {
    this.state.delete(url);
  }

  failed(url: string, reason: string): void {
    const s = this.state.get(url) ?? { failures: 0, until: 0 };
    s.failures += 1;
    s.until = Date.now() + Math.min(COOLDOWN_MAX_MS, COOLDOWN_BASE_MS * 2 ** (s.failures - 1));
    s.lastError = reason;
    this.state.set(url, s);
  }

  healthy(url: string): boolean {
    return (this.state.get(url)?.until ?? 0) <= Date.now();
  }

  /** Indexes of `urls` in the order to try them: healthy ones as configured, then demoted ones, soonest-recovering first. */
  rank(urls: string[]): number[] {
    const idx = urls.map((_, i) => i);
    const healthy = idx.filter((i) => this.healthy(urls[i]));
    const demoted = idx
      .filter((i) => !this.healthy(urls[i]))
      .sort((a, b) => this.state.get(urls[a])!.until - this.state.get(urls[b])!.until);
    return [...healthy, ...demoted];
  }

  snapshot(urls: string[]): EndpointHealth[] {
    return urls.map((url) => {
      const s = this.state.get(url);
      return {
        url,
        healthy: this.healthy(url),
        consecutive_failures: s?.failures ?? 0,
        ...(s?.lastError ? { last_error: s.lastError } : {}),
      };
    });
  }
}

/** A JSON-RPC error object is the node's answer; anything else (HTTP, timeout, socket) is the endpoint failing. */
function endpointFailure(err: unknown): string | undefined {
  if (err instanceof RpcRequestError) {
    return err.code === -32005 || RATE_LIMITED.test(err.details ?? "") ? "rate limited" : undefined;
  }
  if (err instanceof HttpRequestError) return err.status ? `HTTP ${err.status}` : "unreachable";
  return (err as { name?: string })?.name === "TimeoutError" ? "timeout" : "unreachable";
}

function failoverTransport(urls: string[], health: RpcHealth, timeoutMs: number, batchSize: number): Transport {
  const batch = batchSize > 1 ? { batchSize, wait: 0 } : false;
  const endpoints = urls.map((url) => http(url, { timeout: timeoutMs, retryCount: 0, batch }));
  return ({ chain }) => {
    const instances = endpoints.map((t) => t({ chain, retryCount: 0, timeout: timeoutMs }));
    const request: EIP1193RequestFn = (async (args: { method: string; params?: unknown }, options?: unknown) => {
      const rounds = SEND_METHODS.has(args.method) ? 1 : READ_ROUNDS;
      const started = Date.now();
      const timedOut = new Set<number>(); // not asked again within this request: it would only wait again
      let last: unknown;
      for (let round = 0; round < rounds; round++) {
        if (round > 0) {
          if (timedOut.size === urls.length || Date.now() - started > timeoutMs) break;
          await new Promise((r) => setTimeout(r, READ_RETRY_DELAY_MS * round));
        }
        for (const i of health.rank(urls)) {
          if (timedOut.has(i)) continue;
          try {
            const result = await instances[i].config.request(args as never, options as never);
            health.succeeded(urls[i]);
            return result;
          } catch (err) {
            const failure = endpointFailure(err);
            if (failure === undefined) {
              health.succeeded(urls[i]);
              throw err;
            }
            health.failed(urls[i], failure);
            if (failure === "timeout") timedOut.add(i);
            last = err;
          }
        }
      }
      throw last;
    }) as EIP1193RequestFn;
    return createTransport({ key: "failover", name: "Failover", type: "failover", retryCount: 0, timeout: timeoutMs, request });
  };
}

export class ChainClients {
  private readonly cache = new Map<string, { key: string; client: PublicClient }>();
  readonly health = new RpcHealth();

  constructor(private readonly opts: ChainClientOptions = {}) {}

  get(c: Chain): PublicClient {
    const key = c.rpc_urls.join(" ");
    const hit = this.cache.get(c.name);
    if (hit && hit.key === key) return hit.client;
    if (c.rpc_urls.length === 0) throw new Error(`chain ${c.name} has no RPC URL`);
    // No retries inside viem: the failover transport decides what is retried and where.
    const transport = failoverTransport(c.rpc_urls, this.health, this.opts.timeoutMs ?? 10_000, this.opts.batchSize ?? 100);
    const client = createPublicClient({ chain: viemChain(c), transport, cacheTime: 0 }) as PublicClient;
    this.cache.set(c.name, { key, client });
    return client;
  }

  /** The health of each of a chain's RPC URLs as this process sees it (URLs as configured: redact before showing). */
  endpointHealth(c: Chain): EndpointHealth[] {
    return this.health.snapshot(c.rpc_urls);
  }
}
