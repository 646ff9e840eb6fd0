// The `signing_keys` mirror of the HSM's keys (path, address, public key; never key material) and the
// operators' grants of keys to agents (`signing_key_grants`). Which key an agent may sign with is
// decided in src/pipeline/resolve.ts, which reads these tables too.
import { randomUUID } from "node:crypto";
import type { PoolClient, Queryable } from "./pool.js";
import type { SigningKeyInfo } from "../signer/signer.js";
import { UUID } from "../uuid.js";

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

export interface GrantRow {
  key_id: string;
  agent_id: string;
  granted_by: string;
  created_at: Date;
}
const GRANT_COLUMNS = "key_id::text, agent_id::text, granted_by, created_at";

/** Mirrors a key the HSM holds; a key recreated at the same path updates its address and public key. */
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
  return rows[0]!;
}

/**
 * Serialises creators of one path across replicas sharing the HSM token, until the caller's
 * transaction ends (the signer's own exists-check only covers its process).
 */
export async function lockKeyPath(tx: PoolClient, path: string): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`intents.signing_key:${path}`]);
}

/** The key a route names by id or by path; `lock`: FOR UPDATE, for the rest of the caller's transaction. */
export async function findSigningKey(db: Queryable, ref: string, lock = false): Promise<SigningKeyRow | undefined> {
  const byId = UUID.test(ref);
  const { rows } = await db.query<SigningKeyRow>(
    `SELECT * FROM signing_keys WHERE ${byId ? "id = $1::uuid" : "path = $1"}${lock ? " FOR UPDATE" : ""}`,
    [byId ? ref.toLowerCase() : ref],
  );
  return rows[0];
}

/** Every key, or one agent's own keys (created with its agent_id). */
export async function listSigningKeys(db: Queryable, agentId?: string): Promise<SigningKeyRow[]> {
  if (agentId === undefined) return (await db.query<SigningKeyRow>("SELECT * FROM signing_keys ORDER BY created_at, path")).rows;
  return (await db.query<SigningKeyRow>("SELECT * FROM signing_keys WHERE agent_id = $1 ORDER BY created_at, path", [agentId])).rows;
}

export async function setSigningKeyActive(tx: PoolClient, id: string, active: boolean): Promise<SigningKeyRow> {
  const { rows } = await tx.query<SigningKeyRow>("UPDATE signing_keys SET is_active = $2 WHERE id = $1 RETURNING *", [id, active]);
  return rows[0]!;
}

export async function listGrants(db: Queryable, keyId: string): Promise<GrantRow[]> {
  return (
    await db.query<GrantRow>(`SELECT ${GRANT_COLUMNS} FROM signing_key_grants WHERE key_id = $1 ORDER BY created_at, agent_id`, [keyId])
  ).rows;
}

/** Grants the key; granting again changes nothing (`created: false`, the existing grant). */
export async function insertGrant(
  tx: PoolClient,
  keyId: string,
  agentId: string,
  grantedBy: string,
): Promise<{ grant: GrantRow; created: boolean }> {
  const ins = await tx.query<GrantRow>(
    `INSERT INTO signing_key_grants (key_id, agent_id, granted_by) VALUES ($1, $2, $3)
     ON CONFLICT (key_id, agent_id) DO NOTHING RETURNING ${GRANT_COLUMNS}`,
    [keyId, agentId, grantedBy],
  );
  if (ins.rows[0]) return { grant: ins.rows[0], created: true };
  const { rows } = await tx.query<GrantRow>(`SELECT ${GRANT_COLUMNS} FROM signing_key_grants WHERE key_id = $1 AND agent_id = $2`, [
    keyId,
    agentId,
  ]);
  return { grant: rows[0]!, created: false };
}

/** False when there was no such grant. */
export async function deleteGrant(tx: PoolClient, keyId: string, agentId: string): Promise<boolean> {
  const { rowCount } = await tx.query("DELETE FROM signing_key_grants WHERE key_id = $1 AND agent_id = $2", [keyId, agentId]);
  return (rowCount ?? 0) > 0;
}
