// The chain registry: chains.json seeds the `chains` table at start; operators change it through
// /v1/admin/chains; CHAIN_<NAME>_RPC_URLS and the locally started anvil override RPC URLs in memory only
// (so a credentialed URL from the environment is never written to the database).
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import { z } from "zod";
import { chainEnvKey } from "../config.js";
import { chainDefaults, chainFeeBounds, chainLinks, chainNameSchema, displayName, evmChainId, identifier, rpcUrls } from "./fields.js";
import { deletedChainNames, listChainRows, upsertFileChain, type ChainFields } from "../db/chains.js";
import type { Queryable } from "../db/pool.js";

/** A chain as the registry serves it: the stored fields (src/db/chains.ts) plus its row's own columns. */
export interface Chain extends Omit<ChainFields, "max_fee_per_gas_gwei" | "base_fee_multiple"> {
  id: string;
  /** Effective RPC URLs: environment or runtime overrides first, else the stored ones. */
  rpc_urls: string[];
  /** Fee bounds of this chain (null: MAX_FEE_PER_GAS_CAP_GWEI, BASE_FEE_MULTIPLE); numeric columns arrive as strings. */
  max_fee_per_gas_gwei?: string | null;
  base_fee_multiple?: string | null;
  managed_by: "file" | "admin";
  created_at: Date;
  updated_at: Date;
}

export { chainNameSchema };

// chains.json entries: the same field rules as an operator's POST /v1/admin/chains (./fields.ts);
// aliases are compared lower-case.
const ChainSeedSchema = z.object({
  name: chainNameSchema,
  display_name: displayName,
  chain_id: evmChainId,
  rpc_urls: rpcUrls.default([]),
  ...chainLinks,
  ...chainDefaults,
  aliases: z
    .array(
      z
        .string()
        .transform((a) => a.toLowerCase())
        .pipe(identifier),
    )
    .max(32)
    .default([]),
  ...chainFeeBounds,
});
export type ChainSeed = z.infer<typeof ChainSeedSchema>;

export function readChainsFile(file: string): ChainSeed[] {
  const raw = JSON.parse(fs.readFileSync(file, "utf8"));
  const parsed = z.object({ chains: z.array(ChainSeedSchema) }).safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new Error(`${file}: ${first?.path.join(".")}: ${first?.message}`);
  }
  return parsed.data.chains;
}

/** Inserts new chains from the file and refreshes the ones still managed by it. */
export async function seedChains(db: Queryable, seeds: ChainSeed[]): Promise<void> {
  const deleted = await deletedChainNames(db);
  for (const c of seeds) {
    if (deleted.has(c.name)) continue;
    await upsertFileChain(db, randomUUID(), {
      ...c,
      ws_url: c.ws_url ?? null,
      explorer_url: c.explorer_url ?? null,
      max_fee_per_gas_gwei: c.max_fee_per_gas_gwei ?? null,
      base_fee_multiple: c.base_fee_multiple ?? null,
    });
  }
}

export class ChainRegistry {
  private chains: Chain[] = [];
  private readonly runtimeRpc = new Map<string, string[]>();

  constructor(
    private readonly db: Queryable,
    private readonly envRpc: Record<string, string[]> = {},
  ) {}

  /** Re-reads the table; cheap (a handful of rows), called at start, after admin changes and periodically. */
  async refresh(): Promise<void> {
    const rows = await listChainRows(this.db);
    this.chains = rows.map((r) => ({ ...r, chain_id: Number(r.chain_id), rpc_urls: this.effectiveRpc(r.name, r.rpc_urls) }));
  }

  /** RPC URLs decided by this process (the anvil it started), not stored. */
  setRuntimeRpc(name: string, urls: string[]): void {
    this.runtimeRpc.set(name, urls);
    for (const c of this.chains) if (c.name === name) c.rpc_urls = this.effectiveRpc(name, c.rpc_urls);
  }

  hasRpcOverride(name: string): boolean {
    return this.envRpc[chainEnvKey(name)] !== undefined;
  }

  private effectiveRpc(name: string, stored: string[]): string[] {
    return this.envRpc[chainEnvKey(name)] ?? this.runtimeRpc.get(name) ?? stored;
  }

  list(opts: { includeDisabled?: boolean } = {}): Chain[] {
    return this.chains.filter((c) => opts.includeDisabled || c.is_enabled);
  }

  /** By name, alias or numeric chain id (as a string or number); disabled chains included. */
  resolve(ref: string | number): Chain | undefined {
    const key = String(ref).trim().toLowerCase();
    if (/^\d+$/.test(key)) return this.chains.find((c) => c.chain_id === Number(key));
    return this.chains.find((c) => c.name === key) ?? this.chains.find((c) => c.aliases.includes(key));
  }
}

/**
 * An RPC URL with its credentials removed, for operators' views and logs: user info, query values, the
 * fragment, host labels that look like keys, and every path segment that is not plainly a word, a
 * version (`v3`) or a number become `***` (providers put keys in paths as `/v3/<key>`, `/apikey=<key>`,
 * dotted tokens, short ids; an allowlist of harmless shapes catches the forms nobody listed).
 */
export function redactRpcUrl(raw: string): string {
  const u = urlOf(raw);
  if (!u) return "***";
  if (u.username || u.password) {
    u.username = "***";
    u.password = "";
  }
  const segs = u.pathname.split("/");
  u.pathname = segs
    .map((seg, i) => {
      if (seg === "") return seg;
      const afterVersion = i > 0 && /^v\d{1,2}$/i.test(segs[i - 1]!) && seg.length >= 6;
      const harmless = /^[A-Za-z-]{1,24}$/.test(seg) || /^v\d{1,2}$/i.test(seg) || /^\d{1,8}$/.test(seg);
      return afterVersion || !harmless ? "***" : seg;
    })
    .join("/");
  for (const k of [...u.searchParams.keys()]) u.searchParams.set(k, "***");
  u.hash = "";
  return u
    .toString()
    .replace(/%2A%2A%2A/g, "***")
    .replace(/^([a-z]+:\/\/)[^/]+/, (origin) => origin.replace(u.hostname, maskHost(u.hostname)));
}

/**
 * What the public may see of an RPC URL: its origin only (scheme, host, port), never a path, query or
 * user info. A host name is the origin, but some providers put the key there
 * (`https://<key>.rpc.example`): a label that looks like one (long and opaque, or letters mixed with
 * digits) is shown as `***`.
 */
export function rpcOrigin(raw: string): string {
  const u = urlOf(raw);
  if (!u) return "***";
  return `${u.protocol}//${maskHost(u.hostname)}${u.port ? `:${u.port}` : ""}`;
}

function maskHost(hostname: string): string {
  if (hostname.startsWith("[") || /^[\d.]+$/.test(hostname)) return hostname; // an IP address
  return hostname
    .split(".")
    .map((label) => (/^[a-z0-9_-]{20,}$/i.test(label) || (label.length >= 12 && /\d/.test(label) && /[a-z]/i.test(label)) ? "***" : label))
    .join(".");
}

/** The parsed URL, or undefined when it is not one (shown as `***`: it may hold a key in any part). */
function urlOf(raw: string): URL | undefined {
  try {
    return new URL(raw);
  } catch {
    return undefined;
  }
}
