// Transaction routes of an agent: submit, sign, list, get. The pipeline does the work; these handlers
// only check who may call and shape the query.
import { requireIntentsAgent, requireReader } from "../auth/principal.js";
import type { ChainRegistry } from "../chains/registry.js";
import type { Pool } from "../db/pool.js";
import { getTransaction, listTransactions, type ListedTx, type TxFilter } from "../db/transactions.js";
import { badRequest, notFound, simulationNotAvailable } from "../errors.js";
import type { AgentRow } from "../db/agents.js";
import { submitTransaction } from "../pipeline/submit.js";
import { parseBundle, parseSimulation, parseTransaction, type ParseContext } from "./intents.js";
import type { PipelineDeps } from "../pipeline/types.js";
import { toTransactionResponse } from "../pipeline/response.js";
import { simulateBundleRequest, simulateTransactionRequest } from "../pipeline/simulate.js";
import {
  BundleSimulationResponseSchema,
  SimulateBundleRequestSchema,
  SimulateTransactionRequestSchema,
  SimulationResponseSchema,
  TransactionRequestSchema,
} from "./schemas/transactions.js";
import { decodeCursor, listPage } from "./listing.js";
import type { App } from "./types.js";
import { withApprovals, type GateResult } from "../approvals/gate.js";
import { approvalLocation } from "./approvals.js";
import type { FastifyReply, FastifyRequest } from "fastify";
import { UUID } from "../uuid.js";
import { AgentParams, IdempotencyHeaders, ListQuery, SignedTxQuery, TxParams } from "./schemas/transactions.js";

/** Only the literal values "true" and "1" include the raw signed transaction. */
export const wantsSignedTx = (v: string | undefined) => v === "true" || v === "1";

/** The agent whose history `req` may read (itself, or any for an operator); 404 for an id that is no UUID. */
export function readableAgent(req: FastifyRequest, agentId: string): string {
  requireReader(req, agentId, { intents: true });
  if (!UUID.test(agentId)) throw notFound("Agent not found.");
  return agentId;
}

/** The pipeline's answer as it wrote it; held by approval rules, a 202 with the pending approval's Location. */
export function sendGateResult(reply: FastifyReply, result: GateResult) {
  if (result.status === 202) void reply.header("location", approvalLocation(result.body));
  return reply.code(result.status).type("application/json; charset=utf-8").send(result.body);
}

/** A page of the transaction list (an agent's, or every agent's for operators). */
export const transactionsPage = (rows: ListedTx[], limit: number, includeSignedTx: boolean) =>
  listPage("transactions", rows, limit, (r) => toTransactionResponse(r, { includeSignedTx }));

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
    after: q.cursor ? decodeCursor(q.cursor) : undefined,
  };
}

export function idempotencyKey(req: FastifyRequest): string | undefined {
  const raw = req.headers["idempotency-key"];
  if (raw === undefined) return undefined;
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (!v || v.length > 255 || !/^[\x21-\x7e]+$/.test(v)) {
    throw badRequest("Idempotency-Key must be 1 to 255 visible ASCII characters.", [{ field: "Idempotency-Key", message: "invalid" }]);
  }
  return v;
}

/** The agent acting on its own id, Intents API on: checked before the body (403 comes before 400). */
export const intentsAgentGuard = (req: FastifyRequest) => void requireIntentsAgent(req, (req.params as { agent_id: string }).agent_id);

/**
 * Submit, sign and simulate document their body schema here but parse it in the handler
 * (src/http/intents.ts): the data size cap is counted on the raw body before its shape, the approval
 * gate reads it first, and the idempotency fingerprint is taken of the body as sent, so fastify must
 * hand the body over untouched.
 */
export const validatedByPipeline = () => (data: unknown) => ({ value: data });

/** What parsing an intent needs: the agent's data size cap, else the service's. */
export const parseContext = (deps: Pick<PipelineDeps, "config">, principal: { agent: AgentRow }): ParseContext => ({
  agent: principal.agent,
  maxDataBytes: deps.config?.maxDataBytes,
});

export async function transactionRoutes(app: App, deps: PipelineDeps & { pool: Pool; chains: ChainRegistry }): Promise<void> {
  for (const mode of ["submit", "sign"] as const) {
    app.post(
      mode === "submit" ? "/v1/agents/:agent_id/transactions" : "/v1/agents/:agent_id/transactions/sign",
      {
        schema: {
          tags: ["Transactions"],
          summary: mode === "submit" ? "Sign and broadcast a transaction" : "Sign a transaction without broadcasting it",
          params: AgentParams,
          headers: IdempotencyHeaders,
          body: TransactionRequestSchema,
        },
        config: { guard: intentsAgentGuard },
        validatorCompiler: validatedByPipeline,
      },
      async (req, reply) => {
        const principal = requireIntentsAgent(req, req.params.agent_id);
        // Approval rules may hold it for operators (202 + Location), src/approvals/gate.ts.
        const result = await withApprovals(
          deps,
          {
            principal,
            body: req.body,
            mode,
            idempotencyKey: idempotencyKey(req),
            requestId: req.id,
            ip: req.ip,
          },
          mode === "sign" ? "transaction.sign" : "transaction.submit",
          (input) => submitTransaction(deps, { ...input, intent: parseTransaction(input.body, parseContext(deps, principal)) }),
        );
        return sendGateResult(reply, result);
      },
    );
  }

  app.get(
    "/v1/agents/:agent_id/transactions",
    {
      schema: {
        tags: ["Transactions"],
        summary: "List the agent's transactions, newest first",
        params: AgentParams,
        querystring: ListQuery,
      },
    },
    async (req) => {
      const agentId = readableAgent(req, req.params.agent_id);
      const rows = await listTransactions(deps.pool, toFilter(deps.chains, req.query, agentId));
      return transactionsPage(rows, req.query.limit, wantsSignedTx(req.query.include_signed_tx));
    },
  );

  app.get(
    "/v1/agents/:agent_id/transactions/:tx_id",
    {
      schema: {
        tags: ["Transactions"],
        summary: "Get one transaction",
        params: TxParams,
        querystring: SignedTxQuery,
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

  // Simulation: 200 whenever the simulation ran (a revert is `status: "reverted"`, a simulator failure
  // `status: "error"`); 400/403/404 like submit.
  const simulationDeps = () => {
    if (!deps.simulators) throw simulationNotAvailable();
    return {
      pool: deps.pool,
      signer: deps.signer,
      chains: deps.chains,
      simulators: deps.simulators,
      log: deps.log,
      keyAccess: deps.keyAccess,
    };
  };
  app.post(
    "/v1/agents/:agent_id/transactions/simulate",
    {
      schema: {
        tags: ["Simulation"],
        summary: "Simulate a transaction (no signature, no nonce, the chain untouched)",
        params: AgentParams,
        body: SimulateTransactionRequestSchema,
        response: { 200: SimulationResponseSchema },
      },
      config: { guard: intentsAgentGuard },
      validatorCompiler: validatedByPipeline,
    },
    async (req) => {
      const principal = requireIntentsAgent(req, req.params.agent_id);
      const requests = parseSimulation(req.body, parseContext(deps, principal));
      return simulateTransactionRequest(simulationDeps(), { principal, requests, requestId: req.id, ip: req.ip });
    },
  );
  app.post(
    "/v1/agents/:agent_id/transactions/simulate-bundle",
    {
      schema: {
        tags: ["Simulation"],
        summary: "Simulate transactions in order, each seeing the state the previous ones left",
        params: AgentParams,
        body: SimulateBundleRequestSchema,
        response: { 200: BundleSimulationResponseSchema },
      },
      config: { guard: intentsAgentGuard },
      validatorCompiler: validatedByPipeline,
    },
    async (req) => {
      const principal = requireIntentsAgent(req, req.params.agent_id);
      const requests = parseBundle(req.body, parseContext(deps, principal));
      return simulateBundleRequest(simulationDeps(), { principal, requests, requestId: req.id, ip: req.ip });
    },
  );
}
