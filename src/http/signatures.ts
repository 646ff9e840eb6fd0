// Signing intents: POST /v1/agents/{agent_id}/sign (the pipeline is src/pipeline/sign-intent.ts), and the
// history of message, typed-data and digest signatures: an agent's own list, every agent's list and a
// streamed export for operators (transactions signed through /sign are in the transaction history).
import { Readable } from "node:stream";
import { z } from "zod";
import { requireIntentsAgent, requireOperator, requireReader } from "../auth/principal.js";
import type { Pool, Queryable } from "../db/pool.js";
import { listSignatures, type ListedSignature, type SignatureFilter } from "../db/signatures.js";
import { notFound } from "../errors.js";
import { signIntent } from "../pipeline/sign-intent.js";
import { SignIntentRequestSchema } from "./schemas/signatures.js";
import { IdempotencyHeaders } from "./schemas/transactions.js";
import type { PipelineDeps } from "../pipeline/types.js";
import { csvRecord, EXPORT_CONTENT_TYPES, EXPORT_PAGE_SIZE } from "./history.js";
import { parseSignIntent } from "./intents.js";
import { decodeCursor, encodeCursor, idempotencyKey, intentsAgentGuard, parseContext, validatedByPipeline } from "./transactions.js";
import type { App } from "./types.js";
import { withApprovals } from "../approvals/gate.js";
import { approvalLocation } from "./approvals.js";
import { UUID } from "../uuid.js";
import { AgentParams, ExportQuery, Filters, HistoryQuery, ListQuery } from "./schemas/signatures.js";

const wants = (v: string | undefined) => v === "true" || v === "1";

export function toSignatureResponse(r: ListedSignature, includeSignature: boolean) {
  return {
    id: r.id,
    agent_id: r.agent_id,
    intent_type: r.intent_type,
    kind: r.kind,
    chain: r.chain,
    chain_id: Number(r.chain_id),
    from: r.signer_address,
    signing_key_path: r.signing_key_path,
    digest: r.digest,
    ...(includeSignature ? { signature: r.signature } : {}),
    meaning: r.meaning,
    valid_until: r.valid_until?.toISOString() ?? null,
    created_at: r.created_at.toISOString(),
  };
}

const CSV_COLUMNS = [
  "id",
  "agent_id",
  "intent_type",
  "kind",
  "chain",
  "chain_id",
  "from",
  "signing_key_path",
  "digest",
  "valid_until",
  "created_at",
  "meaning",
];

function filterOf(q: z.infer<typeof Filters> & { limit?: number; cursor?: string }, agentId?: string): SignatureFilter {
  return {
    agentId,
    intentType: q.intent_type,
    kind: q.kind,
    from: q.from ? new Date(q.from) : undefined,
    to: q.to ? new Date(q.to) : undefined,
    limit: q.limit ?? EXPORT_PAGE_SIZE,
    after: q.cursor ? decodeCursor(q.cursor) : undefined,
  };
}

function page(rows: ListedSignature[], limit: number, include: boolean) {
  const last = rows[rows.length - 1];
  return {
    signatures: rows.map((r) => toSignatureResponse(r, include)),
    next_cursor: rows.length === limit && last ? encodeCursor({ ts: last.cursor_ts, id: last.id }) : null,
  };
}

async function* exportLines(db: Queryable, filter: SignatureFilter, format: "jsonl" | "csv", include: boolean): AsyncGenerator<string> {
  const columns = include ? [...CSV_COLUMNS, "signature"] : CSV_COLUMNS;
  if (format === "csv") yield csvRecord(columns);
  let after = filter.after;
  for (;;) {
    const rows = await listSignatures(db, { ...filter, limit: EXPORT_PAGE_SIZE, after });
    let out = "";
    for (const r of rows) {
      const s = toSignatureResponse(r, include) as Record<string, unknown>;
      out +=
        format === "jsonl" ? JSON.stringify(s) + "\n" : csvRecord(columns.map((c) => (c === "meaning" ? JSON.stringify(s.meaning) : s[c])));
    }
    if (out) yield out;
    if (rows.length < EXPORT_PAGE_SIZE) return;
    after = { ts: rows[rows.length - 1].cursor_ts, id: rows[rows.length - 1].id };
  }
}

export async function signatureRoutes(app: App, deps: PipelineDeps & { pool: Pool }): Promise<void> {
  app.post(
    "/v1/agents/:agent_id/sign",
    {
      schema: {
        tags: ["Signing"],
        summary:
          "Sign a message (EIP-191/SIWE), EIP-712 typed data, a digest or a transaction (types 0, 1, 2, 4) under the agent's guardrails",
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: SignIntentRequestSchema,
      },
      config: { guard: intentsAgentGuard },
      validatorCompiler: validatedByPipeline,
    },
    async (req, reply) => {
      const principal = requireIntentsAgent(req, req.params.agent_id);
      // Approval rules may hold it for operators (202 + Location), src/approvals/gate.ts.
      const result = await withApprovals(
        deps,
        { principal, body: req.body, idempotencyKey: idempotencyKey(req), requestId: req.id, ip: req.ip },
        "sign_intent",
        (input) => signIntent(deps, { ...input, request: parseSignIntent(input.body, parseContext(deps, principal)) }),
      );
      if (result.status === 202) void reply.header("location", approvalLocation(result.body));
      return reply.code(result.status).type("application/json; charset=utf-8").send(result.body);
    },
  );

  app.get(
    "/v1/agents/:agent_id/signatures",
    {
      schema: {
        tags: ["Signing"],
        summary: "The agent's message, typed-data and digest signatures, newest first",
        params: AgentParams,
        querystring: ListQuery,
      },
    },
    async (req) => {
      requireReader(req, req.params.agent_id, { intents: true });
      if (!UUID.test(req.params.agent_id)) throw notFound("Agent not found.");
      const rows = await listSignatures(deps.pool, filterOf(req.query, req.params.agent_id.toLowerCase()));
      return page(rows, req.query.limit, wants(req.query.include_signature));
    },
  );

  app.get(
    "/v1/signatures",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Signing"],
        summary: "Every agent's message, typed-data and digest signatures, newest first (operators)",
        querystring: HistoryQuery,
      },
    },
    async (req) => {
      requireOperator(req);
      const rows = await listSignatures(deps.pool, filterOf(req.query, req.query.agent_id?.toLowerCase()));
      return page(rows, req.query.limit, wants(req.query.include_signature));
    },
  );

  app.get(
    "/v1/signatures/export",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Signing"], summary: "Export signatures as JSON lines or CSV, streamed (operators)", querystring: ExportQuery },
    },
    async (req, reply) => {
      requireOperator(req);
      const { format } = req.query;
      const lines = exportLines(
        deps.pool,
        filterOf(req.query, req.query.agent_id?.toLowerCase()),
        format,
        wants(req.query.include_signature),
      );
      const stamp = new Date()
        .toISOString()
        .replace(/[-:]/g, "")
        .replace(/\.\d+Z$/, "Z");
      return reply
        .header("content-type", EXPORT_CONTENT_TYPES[format])
        .header("content-disposition", `attachment; filename="signatures-${stamp}.${format}"`)
        .header("cache-control", "no-store")
        .send(Readable.from(lines, { objectMode: false }));
    },
  );
}
