// Agents: operators create, read, update (guardrails included), rotate and delete them; an agent may
// read itself. Agents never change their own guardrails.
import { randomUUID } from "node:crypto";
import { guardrailAnswer, guardrailColumns } from "../agents/guardrail-fields.js";
import type { FastifyRequest } from "fastify";
import type { Principal } from "../auth/principal.js";
import { appendAudit, type AuditAction } from "../db/audit.js";
import { AGENT_KEY_PREFIX, generateApiKey, hashApiKey } from "../auth/keys.js";
import { requireOperator, requirePrincipal, requireReader } from "../auth/principal.js";
import {
  getAgent,
  insertAgent,
  listAgents,
  rotateAgentKey,
  softDeleteAgent,
  spendToday,
  tokenSpendToday,
  updateAgent,
  type AgentRow,
  type AgentWritable,
} from "../db/agents.js";
import { withTransaction, type Pool, type PoolClient } from "../db/pool.js";
import { badRequest, forbidden, notFound } from "../errors.js";
import { unknownCalldataOf } from "../pipeline/token-guardrails.js";
import { formatMajor } from "../units.js";
import type { App } from "./types.js";
import { UUID } from "../uuid.js";
import { AgentParams, CreateAgentRequest, UpdateAgentRequest, type GuardrailInput } from "./schemas/agents.js";

const agentOrNotFound = async (pool: Pool, id: string) => {
  const a = UUID.test(id) ? await getAgent(pool, id) : undefined;
  if (!a) throw notFound("Agent not found.");
  return a;
};

/**
 * An operator's change to one agent and its audit event, in one transaction; 404 when `change` finds
 * no agent (undefined or false).
 */
async function changeAgent<T>(
  pool: Pool,
  req: FastifyRequest,
  change: (tx: PoolClient) => Promise<T | undefined | false>,
  e: { actor: Principal; action: AuditAction; agentId: string; details?: (r: T) => Record<string, unknown> },
): Promise<T> {
  return withTransaction(pool, async (tx) => {
    const r = await change(tx);
    if (r === undefined || r === false) throw notFound("Agent not found.");
    await appendAudit(tx, {
      action: e.action,
      actor: e.actor,
      resourceType: "agent",
      resourceId: e.agentId,
      details: e.details?.(r),
      requestId: req.id,
      ip: req.ip,
    });
    return r;
  });
}

/** Request fields → columns, folding the deprecated `_eth` aliases into their canonical names. */
function toWritable(b: GuardrailInput): AgentWritable {
  const r = guardrailColumns(b);
  if (!r.ok) {
    const { wire, alias } = r.field;
    throw badRequest(`${wire} and ${alias} disagree; send one of them.`, [{ field: alias!, message: `differs from ${wire}` }]);
  }
  return { name: b.name, is_active: b.is_active, ...r.columns };
}

export async function agentResponse(pool: Pool, a: AgentRow) {
  const [spent, tokenSpent] = await Promise.all([spendToday(pool, a.id), tokenSpendToday(pool, a.id)]);
  const decimals = new Map(
    (
      await pool.query<{ address: string; decimals: number }>(
        "SELECT DISTINCT ON (address) address, decimals FROM token_metadata WHERE address = ANY($1)",
        [[...tokenSpent.keys()]],
      )
    ).rows.map((r) => [r.address, r.decimals]),
  );
  const { rows } = await pool.query<{ chain: string }>(
    "SELECT DISTINCT chain FROM signing_keys WHERE agent_id = $1 AND chain IS NOT NULL AND is_active ORDER BY chain",
    [a.id],
  );
  const spentMajor = formatMajor(spent.spent_wei);
  return {
    id: a.id,
    name: a.name,
    auth_method: "api_key" as const,
    is_active: a.is_active,
    shroud_enabled: false,
    // The stored fields (src/agents/guardrail-fields.ts).
    ...guardrailAnswer(a),
    tx_spent_today: spentMajor,
    tx_spent_today_eth: spentMajor,
    tx_spent_today_by_chain: { evm: spentMajor },
    tx_count_today: spent.count_today,
    // The worst-case fees signed in the last 24 h.
    tx_fees_spent_today: formatMajor(spent.fees_wei),
    // The policy in force; tx_unknown_calldata_default says whether it is the default (no explicit value).
    tx_unknown_calldata: unknownCalldataOf(a),
    tx_unknown_calldata_default: a.tx_unknown_calldata === null,
    // Token amounts sent in the last 24 h, in token units (base units when the decimals are unknown).
    tx_token_spent_today: Object.fromEntries(
      [...tokenSpent].map(([t, v]) => [t, decimals.has(t) ? formatMajor(v, decimals.get(t)!) : v.toString()]),
    ),
    signing_chains: rows.map((r) => r.chain),
    created_at: a.created_at.toISOString(),
    ...(a.last_active_at ? { last_active_at: a.last_active_at.toISOString() } : {}),
  };
}

export async function agentRoutes(app: App, deps: { pool: Pool }): Promise<void> {
  const { pool } = deps;

  app.post(
    "/v1/agents",
    { config: { operatorOnly: true }, schema: { tags: ["Agents"], summary: "Create an agent (operators)", body: CreateAgentRequest } },
    async (req, reply) => {
      const op = requireOperator(req);
      const apiKey = generateApiKey(AGENT_KEY_PREFIX);
      const id = randomUUID();
      const fields = { ...toWritable(req.body), name: req.body.name };
      const agent = await changeAgent(pool, req, (tx) => insertAgent(tx, id, hashApiKey(apiKey), fields), {
        actor: op,
        action: "agent.create",
        agentId: id,
        details: (a) => ({ name: a.name, intents_api_enabled: a.intents_api_enabled }),
      });
      return reply.code(201).send({ agent: await agentResponse(pool, agent), api_key: apiKey });
    },
  );

  app.get(
    "/v1/agents",
    { config: { operatorOnly: true }, schema: { tags: ["Agents"], summary: "List agents (operators)" } },
    async (req) => {
      requireOperator(req);
      const agents = await listAgents(pool);
      return { agents: await Promise.all(agents.map((a) => agentResponse(pool, a))) };
    },
  );

  app.get("/v1/agents/me", { schema: { tags: ["Agents"], summary: "The calling agent" } }, async (req) => {
    const p = requirePrincipal(req);
    if (p.type !== "agent") throw forbidden("Only an agent has a /me.");
    const a = await getAgent(pool, p.id);
    if (!a) throw notFound("Agent not found.");
    // org_id: this installation's one organization (AgentSelfResponse requires it).
    const { rows } = await pool.query<{ org_id: string }>("SELECT org_id FROM installation");
    return { ...(await agentResponse(pool, a)), org_id: rows[0].org_id };
  });

  app.get("/v1/agents/:agent_id", { schema: { tags: ["Agents"], summary: "Get an agent", params: AgentParams } }, async (req) => {
    requireReader(req, req.params.agent_id);
    return agentResponse(pool, await agentOrNotFound(pool, req.params.agent_id));
  });

  app.patch(
    "/v1/agents/:agent_id",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Agents"],
        summary: "Update an agent and its guardrails (operators)",
        params: AgentParams,
        body: UpdateAgentRequest,
      },
    },
    async (req) => {
      const op = requireOperator(req);
      const w = toWritable(req.body); // undefined leaves a column alone; null clears it
      await agentOrNotFound(pool, req.params.agent_id);
      const agent = await changeAgent(pool, req, (tx) => updateAgent(tx, req.params.agent_id, w), {
        actor: op,
        action: "agent.update",
        agentId: req.params.agent_id,
        details: () => ({ fields: Object.keys(req.body).sort() }),
      });
      return agentResponse(pool, agent);
    },
  );

  app.delete(
    "/v1/agents/:agent_id",
    { config: { operatorOnly: true }, schema: { tags: ["Agents"], summary: "Delete an agent (operators)", params: AgentParams } },
    async (req, reply) => {
      const op = requireOperator(req);
      await agentOrNotFound(pool, req.params.agent_id);
      await changeAgent(pool, req, (tx) => softDeleteAgent(tx, req.params.agent_id), {
        actor: op,
        action: "agent.delete",
        agentId: req.params.agent_id,
      });
      return reply.code(204).send();
    },
  );

  app.post(
    "/v1/agents/:agent_id/rotate-key",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Agents"], summary: "Replace the agent's API key and revoke its tokens (operators)", params: AgentParams },
    },
    async (req) => {
      const op = requireOperator(req);
      await agentOrNotFound(pool, req.params.agent_id);
      const apiKey = generateApiKey(AGENT_KEY_PREFIX);
      await changeAgent(pool, req, (tx) => rotateAgentKey(tx, req.params.agent_id, hashApiKey(apiKey)), {
        actor: op,
        action: "agent.rotate_key",
        agentId: req.params.agent_id,
      });
      return { api_key: apiKey, agent_id: req.params.agent_id };
    },
  );
}
