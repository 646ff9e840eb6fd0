// Operator keys as managed credentials: create (named, the key shown once), list (prefix, name,
// created, last used; never the key or its hash), revoke. Every change is audited. There is no
// cache of operator keys anywhere: each request looks its key up (auth/service.ts), so a revocation
// holds on every replica from its COMMIT on.
import { randomUUID } from "node:crypto";
import { appendAudit, type AuditEvent } from "../db/audit.js";
import { withTransaction, type Pool } from "../db/pool.js";
import { conflict, notFound } from "../errors.js";
import { generateApiKey, hashApiKey, keyPrefix, OPERATOR_KEY_PREFIX } from "./keys.js";

export interface OperatorKeyInfo {
  id: string;
  name: string;
  key_prefix: string;
  is_active: boolean;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

type Actor = AuditEvent["actor"];
interface Meta {
  requestId?: string;
  ip?: string;
}

const COLUMNS = `id, name, key_prefix, created_at, last_used_at, expires_at, revoked_at,
  (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS is_active`;

interface Row {
  id: string;
  name: string;
  key_prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  expires_at: Date | null;
  revoked_at: Date | null;
  is_active: boolean;
}

const info = (r: Row): OperatorKeyInfo => ({
  id: r.id,
  name: r.name,
  key_prefix: r.key_prefix,
  is_active: r.is_active,
  created_at: r.created_at.toISOString(),
  last_used_at: r.last_used_at?.toISOString() ?? null,
  expires_at: r.expires_at?.toISOString() ?? null,
  revoked_at: r.revoked_at?.toISOString() ?? null,
});

export async function createOperatorKey(
  pool: Pool,
  o: { name: string; expiresAt?: Date; actor: Actor } & Meta,
): Promise<{ key: OperatorKeyInfo; api_key: string }> {
  const apiKey = generateApiKey(OPERATOR_KEY_PREFIX);
  const row = await withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<Row>(
      `INSERT INTO operator_keys (id, name, key_hash, key_prefix, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
      [randomUUID(), o.name, hashApiKey(apiKey), keyPrefix(apiKey), o.expiresAt ?? null],
    );
    await appendAudit(tx, {
      action: "operator_key.created",
      actor: o.actor,
      resourceType: "operator_key",
      resourceId: rows[0].id,
      details: { name: o.name, key_prefix: rows[0].key_prefix, expires_at: rows[0].expires_at?.toISOString() ?? null },
      requestId: o.requestId,
      ip: o.ip,
    });
    return rows[0];
  });
  return { key: info(row), api_key: apiKey };
}

export async function listOperatorKeys(pool: Pool): Promise<OperatorKeyInfo[]> {
  const { rows } = await pool.query<Row>(`SELECT ${COLUMNS} FROM operator_keys ORDER BY created_at, id`);
  return rows.map(info);
}

/**
 * Revokes a key at once. The last active key cannot be revoked (nobody could log in again; create
 * another first): the active keys are locked FOR UPDATE, so two revocations at once cannot both
 * pass that check.
 */
export async function revokeOperatorKey(pool: Pool, id: string, o: { actor: Actor } & Meta): Promise<OperatorKeyInfo> {
  return withTransaction(pool, async (tx) => {
    const active = await tx.query<{ id: string }>(
      "SELECT id FROM operator_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) ORDER BY id FOR UPDATE",
    );
    const { rows } = await tx.query<Row>(`SELECT ${COLUMNS} FROM operator_keys WHERE id = $1`, [id]);
    const row = rows[0];
    if (!row) throw notFound("Operator key not found.");
    if (row.revoked_at) return info(row);
    if (row.is_active && active.rows.length <= 1) {
      throw conflict("This is the last active operator key; create another before revoking it.", "last_operator_key");
    }
    const { rows: done } = await tx.query<Row>(`UPDATE operator_keys SET revoked_at = now() WHERE id = $1 RETURNING ${COLUMNS}`, [id]);
    await appendAudit(tx, {
      action: "operator_key.revoked",
      actor: o.actor,
      resourceType: "operator_key",
      resourceId: id,
      details: { name: row.name, key_prefix: row.key_prefix },
      requestId: o.requestId,
      ip: o.ip,
    });
    return info(done[0]);
  });
}
