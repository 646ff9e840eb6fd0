// Every field an operator sets on an agent (guardrails, quotas, signing rules, description and scopes),
// each listed once: its column, its wire name and zod rule, how the value maps between the two, its
// default, its CLI flag and what the guardrail checks read of it. The row type, the repository's
// column list, the request schemas, the update mapping and the answer, the CLI flags and help and the
// MCP tool's description are derived from this table (test/api/agent-fields.test.ts walks it).
//
// A new guardrail: an entry here, its column in a migration, its pure check in
// src/pipeline/guardrails.ts reading `policy.<key>`.
import { z } from "zod";
import { formatMajor, parseMajor } from "../units.js";

/** The largest `data` an operator can allow (MAX_DATA_BYTES, per agent `tx_max_data_bytes`): geth's 128 KiB transaction size limit. */
export const MAX_DATA_BYTES_CEILING = 128 * 1024;

/** How a CLI flag's text becomes the request value (parsers: src/cli/args.ts). */
export type CliKind = "text" | "bool" | "list" | "major" | "int";

interface Options<R> {
  /** One line for people and models (CLI help, the MCP tool description). */
  describe: string;
  /** What a new agent gets: the column's default (migrations/). */
  default: string;
  /** A wire value other than the default that reads back as sent (test/api/agent-fields.test.ts sets it). */
  example: unknown;
  /** The flag of `intents agents create|update`; `arg` names its value in the help. */
  cli?: { flag: string; arg: string; kind: CliKind };
  /** Shown to the agent by the MCP tool get_guardrails. */
  mcp?: boolean;
  /** How the guardrail checks read the column (GuardrailPolicy, src/pipeline/guardrails.ts). */
  policy?: { key: string; read: (v: R) => unknown };
}

export interface AgentField<C extends string = string, R = never> extends Options<R> {
  /** The column in `agents`. */
  column: C;
  /** The name in requests and answers. */
  wire: string;
  /** A deprecated request name accepted beside `wire` (the two must agree), and answered beside it. */
  alias?: string;
  /** The value's rule on the wire; requests make every field optional. */
  schema: z.ZodType;
  /** A parsed, non-null request value → the column's value (null clears a nullable column). */
  toRow(v: unknown): R;
  /** The column's value → the answer's members (none, one, or the name and its alias). */
  toWire(v: R): Record<string, unknown>;
  /** The value as a query parameter (jsonb goes as JSON text). */
  param?(v: R): unknown;
}

// Wire rules shared by several fields.
const address = z.string().refine((v) => /^0x[0-9a-fA-F]{40}$/.test(v), "must be a 0x-prefixed 20-byte address");
const addressList = z
  .array(address)
  .max(1000)
  .transform((l) => [...new Set(l.map((a) => a.toLowerCase()))]);
const major = z.string().refine((v) => parseMajor(v) !== undefined, "must be a non-negative decimal string with at most 18 decimals");
const chainList = z
  .array(z.string().min(1).max(64))
  .max(100)
  .transform((l) => [...new Set(l.map((c) => c.toLowerCase()))]);
const dateTime = z.iso.datetime({ offset: true });
const DEAD = "0x000000000000000000000000000000000000dead";
const big = (v: string | null) => (v === null ? null : BigInt(v));

/** Wire value = column value. */
function same<const C extends string, S extends z.ZodType, const O extends Options<z.output<S>>>(
  column: C,
  schema: S,
  o: O,
): AgentField<C, z.output<S>> & O {
  return { column, wire: column, schema, toRow: (v) => v as z.output<S>, toWire: (v) => ({ [column]: v }), ...o };
}

/** A field of its own mapping. */
function custom<const C extends string, R, const O extends Options<R>>(
  f: Pick<AgentField<C, R>, "column" | "wire" | "schema" | "toRow" | "toWire">,
  o: O,
): AgentField<C, R> & O {
  return { ...f, ...o };
}

/** An amount in the native unit on the wire ("0.5"), wei in a numeric column; null: no limit. */
function weiLimit<const C extends string, const O extends Options<string | null>>(
  column: C,
  wire: string,
  o: O & { alias?: string; /** An unset limit is left out of the answer instead of sent as null. */ omitWhenNone?: true },
): AgentField<C, string | null> & O {
  const { alias, omitWhenNone } = o;
  return {
    column,
    wire,
    schema: major.nullable(),
    toRow: (v) => parseMajor(v as string)!.toString(),
    toWire: (v) => {
      if (v === null) return omitWhenNone ? {} : { [wire]: null };
      const m = formatMajor(BigInt(v));
      return alias ? { [wire]: m, [alias]: m } : { [wire]: m };
    },
    ...o,
  };
}

/** An ISO 8601 time on the wire, timestamptz in the column; null: never. */
function instant<const C extends string, const O extends Options<Date | null>>(
  column: C,
  o: O & { omitWhenNone?: true },
): AgentField<C, Date | null> & O {
  return {
    column,
    wire: column,
    schema: dateTime.nullable(),
    toRow: (v) => new Date(v as string),
    toWire: (v) => (v === null ? (o.omitWhenNone ? {} : { [column]: null }) : { [column]: v.toISOString() }),
    ...o,
  };
}

export const GUARDRAIL_FIELDS = [
  custom(
    {
      column: "description",
      wire: "description",
      schema: z.string().max(2000),
      toRow: (v) => v as string,
      // A string always: the SDKs type it as required.
      toWire: (v: string | null) => ({ description: v ?? "" }),
    },
    {
      describe: "free text about the agent",
      default: "none",
      example: "an example agent",
      cli: { flag: "description", arg: "TEXT", kind: "text" },
    },
  ),
  same("scopes", z.array(z.string().max(100)).max(100), { describe: "free-form scope names", default: "none", example: ["read", "write"] }),
  same("intents_api_enabled", z.boolean(), {
    describe: "may use the Intents API at all",
    default: "false",
    example: true,
    cli: { flag: "intents-enabled", arg: "true|false", kind: "bool" },
    mcp: true,
  }),
  same("tx_to_allowlist", addressList, {
    describe: "recipients (and token recipients and spenders) the agent may send to; empty: any",
    default: "empty",
    example: [DEAD],
    cli: { flag: "to-allowlist", arg: "0x…,0x…", kind: "list" },
    mcp: true,
    policy: { key: "toAllowlist", read: (v: string[]) => v.map((a) => a.toLowerCase()) },
  }),
  weiLimit("tx_max_value_wei", "tx_max_value", {
    alias: "tx_max_value_eth",
    omitWhenNone: true,
    describe: "value of one transaction, native units; none: no limit",
    default: "none",
    example: "0.5",
    cli: { flag: "max-value", arg: "ETH|none", kind: "major" },
    mcp: true,
    policy: { key: "maxValueWei", read: big },
  }),
  weiLimit("tx_daily_limit_wei", "tx_daily_limit", {
    alias: "tx_daily_limit_eth",
    omitWhenNone: true,
    describe: "value signed in a rolling 24 h, native units; none: no limit",
    default: "none",
    example: "2",
    cli: { flag: "daily-limit", arg: "ETH|none", kind: "major" },
    mcp: true,
    policy: { key: "dailyLimitWei", read: big },
  }),
  same("tx_max_per_day", z.number().int().min(0).max(1_000_000).nullable(), {
    describe: "transactions signed since 00:00 UTC; none: no limit",
    default: "none",
    example: 10,
    cli: { flag: "max-per-day", arg: "N|none", kind: "int" },
    mcp: true,
    policy: { key: "maxPerDay", read: (v: number | null) => v },
  }),
  same("tx_allowed_chains", chainList, {
    describe: "chain names, aliases or ids the agent may use; empty: any enabled chain",
    default: "empty",
    example: ["local"],
    cli: { flag: "allowed-chains", arg: "a,b", kind: "list" },
    mcp: true,
    policy: { key: "allowedChains", read: (v: string[]) => v },
  }),
  same("tx_token_allowlist", addressList, {
    describe: "tokens the agent may move; empty: any",
    default: "empty",
    example: [DEAD],
    cli: { flag: "token-allowlist", arg: "0x…,0x…", kind: "list" },
    mcp: true,
  }),
  same("token_ttl_seconds", z.number().int().min(60).max(86_400).nullable(), {
    describe: "lifetime of the agent's access tokens, seconds; none: the server's default",
    default: "none",
    example: 600,
    cli: { flag: "token-ttl", arg: "S|none", kind: "int" },
  }),
  instant("api_key_expires_at", {
    describe: "when the API key stops working; null: never",
    default: "never",
    example: "2031-01-01T00:00:00.000Z",
  }),
  instant("expires_at", {
    omitWhenNone: true,
    describe: "when the agent stops working; null: never",
    default: "never",
    example: "2032-01-01T00:00:00.000Z",
  }),
  same("simulate_required", z.boolean(), {
    describe: "every transaction is simulated before it is signed",
    default: "false",
    example: true,
    cli: { flag: "simulate-required", arg: "true|false", kind: "bool" },
    mcp: true,
  }),
  // null: the default (deny when recipient or token rules exist, else allow).
  same("tx_unknown_calldata", z.enum(["allow", "deny", "simulate"]).nullable(), {
    describe: "calldata nobody can decode: allow, deny or simulate; null: deny when recipient or token rules exist, else allow",
    default: "null",
    example: "simulate",
    mcp: true,
  }),
  {
    ...same(
      "tx_token_limits",
      z
        .record(
          z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be a token address"),
          z.strictObject({ max_per_tx: major.optional(), daily_limit: major.optional(), approval_cap: major.optional() }),
        )
        .refine((r) => Object.keys(r).length <= 200, "at most 200 tokens")
        .transform((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k.toLowerCase(), v]))),
      {
        describe: "per token (address → max_per_tx, daily_limit, approval_cap, in token units)",
        default: "none",
        example: { [DEAD]: { max_per_tx: "1", daily_limit: "5" } },
        mcp: true,
      },
    ),
    param: (v: Record<string, unknown>) => JSON.stringify(v),
  },
  same("tx_unlimited_approval_allowlist", addressList, {
    describe: "spenders that may get an unlimited token approval",
    default: "empty",
    example: [DEAD],
    mcp: true,
  }),
  // Quotas (src/quotas.ts); null: the server's default.
  same("requests_per_minute", z.number().int().min(0).max(10_000_000).nullable(), {
    describe: "requests a minute; null: the server's default",
    default: "null",
    example: 100,
    mcp: true,
  }),
  same("tx_max_data_bytes", z.number().int().min(0).max(MAX_DATA_BYTES_CEILING).nullable(), {
    describe: "calldata size of one transaction, bytes; null: the server's default",
    default: "null",
    example: 1024,
    mcp: true,
  }),
  // Fee limits (worst-case fee = gas_limit × max fee per gas), in the native unit; null: no limit.
  weiLimit("tx_max_fee_wei", "tx_max_fee", {
    describe: "worst-case fee of one transaction (gas_limit × max fee per gas), native units; none: no limit",
    default: "0.01",
    example: "0.02",
    cli: { flag: "max-fee", arg: "ETH|none", kind: "major" },
    mcp: true,
    policy: { key: "maxFeeWei", read: big },
  }),
  weiLimit("tx_daily_fee_budget_wei", "tx_daily_fee_budget", {
    describe: "worst-case fees signed in a rolling 24 h, native units; none: no limit",
    default: "0.1",
    example: "0.5",
    cli: { flag: "daily-fee-budget", arg: "ETH|none", kind: "major" },
    mcp: true,
    policy: { key: "dailyFeeBudgetWei", read: big },
  }),
  custom(
    {
      column: "tx_max_gas_limit",
      wire: "tx_max_gas_limit",
      schema: z.number().int().min(21_000).max(1_000_000_000).nullable(),
      toRow: (v) => String(v),
      // A bigint column: pg hands it over as a string.
      toWire: (v: string | null) => ({ tx_max_gas_limit: v === null ? null : Number(v) }),
    },
    {
      describe: "highest gas_limit an agent may set (else: the estimate + 50 %); none: the block's",
      default: "none",
      example: 500_000,
      cli: { flag: "max-gas-limit", arg: "N|none", kind: "int" },
      mcp: true,
      policy: { key: "maxGasLimit", read: big },
    },
  ),
  /** false: the agent may not sign with the chain's shared keys/{chain}-signer. */
  same("shared_signer", z.boolean(), { describe: "may sign with the chain's shared keys/{chain}-signer", default: "true", example: false }),
  // Signing intents (POST /v1/agents/{id}/sign).
  same("typed_data_unknown", z.enum(["allow", "deny"]).nullable(), {
    describe: "typed data of no known kind: allow or deny; null: the default",
    default: "null",
    example: "deny",
  }),
  same(
    "siwe_domain_allowlist",
    z
      .array(
        z
          .string()
          .min(1)
          .max(253)
          .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, "must be a host name, optionally with :port"),
      )
      .max(1000)
      .transform((l) => [...new Set(l.map((d) => d.toLowerCase()))]),
    { describe: "domains a Sign-In with Ethereum message may name", default: "empty", example: ["example.com"] },
  ),
  same("verifying_contract_allowlist", addressList, {
    describe: "typed data verifying contracts allowed",
    default: "empty",
    example: [DEAD],
  }),
  same("raw_signing_enabled", z.boolean(), {
    describe: "may sign a bare EIP-712 digest",
    default: "false",
    example: true,
    mcp: true,
  }),
  same("eip7702_delegate_allowlist", addressList, {
    describe: "EIP-7702 delegates the agent may authorize",
    default: "empty",
    example: [DEAD],
  }),
  same("eip7702_allow_chain_id_zero", z.boolean(), {
    describe: "may sign EIP-7702 authorizations valid on every chain",
    default: "false",
    example: true,
  }),
  same("sign_max_validity_seconds", z.number().int().min(60).max(31_536_000), {
    describe: "longest validity of a signed permit or authorization, seconds",
    default: "3600",
    example: 600,
    mcp: true,
  }),
] as const;

type Field = (typeof GUARDRAIL_FIELDS)[number];

/** The columns the table describes, with their row types. */
export type GuardrailColumns = { -readonly [F in Field as F["column"]]: Parameters<F["toWire"]>[0] };
export type GuardrailColumn = Field["column"];
/** The guardrail checks' view of the columns that have a `policy`. */
export type FieldPolicy = {
  [F in Field as F extends { policy: { key: infer K extends string } } ? K : never]: F extends { policy: { read: (v: never) => infer P } }
    ? P
    : never;
};
export type GuardrailFlag = Extract<Field, { cli: unknown }>["cli"]["flag"];

const fields = GUARDRAIL_FIELDS as readonly AgentField<string, unknown>[];

/** The request members of every field (a new schema object each: zod would share a reused one). */
export function guardrailRequestShape(): Record<string, z.ZodOptional<z.ZodType>> {
  return Object.fromEntries(
    fields.flatMap((f) => [[f.wire, f.schema.optional()] as const, ...(f.alias ? [[f.alias, f.schema.optional()] as const] : [])]),
  );
}

/** A parsed request's fields → columns (undefined: leave alone; null: clear), or the alias that disagrees. */
export function guardrailColumns(
  body: Record<string, unknown>,
): { ok: true; columns: Partial<GuardrailColumns> } | { ok: false; field: AgentField<string, unknown> } {
  const columns: Record<string, unknown> = {};
  for (const f of fields) {
    const canonical = body[f.wire];
    const legacy = f.alias !== undefined ? body[f.alias] : undefined;
    if (canonical !== undefined && legacy !== undefined && canonical !== legacy) return { ok: false, field: f };
    const v = canonical !== undefined ? canonical : legacy;
    if (v !== undefined) columns[f.column] = v === null ? null : f.toRow(v);
  }
  return { ok: true, columns: columns as Partial<GuardrailColumns> };
}

/** The answer's members for the fields, in table order. */
export function guardrailAnswer(row: GuardrailColumns): Record<string, unknown> {
  return Object.assign({}, ...fields.map((f) => f.toWire((row as Record<string, unknown>)[f.column])));
}

/** The guardrail checks' view of a row. */
export function fieldPolicy(row: GuardrailColumns): FieldPolicy {
  const p: Record<string, unknown> = {};
  for (const f of fields) if (f.policy) p[f.policy.key] = f.policy.read((row as Record<string, unknown>)[f.column]);
  return p as FieldPolicy;
}

/** The columns a repository writes, and each value as a query parameter. */
export const GUARDRAIL_COLUMNS: readonly GuardrailColumn[] = fields.map((f) => f.column as GuardrailColumn);
export function columnParam(column: string, v: unknown): unknown {
  const f = fields.find((x) => x.column === column);
  return f?.param ? f.param(v) : v;
}
