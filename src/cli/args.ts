// Argument parsing for the operator CLI: one table of every option (so global options may appear
// anywhere on the line), and per-command lists of the options each command accepts.
import { parseArgs } from "node:util";
import { GUARDRAIL_FIELDS, type GuardrailFlag } from "../agents/guardrail-fields.js";

/** A usage mistake: printed with the usage text, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** A command that ran and failed (service error, broken chain, mismatch): exit code 1. */
export class CommandFailed extends Error {
  override readonly name = "CommandFailed";
}

/** The fields of the field table that have a CLI flag. */
export const GUARDRAIL_FIELD_FLAGS = GUARDRAIL_FIELDS.filter((f): f is Extract<typeof f, { cli: unknown }> => "cli" in f);

export const OPTIONS = {
  // global
  url: { type: "string" },
  key: { type: "string" },
  format: { type: "string" },
  "database-url": { type: "string" },
  "data-dir": { type: "string" },
  output: { type: "string", short: "o" },
  help: { type: "boolean", short: "h" },
  // agents (and a flag per field of the field table, added below)
  name: { type: "string" },
  active: { type: "string" },
  json: { type: "string" },
  // keys
  path: { type: "string" },
  chain: { type: "string" },
  "agent-id": { type: "string" },
  // tx
  status: { type: "string" },
  "chain-status": { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  limit: { type: "string" },
  cursor: { type: "string" },
  "include-signed-tx": { type: "boolean" },
  db: { type: "boolean" },
  // approvals
  reason: { type: "string" },
  offset: { type: "string" },
  ...(Object.fromEntries(GUARDRAIL_FIELD_FLAGS.map((f) => [f.cli.flag, { type: "string" }])) as Record<GuardrailFlag, { type: "string" }>),
} as const;

export type OptionName = keyof typeof OPTIONS;
export type Values = { [K in OptionName]?: (typeof OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

export const GLOBAL_OPTIONS: OptionName[] = ["url", "key", "format", "database-url", "data-dir", "help"];

export interface Parsed {
  positionals: string[];
  values: Values;
  /** Options present on the command line, by name. */
  given: OptionName[];
}

export function parse(argv: string[]): Parsed {
  let r;
  try {
    r = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const given = [...new Set(r.tokens.filter((t) => t.kind === "option").map((t) => (t as { name: string }).name as OptionName))];
  return { positionals: r.positionals, values: r.values as Values, given };
}

/** Refuses options the command does not take. */
export function allowOnly(p: Parsed, command: string, allowed: OptionName[]): void {
  const ok = new Set<OptionName>([...GLOBAL_OPTIONS, ...allowed]);
  const bad = p.given.filter((n) => !ok.has(n));
  if (bad.length) throw new UsageError(`'${command}' does not take ${bad.map((b) => `--${b}`).join(", ")}`);
}

export function bool(v: string | undefined, name: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === "true" || v === "yes" || v === "1") return true;
  if (v === "false" || v === "no" || v === "0") return false;
  throw new UsageError(`--${name} must be true or false`);
}

export function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,9}$/.test(v)) throw new UsageError(`--${name} must be a whole number`);
  return Number(v);
}

/** Comma-separated list; an empty string is the empty list. */
export function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A nullable value: `none` (or `null`) clears it. */
export function nullable(v: string | undefined): string | null | undefined {
  if (v === undefined) return undefined;
  return v === "none" || v === "null" ? null : v;
}
