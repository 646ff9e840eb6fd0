// Signing keys: generated inside the HSM (labelled by path), mirrored in `signing_keys` for listing.
// The HSM is the source of truth for key material; the table only holds path, address and public key.
import { randomUUID } from "node:crypto";
import type { Queryable } from "./db/pool.js";
import { HsmError, type Signer, type SigningKeyInfo } from "./signer/signer.js";

export interface SigningKeyRow {
  id: string;
  path: string;
  address: string;
  public_key: string;
  chain: string | null;
  agent_id: string | null;
  is_active: boolean;
  created_at: Date;
}

export async function recordSigningKey(
  db: Queryable,
  key: SigningKeyInfo,
  meta: { chain?: string | null; agentId?: string | null } = {},
): Promise<SigningKeyRow> {
  const { rows } = await db.query<SigningKeyRow>(
    `INSERT INTO signing_keys (id, path, address, public_key, chain, agent_id)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (path) DO UPDATE SET address = EXCLUDED.address, public_key = EXCLUDED.public_key
     RETURNING *`,
    [randomUUID(), key.path, key.address.toLowerCase(), key.publicKey, meta.chain ?? null, meta.agentId ?? null],
  );
  return rows[0];
}

/** Returns the key at `path`, generating it in the HSM first when it does not exist yet. */
export async function ensureSigningKey(
  db: Queryable,
  signer: Signer,
  path: string,
  meta: { chain?: string | null; agentId?: string | null } = {},
): Promise<SigningKeyInfo> {
  let key = await signer.getKey(path);
  if (!key) {
    try {
      key = await signer.createKey(path);
    } catch (err) {
      // Another request created it between our lookup and our create: in this process the signer
      // serialises creations per path and answers key_exists (signer/pkcs11.ts createKey); across
      // replicas sharing a token its check is best effort, so a key_exists may come from either.
      if (!(err instanceof HsmError && err.code === "key_exists")) throw err;
      key = await signer.getKey(path);
      if (!key) throw err;
    }
  }
  await recordSigningKey(db, key, meta);
  return key;
}
