// The MCP tools: one per agent operation, each a call to the service's own HTTP route, so the spend
// model, key grants, quotas, audit, idempotency and DPoP apply unchanged. The caller (src/mcp/http.ts
// for /mcp, src/mcp/stdio.ts for `intents mcp`) supplies `call`, which carries the agent's credential;
// neither the credential nor the agent id is ever a tool input or part of a result.
//
// Only fixed agent routes are reachable: every path is built here from the agent id the credential
// names and from inputs checked against strict patterns (uuid, chain name), never from free text.
import { createHash } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { GUARDRAIL_FIELDS } from "../agents/guardrail-fields.js";
import { VERSION } from "../version.js";
import { SignIntentRequestSchema } from "../http/schemas/signatures.js";
import {
  ListQuery,
  SimulateBundleRequestSchema,
  SimulateTransactionRequestSchema,
  TransactionRequestSchema,
} from "../http/schemas/transactions.js";

export interface ServiceRequest {
  method: "GET" | "POST";
  /** Path and query under the service root, built by the tools below. */
  path: string;
  body?: unknown;
  idempotencyKey?: string;
  tool: string;
}
export interface ServiceResponse {
  status: number;
  body: unknown;
}
/** What the SDK hands a tool callback about its request: the JSON-RPC id and, over HTTP, the /mcp request's auth. */
export interface CallExtra {
  requestId: string | number;
  authInfo?: { extra?: Record<string, unknown> };
}
/** Performs one request as the agent of `extra`; `agentId` is the id its credential names. */
export interface ServiceCaller {
  agentId(extra: CallExtra): Promise<string>;
  call(r: ServiceRequest, extra: CallExtra): Promise<ServiceResponse>;
}

export interface ToolContext {
  /** The JSON-RPC id of the tools/call and the MCP session it came in (see idempotencyKeyFor). */
  requestId: string | number;
  sessionId: string;
}

/**
 * The Idempotency-Key of a tool call that signs: derived from the session and the JSON-RPC id, so a
 * host that retries a call (same id, same session) gets the first answer back and nothing is signed
 * twice; another call, or the same id in another session, is a new request.
 */
export function idempotencyKeyFor(tool: string, c: ToolContext): string {
  return (
    "mcp-" +
    createHash("sha256")
      .update(`${c.sessionId}\n${typeof c.requestId}:${c.requestId}\n${tool}`)
      .digest("hex")
      .slice(0, 48)
  );
}

const TX_ID = z.uuid().describe("A transaction id (uuid) returned by submit_transaction or list_transactions");
const CHAIN = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "must be a chain name, alias or numeric id")
  .describe('Chain name, alias or numeric chain id (see list_chains), e.g. "base", "8453"');
const S = SignIntentRequestSchema.shape;

const UNITS =
  '`value` is a decimal string in the chain\'s native unit (ETH on Ethereum: "0.01" is 0.01 ETH), never wei. ' +
  "`gas_price`, `max_fee_per_gas`, `max_priority_fee_per_gas` are wei as decimal strings; omit them and `gas_limit` to let the service estimate.";

/** The agent's own fields that get_guardrails shows (src/agents/guardrail-fields.ts). */
const MCP_FIELDS = GUARDRAIL_FIELDS.filter((f) => "mcp" in f && f.mcp);
/** What the agent used of its limits (and where it may sign), from GET /v1/agents/me. */
const SPENT_TODAY = ["tx_spent_today", "tx_count_today", "tx_fees_spent_today", "tx_token_spent_today", "signing_chains"];

/** The agent's limits and what is left of them in the rolling 24 h window, from GET /v1/agents/me. */
export function guardrailsOf(me: Record<string, unknown>): Record<string, unknown> {
  const remaining = (limit: unknown, spent: unknown) => {
    if (typeof limit !== "string" || typeof spent !== "string") return null;
    const [a, b] = [toWei(limit), toWei(spent)];
    if (a === undefined || b === undefined) return null;
    return fromWei(a > b ? a - b : 0n);
  };
  const keys = [...MCP_FIELDS.map((f) => f.wire), ...SPENT_TODAY];
  const out: Record<string, unknown> = Object.fromEntries(keys.filter((k) => k in me).map((k) => [k, me[k]]));
  out.remaining_today = {
    value: remaining(me.tx_daily_limit, me.tx_spent_today),
    fees: remaining(me.tx_daily_fee_budget, me.tx_fees_spent_today),
    transactions:
      typeof me.tx_max_per_day === "number" && typeof me.tx_count_today === "number"
        ? Math.max(0, me.tx_max_per_day - me.tx_count_today)
        : null,
  };
  return out;
}

function toWei(major: string): bigint | undefined {
  const m = /^(\d+)(?:\.(\d{1,18}))?$/.exec(major);
  return m ? BigInt(m[1]) * 10n ** 18n + BigInt((m[2] ?? "").padEnd(18, "0")) : undefined;
}
function fromWei(w: bigint): string {
  const frac = (w % 10n ** 18n).toString().padStart(18, "0").replace(/0+$/, "");
  return `${w / 10n ** 18n}${frac ? "." + frac : ""}`;
}

/** A route's answer as a tool result: the object as structured content plus a line a model can act on. */
export function toToolResult(tool: string, r: ServiceResponse, describe: (body: Record<string, unknown>) => string): CallToolResult {
  const body = (r.body && typeof r.body === "object" && !Array.isArray(r.body) ? r.body : { value: r.body }) as Record<string, unknown>;
  if (r.status === 202) {
    const id = body.pending_approval_id ?? body.id;
    const votes = body.required_approvals != null ? `, ${body.current_approvals ?? 0} of ${body.required_approvals} approval(s)` : "";
    const until = typeof body.expires_at === "string" ? `, expires ${body.expires_at}` : "";
    return {
      content: [
        {
          type: "text",
          text:
            `Waiting for human approval (HTTP 202, pending approval ${String(id)}${votes}${until}); nothing was signed yet. ` +
            `Check it with get_approval_status { "approval_id": "${String(id)}" }; once approved, retrying this same call returns the result.`,
        },
      ],
      structuredContent: body,
    };
  }
  if (r.status >= 200 && r.status < 300) return { content: [{ type: "text", text: describe(body) }], structuredContent: body };
  return { content: [{ type: "text", text: problemText(tool, r.status, body) }], structuredContent: body, isError: true };
}

function problemText(tool: string, status: number, p: Record<string, unknown>): string {
  const detail = typeof p.detail === "string" ? p.detail : typeof p.title === "string" ? p.title : `HTTP ${status}`;
  const g = p.guardrail as { reason_code?: string; limit?: unknown; current?: unknown; attempted?: unknown } | undefined;
  const parts = [`${tool} failed (${status}${typeof p.code === "string" ? " " + p.code : ""}): ${detail}`];
  if (g) {
    const remaining = typeof g.limit === "string" && typeof g.current === "string" ? remainingOf(g.limit, g.current) : undefined;
    parts.push(
      `Denied by guardrail rule ${g.reason_code}: limit ${fmt(g.limit)}, used ${fmt(g.current)}, attempted ${fmt(g.attempted)}${remaining !== undefined ? `, remaining ${remaining}` : ""}.`,
    );
  }
  if (status === 401)
    parts.push("Authentication failed: the agent's credential is missing, expired or revoked; an operator must issue a new one.");
  if (Array.isArray(p.errors))
    parts.push(
      `Fields: ${(p.errors as Array<{ field?: string; message?: string }>)
        .slice(0, 5)
        .map((e) => `${e.field}: ${e.message}`)
        .join("; ")}`,
    );
  return parts.join(" ");
}
const fmt = (v: unknown) => (v === undefined || v === null ? "none" : typeof v === "string" ? v : JSON.stringify(v));
function remainingOf(limit: string, current: string): string | undefined {
  const [a, b] = [toWei(limit), toWei(current)];
  return a === undefined || b === undefined ? undefined : fromWei(a > b ? a - b : 0n);
}

const txLine = (b: Record<string, unknown>) =>
  `Transaction ${b.id}: status ${b.status}${b.tx_hash ? `, hash ${b.tx_hash}` : ""}${b.chain_status ? `, on chain ${b.chain_status}` : ""}${b.block_number != null ? ` in block ${b.block_number}` : ""}${b.error_message ? `, error: ${b.error_message}` : ""}.`;
const simLine = (b: Record<string, unknown>) =>
  `Simulation ${b.status}${b.gas_used != null ? `, gas used ${b.gas_used}` : ""}${Array.isArray(b.balance_changes) ? `, ${b.balance_changes.length} balance change(s)` : ""}${b.revert_reason ? `, revert: ${b.revert_reason}` : ""}${b.error ? `, error: ${b.error}` : ""}.`;

/** A PendingApprovalResponse as a line: its status, the votes while pending, the result once executed. */
const approvalLine = (b: Record<string, unknown>) => {
  const r = (b.result && typeof b.result === "object" ? b.result : {}) as Record<string, unknown>;
  const parts = [`Approval ${b.id}: ${b.status}`];
  if (b.status === "pending") parts.push(`${b.current_approvals ?? 0} of ${b.required_approvals} approval(s), expires ${b.expires_at}`);
  if (b.status === "executed" && r.tx_hash) parts.push(`transaction ${r.id} ${r.status}, hash ${r.tx_hash}`);
  else if (b.status === "executed" && r.signature) parts.push(`signature ${r.signature}`);
  if (b.failure_reason) parts.push(`reason: ${b.failure_reason}`);
  return parts.join(", ") + ".";
};

/** The agent's MCP server: its tools call `svc` as the agent. */
export function buildMcpServer(svc: ServiceCaller, session: { id: string }): McpServer {
  const server = new McpServer({ name: "intents-signer", version: VERSION });
  const agentPath = async (extra: CallExtra, rest: string) => `/v1/agents/${encodeURIComponent(await svc.agentId(extra))}${rest}`;
  const ctxOf = (extra: CallExtra): ToolContext => ({ requestId: extra.requestId, sessionId: session.id });
  const run = async (extra: CallExtra, tool: string, r: Omit<ServiceRequest, "tool">, describe: (b: Record<string, unknown>) => string) =>
    toToolResult(tool, await svc.call({ ...r, tool }, extra), describe);
  /** A tool that signs: POSTs `body` with an Idempotency-Key of this call, so a retried call never signs twice. */
  const sign = async (extra: CallExtra, tool: string, rest: string, body: unknown, describe: (b: Record<string, unknown>) => string) =>
    run(
      extra,
      tool,
      { method: "POST", path: await agentPath(extra, rest), body, idempotencyKey: idempotencyKeyFor(tool, ctxOf(extra)) },
      describe,
    );

  // Submit and sign: simulate_first defaults to true here (the HTTP default is false), as a model should
  // see what a transaction does before it is irreversible.
  const txInput = TransactionRequestSchema.safeExtend({
    simulate_first: z.boolean().default(true).describe("Simulate before signing and refuse if it reverts (default true)"),
  });
  server.registerTool(
    "submit_transaction",
    {
      title: "Sign and broadcast a transaction",
      description:
        "Signs an EVM transaction with the agent's HSM-held key under its guardrails and broadcasts it. IRREVERSIBLE once broadcast: funds move. " +
        UNITS +
        " Simulates first by default (simulate_first: true). A guardrail denial names the rule, the limit and what remains. " +
        "Returns the transaction (id, tx_hash, status); follow it with get_transaction. Retrying the same call (same request id) never signs twice.",
      inputSchema: txInput,
      annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: true },
    },
    async (args, extra) => sign(extra, "submit_transaction", "/transactions", args, txLine),
  );
  server.registerTool(
    "sign_transaction",
    {
      title: "Sign a transaction without broadcasting it",
      description:
        "Signs an EVM transaction under the agent's guardrails and returns the signed bytes (signed_tx) without broadcasting. " +
        "The signature counts against the limits as if sent: anyone holding signed_tx can broadcast it. " +
        UNITS +
        " Simulates first by default.",
      inputSchema: txInput,
      annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args, extra) => sign(extra, "sign_transaction", "/transactions/sign", args, txLine),
  );
  server.registerTool(
    "simulate_transaction",
    {
      title: "Simulate a transaction",
      description:
        "Runs the transaction against the chain's current state without signing it: status (success, reverted, error), gas used and balance changes (major units, ETH and tokens). Nothing is signed or sent. " +
        UNITS,
      inputSchema: SimulateTransactionRequestSchema,
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async (args, extra) =>
      run(extra, "simulate_transaction", { method: "POST", path: await agentPath(extra, "/transactions/simulate"), body: args }, simLine),
  );
  server.registerTool(
    "simulate_bundle",
    {
      title: "Simulate transactions in order",
      description:
        "Simulates up to 20 transactions in order, each seeing the state the previous ones left (e.g. approve then swap). Nothing is signed or sent. " +
        UNITS,
      inputSchema: SimulateBundleRequestSchema,
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async (args, extra) =>
      run(extra, "simulate_bundle", { method: "POST", path: await agentPath(extra, "/transactions/simulate-bundle"), body: args }, (b) =>
        Array.isArray(b.simulations)
          ? `Bundle: ${(b.simulations as Array<Record<string, unknown>>).map((s, i) => `#${i + 1} ${s.status}`).join(", ")}.`
          : "Bundle simulated.",
      ),
  );
  server.registerTool(
    "sign_message",
    {
      title: "Sign a message (EIP-191 personal_sign)",
      description:
        "Signs a message with the agent's key (EIP-191 personal_sign; Sign-In with Ethereum messages are checked against the agent's SIWE rules). A signature can authorize actions elsewhere: sign only what you mean.",
      inputSchema: z.strictObject({
        chain: S.chain,
        message: S.message.unwrap().describe("The message, UTF-8 text or 0x-prefixed hex bytes"),
        signing_key_path: S.signing_key_path,
      }),
      annotations: { destructiveHint: true, idempotentHint: true },
    },
    async (args, extra) =>
      sign(
        extra,
        "sign_message",
        "/sign",
        { intent_type: "personal_sign", ...args },
        (b) => `Signed by ${b.from ?? b.address ?? "the agent's key"}: ${b.signature}.`,
      ),
  );
  server.registerTool(
    "sign_typed_data",
    {
      title: "Sign EIP-712 typed data",
      description:
        "Signs EIP-712 typed data (types, primaryType, domain, message) with the agent's key. Permits, Permit2 and EIP-3009 authorizations move tokens: they count against the agent's token limits and are IRREVERSIBLE once someone submits them.",
      inputSchema: z.strictObject({
        chain: S.chain,
        typed_data: z
          .object({
            types: z.record(z.string(), z.unknown()),
            primaryType: z.string(),
            domain: z.record(z.string(), z.unknown()),
            message: z.record(z.string(), z.unknown()),
          })
          .describe("EIP-712 typed data: { types, primaryType, domain, message }"),
        signing_key_path: S.signing_key_path,
      }),
      annotations: { destructiveHint: true, idempotentHint: true },
    },
    async (args, extra) =>
      sign(
        extra,
        "sign_typed_data",
        "/sign",
        { intent_type: "typed_data", ...args },
        (b) => `Signed (${b.kind ?? "typed data"}): ${b.signature}.`,
      ),
  );
  server.registerTool(
    "get_transaction",
    {
      title: "Get a transaction",
      description:
        "One of the agent's transactions: status, tx_hash, chain_status (unconfirmed, confirmed, reverted, replaced, dropped), block_number, confirmations.",
      inputSchema: z.strictObject({ tx_id: TX_ID }),
      annotations: { readOnlyHint: true },
    },
    async (args, extra) =>
      run(
        extra,
        "get_transaction",
        { method: "GET", path: await agentPath(extra, `/transactions/${encodeURIComponent(args.tx_id)}`) },
        txLine,
      ),
  );
  const listInput = ListQuery.omit({ include_signed_tx: true, limit: true }).extend({
    limit: z.number().int().min(1).max(500).optional().describe("Page size (default 50)"),
  });
  server.registerTool(
    "list_transactions",
    {
      title: "List the agent's transactions",
      description:
        "The agent's transactions, newest first, with optional filters (status, chain, chain_status, from/to as ISO times) and paging (limit, cursor from next_cursor).",
      inputSchema: listInput,
      annotations: { readOnlyHint: true },
    },
    async (args, extra) => {
      const q = new URLSearchParams(
        Object.entries(args)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]): [string, string] => [k, String(v)]),
      );
      const qs = q.toString();
      return run(
        extra,
        "list_transactions",
        { method: "GET", path: await agentPath(extra, `/transactions${qs ? "?" + qs : ""}`) },
        (b) =>
          `${Array.isArray(b.transactions) ? b.transactions.length : 0} transaction(s)${b.next_cursor ? "; more with cursor " + b.next_cursor : ""}.`,
      );
    },
  );
  server.registerTool(
    "get_balance",
    {
      title: "Native balance of the agent's signing address",
      description:
        "The native balance (e.g. ETH) of the address the agent signs with by default on a chain: balance_display in major units, balance_wei in wei.",
      inputSchema: z.strictObject({ chain: CHAIN }),
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async (args, extra) =>
      run(
        extra,
        "get_balance",
        { method: "GET", path: await agentPath(extra, `/signing-keys/${encodeURIComponent(args.chain)}/balance`) },
        (b) => `${b.address} holds ${b.balance_display} on ${b.chain} (${b.balance_wei} wei).`,
      ),
  );
  server.registerTool(
    "list_chains",
    {
      title: "List the chains",
      description: "The chains this service signs for: name, chain_id, aliases, native currency, testnet or not.",
      inputSchema: z.strictObject({}),
      annotations: { readOnlyHint: true },
    },
    async (_args, extra) =>
      run(
        extra,
        "list_chains",
        { method: "GET", path: "/v1/chains" },
        (b) => `${Array.isArray(b.chains) ? (b.chains as Array<{ name?: string }>).map((c) => c.name).join(", ") : "chains"}.`,
      ),
  );
  server.registerTool(
    "get_guardrails",
    {
      title: "The agent's own limits and what is left today",
      description:
        "The agent's guardrails (allowlists, per-transaction and daily limits in major units, fee limits, allowed chains, token limits) and what remains of the daily limits in the rolling 24 h window. Read-only: only an operator can change them. Fields: " +
        MCP_FIELDS.map((f) => `${f.wire} (${f.describe})`).join("; ") +
        ".",
      inputSchema: z.strictObject({}),
      annotations: { readOnlyHint: true },
    },
    async (_args, extra) => {
      const r = await svc.call({ method: "GET", path: "/v1/agents/me", tool: "get_guardrails" }, extra);
      if (r.status !== 200) return toToolResult("get_guardrails", r, () => "");
      const g = guardrailsOf(r.body as Record<string, unknown>);
      const rem = g.remaining_today as Record<string, unknown>;
      return toToolResult(
        "get_guardrails",
        { status: 200, body: g },
        () =>
          `Remaining today: value ${rem.value ?? "unlimited"}, fees ${rem.fees ?? "unlimited"}, transactions ${rem.transactions ?? "unlimited"}.`,
      );
    },
  );
  server.registerTool(
    "get_approval_status",
    {
      title: "Status of a pending approval",
      description:
        "The state of a transaction or signature held for human approval (the pending_approval_id a 202 answer named): " +
        "pending (votes so far), executing, executed (with the result: the transaction or signature), failed (with the reason), rejected, expired or cancelled.",
      inputSchema: z.strictObject({ approval_id: z.uuid().describe("The pending_approval_id of a held request") }),
      annotations: { readOnlyHint: true },
    },
    async (args, extra) =>
      run(
        extra,
        "get_approval_status",
        { method: "GET", path: `/v1/pending-approvals/${encodeURIComponent(args.approval_id)}` },
        approvalLine,
      ),
  );
  return server;
}
