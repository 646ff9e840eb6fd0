// The audit hash chain: sealing committed events into one chain, and verifying it.
//   hash = sha256(prev_hash || canonical JSON of the event's content)
// Content covers every column a reader relies on; created_at is taken as text with microseconds so
// that no digit can change unnoticed.
import { createHash } from "node:crypto";
import type { Pool } from "./db/pool.js";
import { withTransaction } from "./db/pool.js";
import { canonicalJson } from "./canonical-json.js";
import type { AuditEventRow } from "./db/audit.js";

export const GENESIS_HASH = "0".repeat(64);
// "auditsel" in ASCII: one sealer at a time across all replicas.
const SEALER_LOCK = 0x617564697473656cn;

export const AUDIT_SCHEME = {
  algorithm: "SHA-256",
  chain_structure: "hash = sha256(prev_hash || canonical_json(event)); events ordered by chain_seq",
  hash_field: "hash",
  link_field: "prev_hash",
};

/** What a hash covers: the stored event without its links, created_at as text to the microsecond. */
type ContentRow = Omit<AuditEventRow, "created_at" | "chain_seq" | "prev_hash" | "hash" | "org_id"> & { created_at_text: string };

const CONTENT_COLUMNS = `seq, id, action, actor_type, actor_id, resource_type, resource_id, details, request_id, ip_address,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at_text`;

export function eventHash(prevHash: string, r: ContentRow): string {
  const content = canonicalJson({
    id: r.id,
    action: r.action,
    actor_type: r.actor_type,
    actor_id: r.actor_id,
    resource_type: r.resource_type,
    resource_id: r.resource_id,
    details: r.details,
    request_id: r.request_id,
    ip_address: r.ip_address,
    created_at: r.created_at_text,
  });
  return createHash("sha256").update(prevHash, "utf8").update(content, "utf8").digest("hex");
}

/** Links every committed, unsealed event into the chain. Returns how many it sealed (0 if another replica holds the lock). */
export async function sealAuditEvents(pool: Pool, batch = 2000): Promise<number> {
  return withTransaction(pool, async (tx) => {
    const locked = await tx.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock($1) AS ok", [SEALER_LOCK.toString()]);
    if (!locked.rows[0].ok) return 0;
    const head = await tx.query<{ chain_seq: string; hash: string }>(
      "SELECT chain_seq, hash FROM audit_events WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1",
    );
    let prev = head.rows[0]?.hash ?? GENESIS_HASH;
    let pos = BigInt(head.rows[0]?.chain_seq ?? "0");
    const { rows } = await tx.query<ContentRow>(
      `SELECT ${CONTENT_COLUMNS} FROM audit_events WHERE chain_seq IS NULL ORDER BY seq LIMIT $1`,
      [batch],
    );
    if (rows.length === 0) return 0;
    const seqs: string[] = [];
    const positions: string[] = [];
    const prevs: string[] = [];
    const hashes: string[] = [];
    for (const r of rows) {
      const h = eventHash(prev, r);
      pos += 1n;
      seqs.push(r.seq);
      positions.push(pos.toString());
      prevs.push(prev);
      hashes.push(h);
      prev = h;
    }
    await tx.query(
      `UPDATE audit_events a SET chain_seq = u.pos, prev_hash = u.prev, hash = u.h
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS u(seq, pos, prev, h)
        WHERE a.seq = u.seq`,
      [seqs, positions, prevs, hashes],
    );
    return rows.length;
  });
}

export interface AuditVerifyResult {
  chain_valid: boolean;
  events_verified: number;
  events_checked: number;
  broken_at_event_id: string | null;
  /** Committed events not yet linked (sealing runs every few hundred milliseconds). */
  events_unsealed: number;
  scheme: typeof AUDIT_SCHEME;
}

/** Walks the chain in order, recomputing each hash; reports the first event whose link or content is broken. */
export async function verifyAuditChain(pool: Pool, pageSize = 5000): Promise<AuditVerifyResult> {
  let prev = GENESIS_HASH;
  let expectedPos = 1n;
  let checked = 0;
  let after = 0n;
  for (;;) {
    const { rows } = await pool.query<ContentRow & { chain_seq: string; prev_hash: string; hash: string }>(
      `SELECT ${CONTENT_COLUMNS}, chain_seq, prev_hash, hash FROM audit_events
        WHERE chain_seq > $1 ORDER BY chain_seq LIMIT $2`,
      [after.toString(), pageSize],
    );
    for (const r of rows) {
      checked += 1;
      const ok = BigInt(r.chain_seq) === expectedPos && r.prev_hash === prev && r.hash === eventHash(prev, r);
      if (!ok) {
        return {
          chain_valid: false,
          events_verified: checked - 1,
          events_checked: checked,
          broken_at_event_id: r.id,
          events_unsealed: await unsealed(pool),
          scheme: AUDIT_SCHEME,
        };
      }
      prev = r.hash;
      expectedPos += 1n;
      after = BigInt(r.chain_seq);
    }
    if (rows.length < pageSize) break;
  }
  return {
    chain_valid: true,
    events_verified: checked,
    events_checked: checked,
    broken_at_event_id: null,
    events_unsealed: await unsealed(pool),
    scheme: AUDIT_SCHEME,
  };
}

async function unsealed(pool: Pool): Promise<number> {
  return Number((await pool.query("SELECT count(*) FROM audit_events WHERE chain_seq IS NULL")).rows[0].count);
}

/** Seals on a short interval until stopped. */
export function startAuditSealer(
  pool: Pool,
  intervalMs: number,
  onError: (err: unknown) => void,
): { stop(): Promise<void>; sealNow(): Promise<number> } {
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        while ((await sealAuditEvents(pool)) >= 2000) {
          /* drain a backlog */
        }
      } catch (err) {
        onError(err);
      }
    });
    return running;
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    sealNow: async () => {
      await tick();
      return 0;
    },
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
