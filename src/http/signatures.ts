// Signing intents: POST /v1/agents/{agent_id}/sign (the pipeline is src/pipeline/sign-intent.ts), and the
// history of message, typed-data and digest signatures: an agent's own list, every agent's list and a
// streamed export for operators (transactions signed through /sign are in the transaction history).
import { z } from "zod";
import { requireIntentsAgent, requireOperator } from "../auth/principal.js";
import type { Pool, Queryable } from "../db/pool.js";
import { listSignatures, type ListedSignature, type SignatureFilter } from "../db/signatures.js";
import { signIntent } from "../pipeline/sign-intent.js";
import { SignIntentRequestSchema } from "./schemas/signatures.js";
import { IdempotencyHeaders } from "./schemas/transactions.js";
import type { PipelineDeps } from "../pipeline/types.js";
import { decodeCursor, EXPORT_PAGE_SIZE, listPage, openPagedExport, sendExport } from "./listing.js";
import { parseSignIntent } from "./intents.js";
import { idempotencyKey, intentsAgentGuard, parseContext, readableAgent, sendGateResult, validatedByPipeline } from "./transactions.js";
import type { App } from "./types.js";
import { withApprovals } from "../approvals/gate.js";
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

const page = (rows: ListedSignature[], limit: number, include: boolean) =>
  listPage("signatures", rows, limit, (r) => toSignatureResponse(r, include));

/** Opens an export of the signatures `filter` selects (streamed page by page, src/http/listing.ts). */
function openExport(db: Queryable, filter: SignatureFilter, format: "jsonl" | "csv", include: boolean): Promise<AsyncGenerator<string>> {
  const { after, ...rest } = filter;
  return openPagedExport((p) => listSignatures(db, { ...rest, ...p }), after, {
    format,
    columns: include ? [...CSV_COLUMNS, "signature"] : CSV_COLUMNS,
    toRecord: (r) => toSignatureResponse(r, include),
    // The meaning is an object: one CSV field of JSON.
    csvValue: (s, c) => (c === "meaning" ? JSON.stringify(s.meaning) : s[c]),
  });
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
      return sendGateResult(reply, result);
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
      const agentId = readableAgent(req, req.params.agent_id);
      const rows = await listSignatures(deps.pool, filterOf(req.query, agentId.toLowerCase()));
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
      const lines = await openExport(
        deps.pool,
        filterOf(req.query, req.query.agent_id?.toLowerCase()),
        format,
        wants(req.query.include_signature),
      );
      return sendExport(reply, "signatures", format, lines);
    },
  );
}
