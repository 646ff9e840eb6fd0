// Signatures of messages, typed data and digests (POST /v1/agents/{id}/sign): the row, the token
// amounts it lets someone move (token_spend, for the rolling per-token limits) and its audit event,
// written together by the caller's transaction. Listing pages by (created_at, id), newest first.
import { auditRecordset, auditInsertSql, type AuditEvent } from "./audit.js";
import type { TokenOutflow } from "../pipeline/token-guardrails.js";
import type { Queryable } from "./pool.js";

export interface SignatureRow {
  id: string;
  agent_id: string;
  intent_type: "personal_sign" | "typed_data" | "eip712_digest";
  kind: string;
  chain: string;
  chain_id: number;
  signer_address: string;
  signing_key_path: string;
  digest: string;
  signature: string;
  meaning: Record<string, unknown>;
  valid_until: Date | null;
  created_at?: Date;
}

export async function insertSignature(
  db: Queryable,
  row: SignatureRow,
  opts: { outflows: TokenOutflow[]; audit: Omit<AuditEvent, "details"> },
): Promise<void> {
  const details = {
    intent_type: row.intent_type,
    kind: row.kind,
    chain: row.chain,
    chain_id: row.chain_id,
    from: row.signer_address,
    signing_key_path: row.signing_key_path,
    digest: row.digest,
    valid_until: row.valid_until?.toISOString() ?? null,
    meaning: row.meaning,
  };
  await db.query(
    `WITH sig AS (
       INSERT INTO signatures (id, agent_id, intent_type, kind, chain, chain_id, signer_address, signing_key_path, digest, signature, meaning, valid_until)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ), spend AS (
       INSERT INTO token_spend (agent_id, chain_id, token, amount, tx_id)
       SELECT $2, $6, s.token, s.amount, $1 FROM jsonb_to_recordset($13::jsonb) AS s(token text, amount numeric)
     )
     ${auditInsertSql("$14")}`,
    [
      row.id,
      row.agent_id,
      row.intent_type,
      row.kind,
      row.chain,
      row.chain_id,
      row.signer_address,
      row.signing_key_path,
      row.digest,
      row.signature,
      JSON.stringify(row.meaning),
      row.valid_until,
      JSON.stringify(opts.outflows.map((o) => ({ token: o.token, amount: o.amount.toString() }))),
      auditRecordset([{ ...opts.audit, details }]),
    ],
  );
}

export interface SignatureFilter {
  agentId?: string;
  intentType?: string;
  kind?: string;
  from?: Date;
  to?: Date;
  limit: number;
  after?: { ts: string; id: string };
}

export type ListedSignature = SignatureRow & { created_at: Date; cursor_ts: string };

export async function listSignatures(db: Queryable, f: SignatureFilter): Promise<ListedSignature[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace("$?", `$${params.length}`));
  };
  if (f.agentId) add("agent_id = $?", f.agentId);
  if (f.intentType) add("intent_type = $?", f.intentType);
  if (f.kind) add("kind = $?", f.kind);
  if (f.from) add("created_at >= $?", f.from);
  if (f.to) add("created_at < $?", f.to);
  if (f.after) {
    params.push(f.after.ts, f.after.id);
    where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  params.push(f.limit);
  const { rows } = await db.query<ListedSignature>(
    `SELECT *, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_ts
       FROM signatures ${where.length ? "WHERE " + where.join(" AND ") : ""}
      ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  return rows;
}
