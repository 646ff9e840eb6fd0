// Resolves what a request names: the chain (by name, alias or id) and the signing key (by path, or the
// default for the agent and chain). Throws 400 for an unknown chain, 403 for a disabled or disallowed
// chain or a path outside the agent's namespaces, 404 for a key that does not exist.
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

/** Paths an agent may sign with: shared keys, wallets, and its own namespace. */
export function agentMayUsePath(agentId: string, path: string): boolean {
  if (path.includes("..") || path.includes("//")) return false;
  return path.startsWith("keys/") || path.startsWith("wallets/") || path.startsWith(`agents/${agentId}/`);
}

export function defaultKeyPaths(agentId: string, chain: Chain): string[] {
  return [`agents/${agentId}/chains/${chain.name}`, `keys/${chain.name}-signer`];
}

export async function resolveSigningKey(
  db: Queryable,
  signer: Signer,
  agentId: string,
  chain: Chain,
  requested?: string,
): Promise<SigningKeyInfo> {
  if (requested !== undefined) {
    if (!agentMayUsePath(agentId, requested)) {
      throw forbidden(`Signing key path '${requested}' is outside this agent's allowed paths (keys/, wallets/, agents/${agentId}/).`, "key_path_forbidden");
    }
    const key = await signer.getKey(requested);
    if (!key) throw notFound(`No signing key at '${requested}'.`);
    return key;
  }
  // The per-agent key wins when it exists; the table mirrors the HSM's labels, so one query decides.
  const candidates = defaultKeyPaths(agentId, chain);
  const { rows } = await db.query<{ path: string }>(
    "SELECT path FROM signing_keys WHERE path = ANY($1) AND is_active",
    [candidates],
  );
  const found = new Set(rows.map((r) => r.path));
  for (const path of candidates) {
    if (!found.has(path)) continue;
    const key = await signer.getKey(path);
    if (key) return key;
  }
  throw notFound(`No signing key for chain ${chain.name}: create '${candidates[1]}' or '${candidates[0]}'.`);
}
