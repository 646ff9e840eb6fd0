// The operator CLI's commands. API commands talk to a running service with an operator key; database
// commands (audit verify, verify-tx, tx export --db, init) work with the service down.
import fs from "node:fs";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ApiClient, query } from "./api.js";
import {
  allowOnly,
  bool,
  GUARDRAIL_FIELD_FLAGS,
  CommandFailed,
  int,
  list,
  nullable,
  parse,
  UsageError,
  type OptionName,
  type Parsed,
  type Values,
} from "./args.js";
import type { CliKind } from "../agents/guardrail-fields.js";
import type { CliDatabase } from "./db.js";
import { outputFormat, printJson, printList } from "./output.js";
import { UUID } from "../uuid.js";

// The service's modules (viem, pg, the whole context) load only in the commands that use them, so
// the API commands start quickly.
const lazy = {
  db: () => import("./db.js"),
  history: () => import("../http/history.js"),
};

export interface CliEnv {
  env: NodeJS.ProcessEnv;
  stderr: (line: string) => void;
}

interface Run {
  p: Parsed;
  v: Values;
  /** Positionals after the command words. */
  args: string[];
  env: CliEnv;
  api(): ApiClient;
  db(): Promise<CliDatabase>;
}

export interface Command {
  usage: string;
  summary: string;
  options: OptionName[];
  /** Number of positional arguments after the command words. */
  args?: number;
  run(r: Run): Promise<number | void>;
}

function uuidArg(v: string, what: string): string {
  if (!UUID.test(v)) throw new UsageError(`${what} must be a uuid`);
  return v;
}

const AGENT_FIELDS: OptionName[] = [...GUARDRAIL_FIELD_FLAGS.map((f) => f.cli.flag), "json"];
const TX_FILTERS: OptionName[] = ["agent-id", "status", "chain", "chain-status", "from", "to", "include-signed-tx"];

/** The agent request body from the flags; --json '{…}' gives any field, flags override it. */
export function agentBody(v: Values): Record<string, unknown> {
  let b: Record<string, unknown> = {};
  if (v.json !== undefined) {
    try {
      b = JSON.parse(v.json);
    } catch {
      throw new UsageError("--json must be a JSON object");
    }
    if (!b || typeof b !== "object" || Array.isArray(b)) throw new UsageError("--json must be a JSON object");
  }
  const set = (k: string, x: unknown) => {
    if (x !== undefined) b[k] = x;
  };
  set("name", v.name);
  set("is_active", bool(v.active, "active"));
  for (const { wire, cli } of GUARDRAIL_FIELD_FLAGS) set(wire, flagValue(cli.kind, v[cli.flag], cli.flag));
  return b;
}

/** A field's flag text → its request value; `none` (or `null`) clears a limit. */
function flagValue(kind: CliKind, text: string | undefined, flag: string): unknown {
  switch (kind) {
    case "text":
      return text;
    case "bool":
      return bool(text, flag);
    case "list":
      return list(text);
    case "major":
      return nullable(text);
    case "int": {
      const n = nullable(text);
      return n === null ? null : int(n, flag);
    }
  }
}

/** `[--max-value ETH|none] …`: the field flags for a usage line. */
const fieldFlagsUsage = GUARDRAIL_FIELD_FLAGS.map((f) => `[--${f.cli.flag} ${f.cli.arg}]`).join(" ");

function txFilters(v: Values) {
  return {
    agent_id: v["agent-id"],
    status: v.status,
    chain: v.chain,
    chain_status: v["chain-status"],
    from: v.from,
    to: v.to,
    include_signed_tx: v["include-signed-tx"] ? "true" : undefined,
  };
}

/** Writes a stream to --output (a new file, removed again if the stream fails) or stdout, without ending stdout. */
async function writeOut(src: Readable, output: string | undefined): Promise<void> {
  if (!output) return pipeline(src, process.stdout as unknown as Writable, { end: false });
  try {
    await pipeline(src, fs.createWriteStream(output, { flags: "wx" }));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") fs.rmSync(output, { force: true });
    throw new CommandFailed(`export failed, nothing written to ${output}: ${(err as Error).message}`);
  }
}

async function withDb<T>(r: Run, fn: (db: CliDatabase) => Promise<T>): Promise<T> {
  const db = await r.db();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

const AGENT_COLUMNS = [
  "id",
  "name",
  "is_active",
  "intents_api_enabled",
  "tx_max_value",
  "tx_daily_limit",
  "tx_max_per_day",
  "tx_allowed_chains",
];
const TX_COLUMNS = ["id", "agent_id", "chain", "status", "chain_status", "value", "to", "nonce", "created_at"];

export const COMMANDS: Record<string, Command> = {
  "agents create": {
    usage: "agents create --name NAME [--intents-enabled true] [guardrail flags] [--json '{…}']",
    summary: "create an agent; prints the agent and its api_key (shown once)",
    options: ["name", ...AGENT_FIELDS],
    async run(r) {
      const body = agentBody(r.v);
      if (typeof body.name !== "string") throw new UsageError("--name is required");
      printJson(await r.api().json("POST", "/v1/agents", body));
    },
  },
  "agents list": {
    usage: "agents list [--format table]",
    summary: "list agents with their guardrails and today's spend",
    options: [],
    async run(r) {
      const body = await r.api().json<{ agents: Array<Record<string, unknown>> }>("GET", "/v1/agents");
      printList(outputFormat(r.v.format), body, body.agents, AGENT_COLUMNS);
    },
  },
  "agents update": {
    usage: `agents update AGENT_ID [--name N] [--active true|false] ${fieldFlagsUsage} [--json '{…}']`,
    summary: "change an agent's guardrails or settings (none clears a limit; an empty list allows any)",
    options: ["name", "active", ...AGENT_FIELDS],
    args: 1,
    async run(r) {
      const id = uuidArg(r.args[0], "AGENT_ID");
      const body = agentBody(r.v);
      if (Object.keys(body).length === 0) throw new UsageError("nothing to update: give at least one field");
      printJson(await r.api().json("PATCH", `/v1/agents/${id}`, body));
    },
  },
  "agents rotate-key": {
    usage: "agents rotate-key AGENT_ID",
    summary: "replace the agent's API key and revoke its tokens; prints the new key (shown once)",
    options: [],
    args: 1,
    async run(r) {
      printJson(await r.api().json("POST", `/v1/agents/${uuidArg(r.args[0], "AGENT_ID")}/rotate-key`));
    },
  },
  "keys create": {
    usage: "keys create --path keys/NAME|wallets/NAME|agents/AGENT_ID/NAME [--chain CHAIN] [--agent-id AGENT_ID]",
    summary: "generate a secp256k1 signing key inside the HSM",
    options: ["path", "chain", "agent-id"],
    async run(r) {
      if (!r.v.path) throw new UsageError("--path is required");
      const body = {
        path: r.v.path,
        ...(r.v.chain ? { chain: r.v.chain } : {}),
        ...(r.v["agent-id"] ? { agent_id: r.v["agent-id"] } : {}),
      };
      printJson(await r.api().json("POST", "/v1/signing-keys", body));
    },
  },
  "keys list": {
    usage: "keys list [--format table]",
    summary: "list signing keys (path, address, chain; never key material)",
    options: [],
    async run(r) {
      const body = await r.api().json<{ keys: Array<Record<string, unknown>> }>("GET", "/v1/signing-keys");
      printList(outputFormat(r.v.format), body, body.keys, ["path", "address", "chain", "agent_id", "is_active", "created_at"]);
    },
  },
  "keys grant": {
    usage: "keys grant KEY AGENT_ID",
    summary: "let an agent sign with a key (KEY: its id or path); audited",
    options: [],
    args: 2,
    async run(r) {
      printJson(
        await r
          .api()
          .json("POST", `/v1/signing-keys/${encodeURIComponent(r.args[0])}/grants`, { agent_id: uuidArg(r.args[1], "AGENT_ID") }),
      );
    },
  },
  "keys revoke": {
    usage: "keys revoke KEY AGENT_ID",
    summary: "take back an agent's grant of a key (KEY: its id or path); audited",
    options: [],
    args: 2,
    async run(r) {
      await r.api().json("DELETE", `/v1/signing-keys/${encodeURIComponent(r.args[0])}/grants/${uuidArg(r.args[1], "AGENT_ID")}`);
      printJson({ revoked: true, key: r.args[0], agent_id: r.args[1] });
    },
  },
  "keys grants": {
    usage: "keys grants KEY [--format table]",
    summary: "list the agents a key is granted to",
    options: [],
    args: 1,
    async run(r) {
      const body = await r
        .api()
        .json<{ grants: Array<Record<string, unknown>> }>("GET", `/v1/signing-keys/${encodeURIComponent(r.args[0])}/grants`);
      printList(outputFormat(r.v.format), body, body.grants, ["path", "agent_id", "granted_by", "created_at"]);
    },
  },
  "keys update": {
    usage: "keys update KEY --active true|false",
    summary: "switch a key off (it signs nothing) or on again",
    options: ["active"],
    args: 1,
    async run(r) {
      const active = bool(r.v.active, "active");
      if (active === undefined) throw new UsageError("--active is required");
      printJson(await r.api().json("PATCH", `/v1/signing-keys/${encodeURIComponent(r.args[0])}`, { is_active: active }));
    },
  },
  "chains list": {
    usage: "chains list [--format table]",
    summary: "list chains, disabled ones included",
    options: [],
    async run(r) {
      const body = await r.api().json<{ chains: Array<Record<string, unknown>> }>("GET", "/v1/admin/chains");
      printList(outputFormat(r.v.format), body, body.chains, [
        "name",
        "chain_id",
        "display_name",
        "native_currency",
        "is_enabled",
        "is_testnet",
        "confirmations",
      ]);
    },
  },
  "tx list": {
    usage:
      "tx list [--agent-id ID] [--status S] [--chain C] [--chain-status S] [--from ISO] [--to ISO] [--limit N] [--cursor C] [--include-signed-tx] [--format table]",
    summary: "every agent's transactions, newest first; next_cursor pages on",
    options: [...TX_FILTERS, "limit", "cursor"],
    async run(r) {
      const q = query({ ...txFilters(r.v), limit: int(r.v.limit, "limit"), cursor: r.v.cursor });
      const body = await r
        .api()
        .json<{ transactions: Array<Record<string, unknown>>; next_cursor: string | null }>("GET", `/v1/transactions${q}`);
      printList(outputFormat(r.v.format), body, body.transactions, TX_COLUMNS);
    },
  },
  "tx show": {
    usage: "tx show TX_ID [--include-signed-tx]",
    summary: "one transaction of any agent",
    options: ["include-signed-tx"],
    args: 1,
    async run(r) {
      const q = query({ include_signed_tx: r.v["include-signed-tx"] ? "true" : undefined });
      printJson(await r.api().json("GET", `/v1/transactions/${uuidArg(r.args[0], "TX_ID")}${q}`));
    },
  },
  "tx export": {
    usage: "tx export [--format jsonl|csv] [filters as tx list] [--include-signed-tx] [-o FILE] [--db]",
    summary: "stream every matching transaction as JSON lines or CSV (from the service, or with --db straight from the database)",
    options: [...TX_FILTERS, "output", "db"],
    async run(r) {
      const format = r.v.format ?? "jsonl";
      if (format !== "jsonl" && format !== "csv") throw new UsageError("tx export: --format must be jsonl or csv");
      if (r.v.output && fs.existsSync(r.v.output)) throw new UsageError(`--output: ${r.v.output} exists; not overwriting it`);
      const filters = txFilters(r.v);
      if (!r.v.db) {
        const res = await r.api().fetch("GET", `/v1/transactions/export${query({ ...filters, format })}`);
        if (!res.body) throw new CommandFailed("the service sent no body");
        await writeOut(Readable.fromWeb(res.body as never), r.v.output);
        return;
      }
      const { openExport, toHistoryFilter } = await lazy.history();
      const { ExportQuery } = await import("../http/schemas/history.js");
      const { ChainRegistry } = await import("../chains/registry.js");
      const { wantsSignedTx } = await import("../http/transactions.js");
      const parsed = ExportQuery.safeParse({ ...filters, format });
      if (!parsed.success)
        throw new UsageError(parsed.error.issues.map((i) => `--${String(i.path[0]).replace(/_/g, "-")}: ${i.message}`).join("; "));
      await withDb(r, async (db) => {
        const chains = new ChainRegistry(db.pool, {});
        await chains.refresh();
        let filter;
        try {
          const { limit: _limit, ...f } = toHistoryFilter(chains, parsed.data);
          filter = f;
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        const lines = await openExport(db.pool, filter, { format, includeSignedTx: wantsSignedTx(parsed.data.include_signed_tx) });
        await writeOut(Readable.from(lines), r.v.output);
      });
    },
  },
  "api-keys create": {
    usage: "api-keys create --name NAME [--db]",
    summary: "create an operator key; prints it once (--db: straight in the database, for a lost key)",
    options: ["name", "db"],
    async run(r) {
      if (!r.v.name) throw new UsageError("--name is required");
      if (!r.v.db) {
        printJson(await r.api().json("POST", "/v1/auth/api-keys", { name: r.v.name }));
        return;
      }
      const { createOperatorKey } = await import("../auth/operator-keys.js");
      const name = r.v.name;
      await withDb(r, async (db) => printJson(await createOperatorKey(db.pool, { name, actor: { type: "system", id: "cli" } })));
    },
  },
  "api-keys list": {
    usage: "api-keys list [--format table]",
    summary: "list operator keys: prefix, name, created, last used, revoked",
    options: [],
    async run(r) {
      const body = await r.api().json<{ keys: Array<Record<string, unknown>> }>("GET", "/v1/auth/api-keys");
      printList(outputFormat(r.v.format), body, body.keys, [
        "id",
        "name",
        "key_prefix",
        "is_active",
        "created_at",
        "last_used_at",
        "revoked_at",
      ]);
    },
  },
  "api-keys revoke": {
    usage: "api-keys revoke <key_id>",
    summary: "revoke an operator key at once (not the last active one)",
    options: [],
    args: 1,
    async run(r) {
      const id = uuidArg(r.args[0], "key_id");
      await r.api().json("DELETE", `/v1/auth/api-keys/${id}`);
      printJson({ revoked: id });
    },
  },
  // Human approvals: requests the agents' approval rules hold for operators (src/approvals).
  "approvals list": {
    usage:
      "approvals list [--agent-id ID] [--status pending|executing|executed|failed|rejected|expired|cancelled] [--chain C] [--limit N] [--offset N] [--format table]",
    summary: "list approvals, newest first (default: every status)",
    options: ["agent-id", "status", "chain", "limit", "offset"],
    async run(r) {
      const q = query({
        agent_id: r.v["agent-id"] !== undefined ? uuidArg(r.v["agent-id"], "--agent-id") : undefined,
        status: r.v.status,
        chain: r.v.chain,
        limit: int(r.v.limit, "limit"),
        offset: int(r.v.offset, "offset"),
      });
      const body = await r.api().json<{ pending_approvals: Array<Record<string, unknown>> }>("GET", `/v1/pending-approvals${q}`);
      printList(outputFormat(r.v.format), body, body.pending_approvals, [
        "id",
        "agent_id",
        "action",
        "chain",
        "status",
        "current_approvals",
        "required_approvals",
        "expires_at",
      ]);
    },
  },
  "approvals show": {
    usage: "approvals show <approval_id>",
    summary: "an approval: the decoded request, why it waits, its payload hash, the votes, the result",
    options: [],
    args: 1,
    async run(r) {
      printJson(await r.api().json("GET", `/v1/pending-approvals/${uuidArg(r.args[0], "approval_id")}`));
    },
  },
  "approvals approve": {
    usage: "approvals approve <approval_id> [--reason TEXT]",
    summary: "vote for it with this operator key, bound to the payload hash shown by `approvals show`; the quorum executes it",
    options: ["reason"],
    args: 1,
    run: (r) => castVote(r, "approve"),
  },
  "approvals reject": {
    usage: "approvals reject <approval_id> [--reason TEXT]",
    summary: "reject it (one rejection ends it; nothing is signed)",
    options: ["reason"],
    args: 1,
    run: (r) => castVote(r, "reject"),
  },
  "audit verify": {
    usage: "audit verify",
    summary: "walk the audit hash chain in the database; exit 1 and name the first broken event if any",
    options: [],
    async run(r) {
      const { verifyAuditChain } = await import("../audit-chain.js");
      return withDb(r, async (db) => {
        const result = await verifyAuditChain(db.pool);
        if (result.chain_valid) {
          printJson(result);
          return 0;
        }
        const ev = await db.pool.query<{ action: string; chain_seq: string; created_at: Date }>(
          "SELECT action, chain_seq, created_at FROM audit_events WHERE id = $1",
          [result.broken_at_event_id],
        );
        const e = ev.rows[0];
        printJson({
          ...result,
          broken_event: e
            ? { id: result.broken_at_event_id, action: e.action, chain_seq: Number(e.chain_seq), created_at: e.created_at.toISOString() }
            : null,
        });
        r.env.stderr(
          `audit chain BROKEN at event ${result.broken_at_event_id}${e ? ` (${e.action}, chain position ${e.chain_seq})` : ""}: ${result.events_verified} events before it verify`,
        );
        return 1;
      });
    },
  },
  mcp: {
    usage: "mcp",
    summary:
      "MCP server on stdin/stdout for an agent host: INTENTS_URL and the agent's INTENTS_AGENT_KEY (ocv_… or a JWT) from the environment",
    options: ["url"],
    run: async (r) => {
      const key = r.env.env.INTENTS_AGENT_KEY;
      if (!key) throw new UsageError("INTENTS_AGENT_KEY must hold the agent's key (ocv_…) or token; it is read only from the environment");
      const url = r.v.url ?? r.env.env.INTENTS_URL ?? "http://127.0.0.1:8080";
      if (!/^https?:\/\/[^\s]+$/.test(url)) throw new UsageError("INTENTS_URL must be an http(s) URL");
      const { runStdioMcp } = await import("../mcp/stdio.js");
      await runStdioMcp({ url, credential: key });
    },
  },
  "verify-tx": {
    usage: "verify-tx TX_ID",
    summary: "recover the signer of a stored signed_tx and check it, its hash and its fields against the row",
    options: [],
    args: 1,
    async run(r) {
      const id = uuidArg(r.args[0], "TX_ID");
      const { getTransaction } = await import("../db/transactions.js");
      const { verifyStoredTransaction } = await import("./verify-tx.js");
      return withDb(r, async (db) => {
        const row = await getTransaction(db.pool, id.toLowerCase());
        if (!row) throw new CommandFailed(`no transaction ${id}`);
        const result = await verifyStoredTransaction(row);
        printJson(result);
        if (result.ok) return 0;
        r.env.stderr(
          `verify-tx: MISMATCH for ${id}: ${result.checks
            .filter((c) => !c.ok)
            .map((c) => c.check)
            .join(", ")}`,
        );
        return 1;
      });
    },
  },
  init: {
    usage: "init",
    summary:
      "prepare everything the service needs (migrations, chains, HSM token, local signing key, operator key) and exit; configured by the service's environment",
    options: [],
    async run(r) {
      const { ConfigError, loadConfig } = await import("../config.js");
      const { createContext, LOCAL_SIGNER_PATH } = await import("../context.js");
      const { createLogger } = await import("../log.js");
      let config;
      try {
        config = loadConfig(r.env.env);
      } catch (err) {
        if (err instanceof ConfigError) throw new UsageError(err.message);
        throw err;
      }
      const ctx = await createContext(config, createLogger(config.logLevel));
      try {
        const signer = await ctx.signer.getKey(LOCAL_SIGNER_PATH);
        printJson({
          ok: true,
          local_signer: signer ? { path: signer.path, address: signer.address } : null,
          // Generated only when no operator key existed and ADMIN_API_KEY is unset: shown this once.
          ...(ctx.generatedOperatorKey ? { operator_key: ctx.generatedOperatorKey } : {}),
        });
      } finally {
        await ctx.close();
      }
    },
  },
};

/** Finds the command named by the first one or two positionals. */
export function findCommand(positionals: string[]): { name: string; command: Command; rest: string[] } | undefined {
  const two = positionals.slice(0, 2).join(" ");
  if (COMMANDS[two]) return { name: two, command: COMMANDS[two], rest: positionals.slice(2) };
  const one = positionals[0];
  if (one !== undefined && COMMANDS[one]) return { name: one, command: COMMANDS[one], rest: positionals.slice(1) };
  return undefined;
}

export function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  intents ${c.usage}\n      ${c.summary}`);
  const fields = GUARDRAIL_FIELD_FLAGS.map((f) => `  --${`${f.cli.flag} ${f.cli.arg}`.padEnd(30)} ${f.describe} (default ${f.default})`);
  return `Usage: intents <command> [options]      (or: npm run cli -- <command> [options])

Commands:
${lines.join("\n")}

Global options:
  --url URL            the service (default INTENTS_URL or http://127.0.0.1:8080)
  --key KEY            operator key (default INTENTS_OPERATOR_KEY, then ADMIN_API_KEY; prefer the
                       environment: a key on the command line is visible in the process list)
  --format json|table  output of list commands (default json)
  --database-url URL   database for audit verify, verify-tx, tx export --db (default DATABASE_URL,
                       else the embedded cluster under --data-dir / DATA_DIR / ./.data)
  -h, --help           this text

Agent fields (agents create, agents update; --json '{…}' sets any field of the API):
${fields.join("\n")}

Exit codes: 0 ok, 1 failure (service error, broken audit chain, verify-tx mismatch), 2 usage.
`;
}

export async function runCli(argv: string[], env: CliEnv): Promise<number> {
  const p = parse(argv);
  if (p.positionals[0] === "help" || (p.values.help && p.positionals.length === 0)) {
    process.stdout.write(usage());
    return 0;
  }
  const found = findCommand(p.positionals);
  if (!found) {
    throw new UsageError(p.positionals.length ? `unknown command '${p.positionals.slice(0, 2).join(" ")}'` : "no command given");
  }
  if (p.values.help) {
    process.stdout.write(`Usage: intents ${found.command.usage}\n  ${found.command.summary}\n`);
    return 0;
  }
  allowOnly(p, found.name, found.command.options);
  const want = found.command.args ?? 0;
  if (found.rest.length !== want) {
    throw new UsageError(
      `'${found.name}' takes ${want === 0 ? "no arguments" : `${want} argument${want > 1 ? "s" : ""}`}: intents ${found.command.usage}`,
    );
  }
  const e = env.env;
  let client: ApiClient | undefined;
  const run: Run = {
    p,
    v: p.values,
    args: found.rest,
    env,
    api: () =>
      (client ??= new ApiClient({
        url: p.values.url ?? e.INTENTS_URL ?? "http://127.0.0.1:8080",
        key: p.values.key ?? e.INTENTS_OPERATOR_KEY ?? e.ADMIN_API_KEY,
      })),
    db: async () =>
      (await lazy.db()).openDatabase({
        databaseUrl: p.values["database-url"] ?? (e.DATABASE_URL || undefined),
        dataDir: p.values["data-dir"] ?? (e.DATA_DIR || undefined),
        notice: env.stderr,
      }),
  };
  return (await found.command.run(run)) ?? 0;
}

/** A vote names the payload hash it was cast on: read it first, so the vote is bound to what was shown. */
async function castVote(r: Run, decision: "approve" | "reject"): Promise<void> {
  const id = uuidArg(r.args[0], "approval_id");
  const api = r.api();
  const current = await api.json<{ payload_hash: string }>("GET", `/v1/pending-approvals/${id}`);
  printJson(
    await api.json("POST", `/v1/pending-approvals/${id}/approve`, {
      decision,
      payload_hash: current.payload_hash,
      ...(r.v.reason !== undefined ? { reason: r.v.reason } : {}),
    }),
  );
}
