// Resolves what a request names: the chain (by name, alias or id) and the signing key (by path, or the
// default for the agent and chain). Throws 400 for an unknown chain, 403 for a disabled chain, and one
// and the same 404 for a key that does not exist, is inactive, or is not this agent's to use, so an
// agent cannot learn which keys exist by probing paths.
//
// Keys are granted, not guessed (keyUsableBy): an agent may sign with
//   - its own keys: a path under agents/{its id}/, or a key created with its agent_id;
//   - the chain's shared signer keys/{chain}-signer (a key with no agent_id), unless its operator set
//     `shared_signer: false` on the agent;
//   - keys an operator granted to it (signing_key_grants; POST /v1/signing-keys/{id}/grants).
// Reads signing_keys, signing_key_grants and the agent row; takes no lock. What it found is remembered
// per agent until anything that decides it changes (KeyAccessCache).
import type { Chain, ChainRegistry } from "../chains/registry.js";
import type { Queryable } from "../db/pool.js";
import { badRequest, forbidden, notFound } from "../errors.js";
import type { Signer, SigningKeyInfo } from "../signer/signer.js";

export function resolveChain(chains: ChainRegistry, ref: string): Chain {
  const chain = chains.resolve(ref);
  if (!chain) {
    throw badRequest(`Unknown chain '${ref}'.`, [{ field: "chain", message: "is not a configured chain name, alias or id" }]);
  }
  if (!chain.is_enabled) throw forbidden(`Chain ${chain.name} is disabled.`, "chain_disabled");
  return chain;
}

export const sharedSignerPath = (chain: Pick<Chain, "name">) => `keys/${chain.name}-signer`;

export function defaultKeyPaths(agentId: string, chain: Chain): string[] {
  return [`agents/${agentId}/chains/${chain.name}`, sharedSignerPath(chain)];
}

/** What decides whether an agent may sign with a key: its row, and the agent's relation to it. */
export interface KeyAccess {
  path: string;
  agent_id: string | null;
  is_active: boolean;
  /** An operator granted this key to the agent. */
  granted: boolean;
  /** The agent may use the chain's shared signer (agents.shared_signer). */
  shared_signer: boolean;
}

/** Deny by default: own keys, the shared signer of this chain (when allowed), granted keys. Pure. */
export function keyUsableBy(key: KeyAccess, agentId: string, chain: Pick<Chain, "name">): boolean {
  if (!key.is_active) return false;
  const owner = key.agent_id?.toLowerCase() ?? null;
  const id = agentId.toLowerCase();
  if (key.path.startsWith("agents/")) {
    // A per-agent path belongs to the agent it names, whatever else the row says.
    return key.path.startsWith(`agents/${id}/`) && (owner === null || owner === id);
  }
  if (owner !== null) return owner === id || key.granted;
  if (key.granted) return true;
  return key.shared_signer && key.path === sharedSignerPath(chain);
}

/** The one answer for "no such key", "inactive" and "not yours" (the path is not echoed: the bodies are identical). */
const noKey = () => notFound("No signing key at signing_key_path that this agent may use.");

/**
 * The keys agents were found allowed to use, remembered per agent and per value of its
 * `key_access_version` (migrations/0016_key_access_version.sql): triggers bump that version whenever a
 * grant, a key or the agent's shared_signer switch changes, and every request reads it with the agent
 * row, so a remembered answer is never used after a change that could alter it. Only answers that
 * found a key are remembered: a refusal is asked of the database each time, so "no such key" and "not
 * yours" stay the same answer. Bounded; the oldest entries go first.
 */
export class KeyAccessCache {
  private readonly paths = new Map<string, string>();
  constructor(private readonly max = 10_000) {}

  get(key: string): string | undefined {
    return this.paths.get(key);
  }

  set(key: string, path: string): void {
    if (this.paths.size >= this.max) this.paths.delete(this.paths.keys().next().value!);
    this.paths.set(key, path);
  }
}

/** Who asks for a key: the agent's id and, when read with its row, its key-access version. */
export type KeyRequester = string | { id: string; key_access_version?: string | number };

export async function resolveSigningKey(
  db: Queryable,
  signer: Signer,
  requester: KeyRequester,
  chain: Chain,
  requested?: string,
  cache?: KeyAccessCache,
): Promise<SigningKeyInfo> {
  const agentId = typeof requester === "string" ? requester : requester.id;
  const version = typeof requester === "string" ? undefined : requester.key_access_version;
  const cacheKey = cache && version !== undefined ? `${agentId}|${version}|${chain.chain_id}|${requested ?? ""}` : undefined;
  if (cacheKey) {
    const path = cache!.get(cacheKey);
    const key = path !== undefined ? await signer.getKey(path) : null;
    if (key) return key;
  }
  const key = await lookUpSigningKey(db, signer, agentId, chain, requested);
  if (cacheKey) cache!.set(cacheKey, key.path);
  return key;
}

async function lookUpSigningKey(db: Queryable, signer: Signer, agentId: string, chain: Chain, requested?: string): Promise<SigningKeyInfo> {
  const candidates = requested !== undefined ? [requested] : defaultKeyPaths(agentId, chain);
  // One query: each candidate's row, whether it was granted to the agent, and the agent's shared-signer
  // switch (false when the agent row is gone).
  const { rows } = await db.query<KeyAccess>(
    `SELECT k.path, k.agent_id::text AS agent_id, k.is_active,
            EXISTS (SELECT 1 FROM signing_key_grants g WHERE g.key_id = k.id AND g.agent_id = $2) AS granted,
            coalesce((SELECT a.shared_signer FROM agents a WHERE a.id = $2), false) AS shared_signer
       FROM signing_keys k WHERE k.path = ANY($1)`,
    [candidates, agentId.toLowerCase()],
  );
  const usable = new Set(rows.filter((r) => keyUsableBy(r, agentId, chain)).map((r) => r.path));
  // The per-agent key wins when it exists; the table mirrors the HSM's labels.
  for (const path of candidates) {
    if (!usable.has(path)) continue;
    const key = await signer.getKey(path);
    if (key) return key;
  }
  if (requested !== undefined) throw noKey();
  throw notFound(
    `No signing key for chain ${chain.name} that this agent may use: create '${candidates[0]}' (or '${candidates[1]}', shared by agents allowed to use it).`,
  );
}
