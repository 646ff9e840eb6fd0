// Fan-out: audit log → per-endpoint outbox. For each active endpoint (row-locked with SKIP LOCKED, so
// replicas share the endpoints and never work on the same one at once), one transaction reads sealed
// audit events past the endpoint's cursor whose action it subscribes to, inserts one delivery per
// event (ON CONFLICT DO NOTHING: idempotent), and advances the cursor.
//
// `chain_seq` is a safe cursor: the sealer assigns it under a lock, in increasing order, and commits
// each batch atomically, so once chain_seq N is visible every chain_seq below N is visible too. `seq`
// would not do: a row with a lower seq can commit after one with a higher seq.
import { randomUUID } from "node:crypto";
import { withTransaction, type Pool, type PoolClient } from "../db/pool.js";
import { SIGNED_BY_MODE, type TxRow } from "../db/transactions.js";
import { ACTION_TO_EVENT, actionsFor } from "./events.js";
import { UUID } from "../uuid.js";

interface EndpointRow {
  id: string;
  events: string[];
  cursor_chain_seq: string;
}

interface EventRow {
  id: string;
  chain_seq: string;
  action: string;
  actor_type: string;
  actor_id: string | null;
  resource_id: string | null;
  details: Record<string, unknown>;
  created_at: Date;
}

/** The columns of a transaction row an event's payload shows. */
type TxSnapshot = Pick<
  TxRow,
  | "id"
  | "agent_id"
  | "chain"
  | "chain_id"
  | "from_address"
  | "to_address"
  | "value_wei"
  | "nonce"
  | "tx_hash"
  | "status"
  | "chain_status"
  | "block_number"
  | "block_hash"
  | "confirmations"
  | "error_message"
  | "signed_at"
>;

export interface FanoutResult {
  endpoints: number;
  deliveries: number;
}

const num = (v: unknown): number | null => {
  if (v === null || v === undefined || v === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

/**
 * The `data` member of a delivery: what the audit event says at the time of the effect, completed
 * from the transaction row. `status` is the transaction's status as of this event, not as of the
 * fan-out (a `signed` event says "signed" even when the row has since been broadcast).
 */
export function eventData(ev: EventRow, tx: TxSnapshot | undefined): Record<string, unknown> {
  const d = ev.details ?? {};
  const type = ACTION_TO_EVENT[ev.action];
  // A message, typed-data or digest signature: its audit event holds the whole decoded meaning.
  if (type === "agent.signature.created") {
    return { signature_id: ev.resource_id, agent_id: ev.actor_type === "agent" ? ev.actor_id : null, ...d, audit_event_id: ev.id };
  }
  // An approval event: what its audit event says (agent, action, decision, status, reasons).
  if (type?.startsWith("approval.")) return { pending_approval_id: ev.resource_id, ...d, audit_event_id: ev.id };
  let status: string | null;
  switch (type) {
    case "agent.transaction.signed":
      status = str(d.status) ?? (ev.action === SIGNED_BY_MODE.sign.action ? SIGNED_BY_MODE.sign.status : SIGNED_BY_MODE.submit.status);
      break;
    case "agent.transaction.broadcast":
      status = "broadcast";
      break;
    case "agent.transaction.failed":
      status = "failed";
      break;
    default:
      status = tx?.status ?? str(d.status);
  }
  const data: Record<string, unknown> = {
    transaction_id: ev.resource_id,
    agent_id: tx?.agent_id ?? (ev.actor_type === "agent" ? ev.actor_id : null),
    chain: str(d.chain) ?? tx?.chain ?? null,
    chain_id: num(d.chain_id) ?? num(tx?.chain_id),
    from: str(d.from) ?? tx?.from_address ?? null,
    to: str(d.to) ?? tx?.to_address ?? null,
    value_wei: str(d.value_wei) ?? tx?.value_wei ?? null,
    nonce: num(d.nonce) ?? num(tx?.nonce),
    tx_hash: str(d.tx_hash) ?? tx?.tx_hash ?? null,
    status,
    audit_event_id: ev.id,
  };
  const copy = (...keys: string[]) => {
    for (const k of keys) if (d[k] !== undefined && d[k] !== null) data[k] = d[k];
  };
  if (type === "agent.transaction.signed") {
    data.mode = ev.action === "transaction.sign" ? "sign" : "submit";
    copy("reason"); // e.g. the tracker's "gap_fill"
  }
  if (type === "agent.transaction.broadcast") copy("rebroadcast", "attempt_kind");
  if (type === "signing_key.nonce_gap_alert") copy("gaps", "fills_today", "limit", "reason");
  if (type === "agent.transaction.failed") {
    data.error_message = str(d.reason) ?? str(d.error_message) ?? tx?.error_message ?? null;
    copy("chain_status"); // `chain_reset`: the chain went back and no longer holds it (tracker/chain-reset.ts)
  }
  if (type === "agent.transaction.confirmed") {
    // Final on chain: chain_status "confirmed", or "reverted" when the receipt says so.
    data.chain_status = str(d.chain_status) ?? "confirmed";
    data.block_number = num(d.block_number) ?? num(tx?.block_number);
    data.block_hash = str(d.block_hash) ?? tx?.block_hash ?? null;
    data.confirmations = num(d.confirmations) ?? tx?.confirmations ?? null;
    copy("receipt_status", "gas_used", "attempt_kind");
  }
  return data;
}

/** One endpoint, one transaction. Returns deliveries inserted, or undefined if another replica holds it. */
async function fanoutEndpoint(tx: PoolClient, endpointId: string, batch: number): Promise<{ inserted: number; more: boolean } | undefined> {
  const locked = await tx.query<EndpointRow>(
    "SELECT id, events, cursor_chain_seq FROM webhook_endpoints WHERE id = $1 AND is_active FOR UPDATE SKIP LOCKED",
    [endpointId],
  );
  const ep = locked.rows[0];
  if (!ep) return undefined;
  const actions = actionsFor(ep.events);
  // One statement, one snapshot: the head and the events below it are seen together.
  const { rows } = await tx.query<EventRow & { head: string }>(
    `WITH head AS (SELECT coalesce(max(chain_seq), 0) AS h FROM audit_events)
     SELECT a.id, a.chain_seq, a.action, a.actor_type, a.actor_id, a.resource_id, a.details, a.created_at, head.h AS head
       FROM head LEFT JOIN LATERAL (
         SELECT * FROM audit_events
          WHERE chain_seq > $1 AND chain_seq <= head.h AND action = ANY($2::text[])
          ORDER BY chain_seq LIMIT $3
       ) a ON true`,
    [ep.cursor_chain_seq, actions, batch],
  );
  const head = rows[0]?.head ?? ep.cursor_chain_seq;
  const events = rows.filter((r) => r.id !== null);
  const more = events.length === batch;
  // A full batch: continue from the last event read. Otherwise everything up to the head is done.
  const cursor = more ? events[events.length - 1].chain_seq : head;

  let inserted = 0;
  if (events.length > 0) {
    const txIds = [...new Set(events.map((e) => e.resource_id).filter((id): id is string => !!id && UUID.test(id)))];
    const txRows = txIds.length
      ? (
          await tx.query<TxSnapshot>(
            `SELECT id, agent_id, chain, chain_id, from_address, to_address, value_wei, nonce, tx_hash, status, chain_status,
                  block_number, block_hash, confirmations, error_message, signed_at
             FROM transactions WHERE id = ANY($1::uuid[])`,
            [txIds],
          )
        ).rows
      : [];
    const byId = new Map(txRows.map((t) => [t.id, t]));
    const ids: string[] = [];
    const eventIds: string[] = [];
    const types: string[] = [];
    const payloads: string[] = [];
    for (const ev of events) {
      const id = randomUUID();
      const type = ACTION_TO_EVENT[ev.action];
      ids.push(id);
      eventIds.push(ev.id);
      types.push(type);
      payloads.push(
        JSON.stringify({
          id,
          type,
          created_at: ev.created_at.toISOString(),
          data: eventData(ev, ev.resource_id ? byId.get(ev.resource_id) : undefined),
        }),
      );
    }
    const r = await tx.query(
      `INSERT INTO webhook_deliveries (id, endpoint_id, audit_event_id, event_type, payload)
       SELECT u.id, $1, u.event_id, u.type, u.payload
         FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::jsonb[]) AS u(id, event_id, type, payload)
       ON CONFLICT (endpoint_id, audit_event_id) DO NOTHING`,
      [ep.id, ids, eventIds, types, payloads],
    );
    inserted = r.rowCount ?? 0;
  }
  if (BigInt(cursor) > BigInt(ep.cursor_chain_seq)) {
    await tx.query("UPDATE webhook_endpoints SET cursor_chain_seq = $2 WHERE id = $1", [ep.id, cursor]);
  }
  return { inserted, more };
}

/** Fans sealed audit events out to every active endpoint's outbox. */
export async function fanoutWebhookEvents(pool: Pool, opts: { batch?: number } = {}): Promise<FanoutResult> {
  const batch = opts.batch ?? 500;
  // Only endpoints behind the head of the chain: an idle pass takes no row lock at all.
  const { rows } = await pool.query<{ id: string }>(
    `SELECT id FROM webhook_endpoints
      WHERE is_active AND cursor_chain_seq < (SELECT coalesce(max(chain_seq), 0) FROM audit_events)
      ORDER BY created_at, id`,
  );
  let deliveries = 0;
  for (const { id } of rows) {
    for (;;) {
      const r = await withTransaction(pool, (tx) => fanoutEndpoint(tx, id, batch));
      if (!r) break; // deactivated meanwhile, or another replica is on it
      deliveries += r.inserted;
      if (!r.more) break;
    }
  }
  return { endpoints: rows.length, deliveries };
}
