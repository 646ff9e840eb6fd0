// Operators' transaction history across agents: a paginated list, one transaction by id, and an
// export as JSON lines or CSV that is streamed page by page (never built in memory).
//
// Pagination is the per-agent list's: keyset on (created_at, id), newest first, microsecond cursor.
import { requireOperator } from "../auth/principal.js";
import type { ChainRegistry } from "../chains/registry.js";
import type { Pool, Queryable } from "../db/pool.js";
import { getTransaction, listTransactions, type TxFilter } from "../db/transactions.js";
import { notFound } from "../errors.js";
import { toTransactionResponse } from "../pipeline/response.js";
import { SignedTxQuery, type TransactionResponse } from "./schemas/transactions.js";
import { TxParams } from "./schemas/operator-transactions.js";
import { EXPORT_PAGE_SIZE, openPagedExport, sendExport, type ExportFormat } from "./listing.js";
import { toFilter, transactionsPage, wantsSignedTx } from "./transactions.js";
import type { App } from "./types.js";
import { UUID } from "../uuid.js";
import { ExportQuery, HistoryQuery } from "./schemas/history.js";

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

/** Opens an export of the transactions `filter` selects (streamed page by page, src/http/listing.ts). */
export function openExport(
  db: Queryable,
  filter: Omit<HistoryFilter, "limit">,
  opts: { format: ExportFormat; includeSignedTx: boolean; pageSize?: number },
): Promise<AsyncGenerator<string>> {
  const { after, ...rest } = filter;
  return openPagedExport((page) => listTransactions(db, { ...rest, ...page }), after, {
    format: opts.format,
    columns: csvColumns(opts.includeSignedTx),
    toRecord: (r) => toTransactionResponse(r, { includeSignedTx: opts.includeSignedTx }) as unknown as Record<string, unknown>,
    pageSize: opts.pageSize,
  });
}

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
      return transactionsPage(rows, req.query.limit, wantsSignedTx(req.query.include_signed_tx));
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
      return sendExport(reply, "transactions", format, lines);
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
