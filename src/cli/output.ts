// Output: JSON (default, one document on stdout) or a plain aligned table for list commands.
import { UsageError } from "./args.js";

export type OutputFormat = "json" | "table";

export function outputFormat(v: string | undefined): OutputFormat {
  if (v === undefined || v === "json") return "json";
  if (v === "table") return "table";
  throw new UsageError("--format must be json or table");
}

export function printJson(v: unknown, out: NodeJS.WritableStream = process.stdout): void {
  out.write(JSON.stringify(v, null, 2) + "\n");
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (Array.isArray(v)) return v.join(",");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => cell(r[c]).replace(/\s+/g, " ")));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => v.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join("\n") + "\n";
}

/** A list in the chosen format: the whole response as JSON, or its items as a table. */
export function printList(format: OutputFormat, body: unknown, items: Array<Record<string, unknown>>, columns: string[]): void {
  if (format === "json") printJson(body);
  else process.stdout.write(table(items, columns));
}
