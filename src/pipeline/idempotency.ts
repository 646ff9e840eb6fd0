// Idempotency-Key handling. Takes: agent id, the raw key, a fingerprint of the request, the claiming
// process's liveness key. Returns a claim to proceed, the stored response to replay, or the committed
// transaction to answer from. Throws 409 while the key is in flight and 422 when the key was used with
// a different request. Writes: one row in idempotency_keys per (agent, key), holding only
// sha256(agent || key); the row is claimed atomically by INSERT … ON CONFLICT.
// After a crash: a claim whose transaction row was committed is answered from that row at once (its
// current state, 200), whoever owns the claim; a claim with nothing committed is taken over as soon as
// its owner is known dead (its liveness lock is gone: liveness.ts), not after a timeout.
import { createHash } from "node:crypto";
import type { Queryable } from "../db/pool.js";
import { idempotencyKeyInFlight, unprocessable } from "../errors.js";
import { canonicalJson } from "../canonical-json.js";
import { ownerGone } from "./liveness.js";

export const IDEMPOTENCY_TTL_HOURS = 24;
/** Claims written before owners were recorded (owner_key NULL): their owner is presumed dead after this long. */
const STALE_CLAIM_SECONDS = 120;

export interface Claim {
  agentId: string;
  keyHash: Buffer;
  /** The claiming process's liveness key (ProcessLiveness.key). */
  ownerKey?: number;
}

export type ClaimResult =
  | { kind: "claimed"; claim: Claim }
  | { kind: "replay"; status: number; body: string }
  /** The transaction row is committed but no answer is stored yet: answer from the row; `finish`: its owner is dead, store the answer. */
  | { kind: "orphaned"; claim: Claim; txId: string; finish: boolean };

export function hashIdempotencyKey(agentId: string, key: string): Buffer {
  return createHash("sha256").update(`${agentId}:${key}`, "utf8").digest();
}

/** Fingerprint of what the request asks for: the operation and its body, key order ignored. */
export function requestFingerprint(operation: string, body: unknown): Buffer {
  return createHash("sha256").update(canonicalJson({ operation, body }), "utf8").digest();
}

/**
 * Claims a request's Idempotency-Key: fingerprinted by the operation and the body as sent, stamped with
 * this process's liveness lock so that a retry learns when the claimant died.
 */
export function claimRequest(
  deps: { pool: Queryable; liveness?: { key: number } },
  agentId: string,
  key: string,
  operation: string,
  body: unknown,
): Promise<ClaimResult> {
  return claimIdempotencyKey(deps.pool, agentId, key, requestFingerprint(operation, body), deps.liveness?.key);
}

export async function claimIdempotencyKey(
  db: Queryable,
  agentId: string,
  key: string,
  fingerprint: Buffer,
  ownerKey?: number,
): Promise<ClaimResult> {
  const keyHash = hashIdempotencyKey(agentId, key);
  const owner = ownerKey ?? null;
  // One statement for the two common cases: a new key is inserted; a key seen before is only read,
  // so a replay writes nothing (no row lock, no WAL flush) and is answered from the stored response.
  // Named: prepared once per connection, so the planner does not see this statement again for every
  // request (its result columns are listed, so a later migration cannot change them under the plan).
  const { rows } = await db.query<KeyRow & { inserted: boolean }>({
    name: "idempotency-claim",
    text: `WITH existing AS (
       SELECT ${keyState("$5")} FROM idempotency_keys WHERE agent_id = $1 AND key_hash = $2
     ), inserted AS (
       INSERT INTO idempotency_keys (agent_id, key_hash, fingerprint, state, expires_at, owner_key)
       SELECT $1, $2, $3, 'in_flight', now() + make_interval(hours => $4), $6::integer
        WHERE NOT EXISTS (SELECT 1 FROM existing)
       ON CONFLICT (agent_id, key_hash) DO NOTHING
       RETURNING 1
     )
     SELECT true AS inserted, NULL::bytea AS fingerprint, NULL AS state, NULL::uuid AS tx_id, NULL::int AS response_status,
            NULL AS response_body, false AS stale, false AS expired
       FROM inserted
     UNION ALL
     SELECT false, fingerprint, state, tx_id, response_status, response_body, stale, expired FROM existing`,
    values: [agentId, keyHash, fingerprint, IDEMPOTENCY_TTL_HOURS, STALE_CLAIM_SECONDS, owner],
  });
  const row = rows[0];
  if (row?.inserted) return { kind: "claimed", claim: { agentId, keyHash, ownerKey } };
  if (row && !takeable(row)) return decide(row, agentId, keyHash, fingerprint, ownerKey);
  // Expired, or claimed by a process that died before signing: take it over. Or a concurrent request
  // inserted it between our read and our insert: read it again.
  return takeOver(db, agentId, keyHash, fingerprint, ownerKey);
}

interface KeyRow {
  fingerprint: Buffer;
  state: string;
  tx_id: string | null;
  response_status: number | null;
  response_body: string | null;
  stale: boolean;
  expired: boolean;
}

/**
 * The columns of a KeyRow; `staleSecondsParam` is the placeholder holding STALE_CLAIM_SECONDS. `stale`:
 * the claim's owner is dead (checked only for claims still in flight; pg_locks is read only then).
 */
const keyState = (staleSecondsParam: string) =>
  `fingerprint, state, tx_id, response_status, response_body,
   CASE WHEN state <> 'in_flight' THEN false
        WHEN owner_key IS NULL THEN claimed_at < now() - make_interval(secs => ${staleSecondsParam})
        ELSE ${ownerGone("owner_key")} END AS stale,
   expires_at < now() AS expired`;

/** A row another request may claim: expired, or in flight with nothing signed by a claimant now dead. */
const takeable = (r: KeyRow) => r.expired || (r.state === "in_flight" && r.tx_id === null && r.stale);

function decide(row: KeyRow, agentId: string, keyHash: Buffer, fingerprint: Buffer, ownerKey?: number): ClaimResult {
  if (!row.fingerprint.equals(fingerprint)) {
    throw unprocessable("This Idempotency-Key was already used with a different request.", "idempotency_key_reused");
  }
  if (row.state === "done" && row.response_body !== null) {
    return { kind: "replay", status: row.response_status ?? 200, body: row.response_body };
  }
  // Signed and committed, answer not stored yet: the committed row is the answer, now. When its
  // owner died before storing the response, this request stores it.
  if (row.tx_id) return { kind: "orphaned", claim: { agentId, keyHash, ownerKey }, txId: row.tx_id, finish: row.stale };
  throw idempotencyKeyInFlight();
}

async function takeOver(db: Queryable, agentId: string, keyHash: Buffer, fingerprint: Buffer, ownerKey?: number): Promise<ClaimResult> {
  // Insert, or take over a row that expired or whose claimant died before committing anything. The
  // conflicting row is locked by ON CONFLICT DO UPDATE, so two retries cannot both take it over.
  const claimed = await db.query(
    `INSERT INTO idempotency_keys (agent_id, key_hash, fingerprint, state, expires_at, owner_key)
     VALUES ($1, $2, $3, 'in_flight', now() + make_interval(hours => $4), $6::integer)
     ON CONFLICT (agent_id, key_hash) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight', tx_id = NULL, response_status = NULL,
            response_body = NULL, claimed_at = now(), expires_at = EXCLUDED.expires_at, owner_key = EXCLUDED.owner_key
      WHERE idempotency_keys.expires_at < now()
         OR (idempotency_keys.state = 'in_flight' AND idempotency_keys.tx_id IS NULL
             AND CASE WHEN idempotency_keys.owner_key IS NULL THEN idempotency_keys.claimed_at < now() - make_interval(secs => $5)
                      ELSE ${ownerGone("idempotency_keys.owner_key")} END)
     RETURNING 1`,
    [agentId, keyHash, fingerprint, IDEMPOTENCY_TTL_HOURS, STALE_CLAIM_SECONDS, ownerKey ?? null],
  );
  if (claimed.rowCount) return { kind: "claimed", claim: { agentId, keyHash, ownerKey } };

  const { rows } = await db.query<KeyRow>(`SELECT ${keyState("$3")} FROM idempotency_keys WHERE agent_id = $1 AND key_hash = $2`, [
    agentId,
    keyHash,
    STALE_CLAIM_SECONDS,
  ]);
  if (!rows[0]) return takeOver(db, agentId, keyHash, fingerprint, ownerKey); // released between our two statements
  return decide(rows[0], agentId, keyHash, fingerprint, ownerKey);
}

export async function completeClaim(db: Queryable, claim: Claim, status: number, body: string): Promise<void> {
  await settleClaims(db, [{ claim, status, body }], []);
}

/**
 * The answers of a commit group in one statement: each claim stores its response, or is released
 * (failed requests are not cached).
 */
export async function settleClaims(
  db: Queryable,
  done: Array<{ claim: Claim; status: number; body: string }>,
  released: Claim[],
): Promise<void> {
  if (done.length === 0 && released.length === 0) return;
  await db.query({
    name: "idempotency-settle",
    text: `WITH done AS (
       UPDATE idempotency_keys k SET state = 'done', response_status = d.status, response_body = d.body
         FROM jsonb_to_recordset($1::jsonb) AS d(agent_id uuid, key_hash text, status integer, body text)
        WHERE k.agent_id = d.agent_id AND k.key_hash = decode(d.key_hash, 'hex')
     )
     DELETE FROM idempotency_keys k
      USING jsonb_to_recordset($2::jsonb) AS r(agent_id uuid, key_hash text, owner_key integer)
      WHERE k.agent_id = r.agent_id AND k.key_hash = decode(r.key_hash, 'hex') AND k.state = 'in_flight'
        -- never release a claim another process took over meanwhile
        AND (r.owner_key IS NULL OR k.owner_key IS NOT DISTINCT FROM r.owner_key)`,
    values: [
      JSON.stringify(
        done.map((d) => ({ agent_id: d.claim.agentId, key_hash: d.claim.keyHash.toString("hex"), status: d.status, body: d.body })),
      ),
      JSON.stringify(released.map((c) => ({ agent_id: c.agentId, key_hash: c.keyHash.toString("hex"), owner_key: c.ownerKey ?? null }))),
    ],
  });
}

/** Failed requests are not cached: the key becomes free again. */
export async function releaseClaim(db: Queryable, claim: Claim): Promise<void> {
  await settleClaims(db, [], [claim]);
}
