// viem clients per chain, with failover across the chain's RPC URLs. Clients are cached per
// (chain, URL set) so an admin change or override of the URLs takes effect on the next call.
import { createPublicClient, defineChain, fallback, http, type PublicClient, type Transport } from "viem";
import type { Chain } from "./registry.js";

export interface ChainClientOptions {
  /** Per-request timeout; a broadcast that times out is an unknown outcome, never a failure. */
  timeoutMs?: number;
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

export class ChainClients {
  private readonly cache = new Map<string, { key: string; client: PublicClient }>();

  constructor(private readonly opts: ChainClientOptions = {}) {}

  get(c: Chain): PublicClient {
    const key = c.rpc_urls.join(" ");
    const hit = this.cache.get(c.name);
    if (hit && hit.key === key) return hit.client;
    if (c.rpc_urls.length === 0) throw new Error(`chain ${c.name} has no RPC URL`);
    const transports: Transport[] = c.rpc_urls.map((url) =>
      // No retries inside one URL: failover to the next URL is the retry, and a send must never be
      // repeated blindly against the same node.
      http(url, { timeout: this.opts.timeoutMs ?? 10_000, retryCount: 0, batch: false }),
    );
    const transport = transports.length === 1 ? transports[0] : fallback(transports, { retryCount: 0, rank: false });
    const client = createPublicClient({ chain: viemChain(c), transport, cacheTime: 0 }) as PublicClient;
    this.cache.set(c.name, { key, client });
    return client;
  }
}
