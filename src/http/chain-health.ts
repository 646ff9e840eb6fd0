// What the operator console shows on its keys-and-chains view: each enabled chain's RPC answering or
// not (its latest block), and the native balance of each signing key bound to a chain. Operators only.
// Node errors are not passed on: viem's messages quote RPC URLs, which may carry API keys.
import { getAddress } from "viem";
import { requireOperator } from "../auth/principal.js";
import type { ChainClients } from "../chains/clients.js";
import type { ChainRegistry } from "../chains/registry.js";
import type { Pool } from "../db/pool.js";
import type { SigningKeyRow } from "../db/signing-keys.js";
import { formatMajor } from "../units.js";
import type { App } from "./types.js";

/** How long one chain may take to answer before it is reported as not answering. */
export const RPC_PROBE_TIMEOUT_MS = 3000;
/** Balances read per request: keys beyond these (oldest first) are left out and counted. */
export const MAX_KEY_BALANCES = 200;

async function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("timeout")), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
const reason = (err: unknown) => ((err as Error).message === "timeout" ? "no answer in time" : "the RPC endpoints did not answer");

export async function chainHealthRoutes(app: App, deps: { pool: Pool; chains: ChainRegistry; clients: ChainClients }): Promise<void> {
  app.get(
    "/v1/admin/chains/health",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Chains"], summary: "Whether each enabled chain's RPC answers, with its latest block (operators)" },
    },
    async (req) => {
      requireOperator(req);
      const chains = deps.chains.list();
      return {
        chains: await Promise.all(
          chains.map(async (c) => {
            const endpoints = deps.clients.endpointHealth(c);
            const base = {
              name: c.name,
              chain_id: c.chain_id,
              endpoints: endpoints.length,
              healthy_endpoints: endpoints.filter((e) => e.healthy).length,
            };
            try {
              const block = await within(deps.clients.get(c).getBlockNumber(), RPC_PROBE_TIMEOUT_MS);
              return { ...base, ok: true, block_number: Number(block) };
            } catch (err) {
              return { ...base, ok: false, error: reason(err) };
            }
          }),
        ),
      };
    },
  );

  app.get(
    "/v1/admin/signing-keys/balances",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Signing Keys"], summary: "Native balance of each active signing key bound to a chain (operators)" },
    },
    async (req) => {
      requireOperator(req);
      // Oldest first, bounded: one RPC read per key.
      const { rows } = await deps.pool.query<SigningKeyRow & { total: string }>(
        "SELECT *, count(*) OVER () AS total FROM signing_keys WHERE is_active AND chain IS NOT NULL ORDER BY created_at, path LIMIT $1",
        [MAX_KEY_BALANCES],
      );
      const balances = await Promise.all(
        rows.map(async (k) => {
          const base = { path: k.path, address: getAddress(k.address), chain: k.chain! };
          const chain = deps.chains.resolve(k.chain!);
          if (!chain || !chain.is_enabled) return { ...base, error: "chain not enabled" };
          try {
            const wei = await within(deps.clients.get(chain).getBalance({ address: getAddress(k.address) }), RPC_PROBE_TIMEOUT_MS);
            return { ...base, balance_wei: wei.toString(), balance_display: formatMajor(wei) };
          } catch (err) {
            return { ...base, error: reason(err) };
          }
        }),
      );
      return { balances, left_out: Math.max(0, Number(rows[0]?.total ?? 0) - rows.length) };
    },
  );
}
