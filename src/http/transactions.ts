// Transaction routes of an agent: submit, sign, list, get. The pipeline does the work; these handlers
// only check who may call and shape the query.
import { z } from "zod";
import { requireIntentsAgent, requireReader } from "../auth/principal.js";
import type { ChainRegistry } from "../chains/registry.js";
import type { Pool } from "../db/pool.js";
import { getTransaction, listTransactions, type TxFilter } from "../db/transactions.js";
import { badRequest, notFound, ServiceError } from "../errors.js";
import { submitTransaction, type PipelineDeps } from "../pipeline/submit.js";
import { toTransactionResponse } from "../pipeline/response.js";
import { TransactionRequestSchema } from "../pipeline/request.js";
import type { App } from "./types.js";
import type { FastifyRequest } from "fastify";

const AgentParams = z.object({ agent_id: z.string() });
const TxParams = z.object({ agent_id: z.string(), tx_id: z.string() });

export const ListQuery = z.object({
  status: z.enum(["pending", "signed", "sign_only", "broadcast", "failed", "simulation_failed"]).optional(),
  chain: z.string().max(64).optional(),
  chain_status: z.enum(["unconfirmed", "confirmed", "reverted", "replaced", "dropped"]).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
  include_signed_tx: z.string().optional(),
});
export type ListQuery = z.infer<typeof ListQuery>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Only the literal values "true" and "1" include the raw signed transaction. */
export const wantsSignedTx = (v: string | undefined) => v === "true" || v === "1";

export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(`${createdAt.toISOString()}|${id}`).toString("base64url");
}

function decodeCursor(c: string): { createdAt: Date; id: string } {
  const [ts, id] = Buffer.from(c, "base64url").toString("utf8").split("|");
  const createdAt = new Date(ts ?? "");
  if (!id || !UUID.test(id) || Number.isNaN(createdAt.getTime())) throw badRequest("Invalid cursor.", [{ field: "cursor", message: "is not a cursor returned by this API" }]);
  return { createdAt, id };
}

export function toFilter(chains: ChainRegistry, q: ListQuery, agentId?: string): TxFilter {
  let chain: string | undefined;
  if (q.chain !== undefined) {
    const c = chains.resolve(q.chain);
    if (!c) throw badRequest(`Unknown chain '${q.chain}'.`, [{ field: "chain", message: "is not a configured chain" }]);
    chain = c.name;
  }
  return {
    agentId,
    status: q.status,
    chain,
    chainStatus: q.chain_status,
    from: q.from ? new Date(q.from) : undefined,
    to: q.to ? new Date(q.to) : undefined,
    limit: q.limit,
    cursor: q.cursor ? decodeCursor(q.cursor) : undefined,
  };
}

function idempotencyKey(req: FastifyRequest): string | undefined {
  const raw = req.headers["idempotency-key"];
  if (raw === undefined) return undefined;
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (!v || v.length > 255 || !/^[\x21-\x7e]+$/.test(v)) {
    throw badRequest("Idempotency-Key must be 1 to 255 visible ASCII characters.", [{ field: "Idempotency-Key", message: "invalid" }]);
  }
  return v;
}

export async function transactionRoutes(app: App, deps: PipelineDeps & { pool: Pool; chains: ChainRegistry }): Promise<void> {
  for (const mode of ["submit", "sign"] as const) {
    app.post(
      mode === "submit" ? "/v1/agents/:agent_id/transactions" : "/v1/agents/:agent_id/transactions/sign",
      {
        schema: {
          tags: ["Transactions"],
          summary: mode === "submit" ? "Sign and broadcast a transaction" : "Sign a transaction without broadcasting it",
          params: AgentParams,
          headers: z.object({ "idempotency-key": z.string().optional() }),
          body: TransactionRequestSchema,
        },
        // The schema above documents the body; the pipeline validates it, after the caller's identity
        // and rights are checked (401/403 come before 400).
        validatorCompiler: () => (data: unknown) => ({ value: data }),
      },
      async (req, reply) => {
        const principal = requireIntentsAgent(req, req.params.agent_id);
        const result = await submitTransaction(deps, {
          principal,
          body: req.body,
          mode,
          idempotencyKey: idempotencyKey(req),
          requestId: req.id,
          ip: req.ip,
        });
        return reply.code(result.status).type("application/json; charset=utf-8").send(result.body);
      },
    );
  }

  app.get(
    "/v1/agents/:agent_id/transactions",
    { schema: { tags: ["Transactions"], summary: "List the agent's transactions, newest first", params: AgentParams, querystring: ListQuery } },
    async (req) => {
      requireReader(req, req.params.agent_id, { intents: true });
      if (!UUID.test(req.params.agent_id)) throw notFound("Agent not found.");
      const rows = await listTransactions(deps.pool, toFilter(deps.chains, req.query, req.params.agent_id));
      const include = wantsSignedTx(req.query.include_signed_tx);
      const last = rows[rows.length - 1];
      return {
        transactions: rows.map((r) => toTransactionResponse(r, { includeSignedTx: include })),
        next_cursor: rows.length === req.query.limit && last ? encodeCursor(last.created_at, last.id) : null,
      };
    },
  );

  app.get(
    "/v1/agents/:agent_id/transactions/:tx_id",
    {
      schema: {
        tags: ["Transactions"],
        summary: "Get one transaction",
        params: TxParams,
        querystring: z.object({ include_signed_tx: z.string().optional() }),
      },
    },
    async (req) => {
      requireReader(req, req.params.agent_id, { intents: true });
      if (!UUID.test(req.params.agent_id) || !UUID.test(req.params.tx_id)) throw notFound("Transaction not found.");
      const row = await getTransaction(deps.pool, req.params.tx_id, req.params.agent_id);
      if (!row) throw notFound("Transaction not found.");
      return toTransactionResponse(row, { includeSignedTx: wantsSignedTx(req.query.include_signed_tx) });
    },
  );

  for (const path of ["/v1/agents/:agent_id/transactions/simulate", "/v1/agents/:agent_id/transactions/simulate-bundle"]) {
    app.post(path, { schema: { tags: ["Simulation"], params: AgentParams } }, async (req) => {
      requireIntentsAgent(req, req.params.agent_id);
      throw new ServiceError("simulation_not_available", 501, "Simulation is not available on this server yet.");
    });
  }
}
