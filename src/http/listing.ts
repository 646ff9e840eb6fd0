// Lists and exports of keyset-paginated rows (transactions, signatures). Lists are newest first on
// (created_at, id) with an opaque cursor holding the last row's microsecond timestamp and id; exports are
// JSON lines or CSV, streamed page by page (never built in memory).
import { Readable } from "node:stream";
import type { FastifyReply } from "fastify";
import { badRequest } from "../errors.js";
import { UUID } from "../uuid.js";

/** A position in the (created_at, id) order; `ts` is UTC ISO 8601 to the microsecond (a JS Date holds
 * only milliseconds, and rows created within one millisecond would be skipped between pages). */
export interface Cursor {
  ts: string;
  id: string;
}

/** A listed row: its id and its created_at as the cursor's timestamp. */
export interface KeyedRow {
  id: string;
  cursor_ts: string;
}

const CURSOR_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

export function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.ts}|${c.id}`).toString("base64url");
}

export function decodeCursor(c: string): Cursor {
  const [ts, id] = Buffer.from(c, "base64url").toString("utf8").split("|");
  if (!ts || !id || !CURSOR_TS.test(ts) || !UUID.test(id) || Number.isNaN(new Date(ts).getTime())) {
    throw badRequest("Invalid cursor.", [{ field: "cursor", message: "is not a cursor returned by this API" }]);
  }
  return { ts, id };
}

const cursorAfter = (r: KeyedRow): Cursor => ({ ts: r.cursor_ts, id: r.id });

/** The cursor for the page after `rows`, or null when this page was the last. */
export function nextCursor(rows: KeyedRow[], limit: number): string | null {
  const last = rows[rows.length - 1];
  return rows.length === limit && last ? encodeCursor(cursorAfter(last)) : null;
}

/** One page of a list answer: `{ [key]: rows as responses, next_cursor }`. */
export function listPage<R extends KeyedRow, T, K extends string>(
  key: K,
  rows: R[],
  limit: number,
  toResponse: (r: R) => T,
): { [k in K]: T[] } & { next_cursor: string | null } {
  return { [key]: rows.map(toResponse), next_cursor: nextCursor(rows, limit) } as { [k in K]: T[] } & { next_cursor: string | null };
}

// ---- exports ----

/** Rows per database round trip while exporting: bounds the memory an export holds at once. */
export const EXPORT_PAGE_SIZE = 500;

export type ExportFormat = "jsonl" | "csv";

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  jsonl: "application/x-ndjson; charset=utf-8",
  csv: "text/csv; charset=utf-8; header=present",
};

/** RFC 4180: a field holding a comma, quote, CR or LF is quoted, with quotes doubled. */
export function csvField(v: unknown): string {
  if (v === undefined || v === null) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRecord(fields: unknown[]): string {
  return fields.map(csvField).join(",") + "\r\n";
}

export interface ExportShape<R> {
  format: ExportFormat;
  /** CSV columns, in order (the header line). */
  columns: readonly string[];
  /** A row as its response object: a JSON line, or the source of the CSV fields. */
  toRecord: (r: R) => Record<string, unknown>;
  /** A CSV field of a record (default: the value as it is). */
  csvValue?: (record: Record<string, unknown>, column: string) => unknown;
  pageSize?: number;
}

/**
 * Opens an export of the rows `read` returns page by page from `after` on: reads the first page now
 * (so a database error still becomes a proper error response), then yields the formatted text one
 * page at a time as the consumer pulls it. At most one page of rows is held at once; backpressure from
 * the reader pauses the database reads.
 */
export async function openPagedExport<R extends KeyedRow>(
  read: (page: { limit: number; after?: Cursor }) => Promise<R[]>,
  after: Cursor | undefined,
  shape: ExportShape<R>,
): Promise<AsyncGenerator<string>> {
  const pageSize = shape.pageSize ?? EXPORT_PAGE_SIZE;
  const value = shape.csvValue ?? ((record, column) => record[column]);
  const format = (rows: R[]): string => {
    let out = "";
    for (const r of rows) {
      const record = shape.toRecord(r);
      out += shape.format === "jsonl" ? JSON.stringify(record) + "\n" : csvRecord(shape.columns.map((c) => value(record, c)));
    }
    return out;
  };
  const first = await read({ limit: pageSize, after });
  return (async function* () {
    if (shape.format === "csv") yield csvRecord([...shape.columns]);
    let rows = first;
    for (;;) {
      if (rows.length > 0) yield format(rows);
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1];
      rows = []; // let the page go before the next one is read
      rows = await read({ limit: pageSize, after: cursorAfter(last) });
    }
  })();
}

/** Sends an export as a download named `<name>-<UTC time>.<format>`, never cached. */
export function sendExport(reply: FastifyReply, name: string, format: ExportFormat, lines: AsyncIterable<string>) {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return reply
    .header("content-type", EXPORT_CONTENT_TYPES[format])
    .header("content-disposition", `attachment; filename="${name}-${stamp}.${format}"`)
    .header("cache-control", "no-store")
    .send(Readable.from(lines, { objectMode: false }));
}
