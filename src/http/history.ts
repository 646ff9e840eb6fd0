// Operators' transaction history across agents: a paginated list, one transaction by id, and an
// export as JSON lines or CSV that is streamed page by page (never built in memory).
//
// Pagination is the per-agent list's: keyset on (created_at, id), newest first, microsecond cursor.
import { Readable } from "node:stream";
import { requireOperator } from "../auth/principal.js";
import type { ChainRegistry } from "../chains/registry.js";
import type { Pool, Queryable } from "../db/pool.js";
import { getTransaction, listTransactions, type TxFilter, type TxRow } from "../db/transactions.js";
import { notFound } from "../errors.js";
import { toTransactionResponse } from "../pipeline/response.js";
import { SignedTxQuery, type TransactionResponse } from "./schemas/transactions.js";
import { TxParams } from "./schemas/operator-transactions.js";
import { nextCursor, toFilter, wantsSignedTx } from "./transactions.js";
import type { App } from "./types.js";
import { UUID } from "../uuid.js";
import { ExportQuery, HistoryQuery } from "./schemas/history.js";

/** Rows per database round trip while exporting: bounds the memory an export holds at once. */
export const EXPORT_PAGE_SIZE = 500;

export type HistoryFilter = TxFilter;

/** The query's filters, with the chain resolved (unknown chain → 400) and the cursor decoded. */
export function toHistoryFilter(
  chains: ChainRegistry,
  q: Omit<HistoryQuery, "limit" | "cursor"> & { limit?: number; cursor?: string },
): HistoryFilter {
  return toFilter(chains, { ...q, limit: q.limit ?? EXPORT_PAGE_SIZE }, q.agent_id?.toLowerCase());
}

// ---- export formats ----

/** CSV columns, in order: the response fields; `signed_tx` is appended only when asked for. */
export const CSV_COLUMNS = [
  "id",
  "agent_id",
  "chain",
  "chain_id",
  "from",
  "to",
  "value",
  "value_wei",
  "nonce",
  "gas_limit",
  "gas_price",
  "max_fee_per_gas",
  "max_priority_fee_per_gas",
  "status",
  "tx_hash",
  "error_message",
  "created_at",
  "signed_at",
  "simulation_id",
  "simulation_status",
  "chain_status",
  "block_number",
  "confirmations",
  "replaced_by",
  "signing_key_path",
] as const satisfies ReadonlyArray<keyof TransactionResponse>;

export function csvColumns(includeSignedTx: boolean): string[] {
  return includeSignedTx ? [...CSV_COLUMNS, "signed_tx"] : [...CSV_COLUMNS];
}

/** RFC 4180: a field holding a comma, quote, CR or LF is quoted, with quotes doubled. */
export function csvField(v: unknown): string {
  if (v === undefined || v === null) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRecord(fields: unknown[]): string {
  return fields.map(csvField).join(",") + "\r\n";
}

export type ExportFormat = "jsonl" | "csv";

function formatRows(rows: TxRow[], format: ExportFormat, includeSignedTx: boolean, columns: string[]): string {
  let out = "";
  for (const r of rows) {
    const t = toTransactionResponse(r, { includeSignedTx }) as unknown as Record<string, unknown>;
    out += format === "jsonl" ? JSON.stringify(t) + "\n" : csvRecord(columns.map((c) => t[c]));
  }
  return out;
}

/**
 * Opens an export: reads the first page now (so a database error still becomes a proper error
 * response), then yields the formatted text one page at a time as the consumer pulls it. At most one
 * page of rows is held at once; backpressure from the reader pauses the database reads.
 */
export async function openExport(
  db: Queryable,
  filter: Omit<HistoryFilter, "limit">,
  opts: { format: ExportFormat; includeSignedTx: boolean; pageSize?: number },
): Promise<AsyncGenerator<string>> {
  const pageSize = opts.pageSize ?? EXPORT_PAGE_SIZE;
  const columns = csvColumns(opts.includeSignedTx);
  const first = await listTransactions(db, { ...filter, limit: pageSize });
  return (async function* () {
    if (opts.format === "csv") yield csvRecord(columns);
    let rows = first;
    for (;;) {
      if (rows.length > 0) yield formatRows(rows, opts.format, opts.includeSignedTx, columns);
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1];
      rows = []; // let the page go before the next one is read
      rows = await listTransactions(db, { ...filter, limit: pageSize, after: { ts: last.cursor_ts, id: last.id } });
    }
  })();
}

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  jsonl: "application/x-ndjson; charset=utf-8",
  csv: "text/csv; charset=utf-8; header=present",
};

export async function historyRoutes(app: App, deps: { pool: Pool; chains: ChainRegistry }): Promise<void> {
  const { pool, chains } = deps;

  app.get(
    "/v1/transactions",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Transactions"], summary: "Every agent's transactions, newest first (operators)", querystring: HistoryQuery },
    },
    async (req) => {
      requireOperator(req);
      const rows = await listTransactions(pool, toHistoryFilter(chains, req.query));
      const include = wantsSignedTx(req.query.include_signed_tx);
      return {
        transactions: rows.map((r) => toTransactionResponse(r, { includeSignedTx: include })),
        next_cursor: nextCursor(rows, req.query.limit),
      };
    },
  );

  app.get(
    "/v1/transactions/export",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Transactions"],
        summary: "Export every agent's transactions as JSON lines or CSV, streamed (operators)",
        querystring: ExportQuery,
      },
    },
    async (req, reply) => {
      requireOperator(req);
      const { format } = req.query;
      const { limit: _limit, ...filter } = toHistoryFilter(chains, req.query);
      const lines = await openExport(pool, filter, { format, includeSignedTx: wantsSignedTx(req.query.include_signed_tx) });
      const stamp = new Date()
        .toISOString()
        .replace(/[-:]/g, "")
        .replace(/\.\d+Z$/, "Z");
      return reply
        .header("content-type", EXPORT_CONTENT_TYPES[format])
        .header("content-disposition", `attachment; filename="transactions-${stamp}.${format}"`)
        .header("cache-control", "no-store")
        .send(Readable.from(lines, { objectMode: false }));
    },
  );

  app.get(
    "/v1/transactions/:tx_id",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Transactions"],
        summary: "Get any agent's transaction by id (operators)",
        params: TxParams,
        querystring: SignedTxQuery,
      },
    },
    async (req) => {
      requireOperator(req);
      if (!UUID.test(req.params.tx_id)) throw notFound("Transaction not found.");
      const row = await getTransaction(pool, req.params.tx_id.toLowerCase());
      if (!row) throw notFound("Transaction not found.");
      return toTransactionResponse(row, { includeSignedTx: wantsSignedTx(req.query.include_signed_tx) });
    },
  );
}
