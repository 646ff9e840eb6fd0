// Agents: operators create, read, update (guardrails included), rotate and delete them; an agent may
// read itself. Agents never change their own guardrails.
import { randomUUID } from "node:crypto";
import { appendAudit } from "../db/audit.js";
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
import { withTransaction, type Pool } from "../db/pool.js";
import { badRequest, forbidden, notFound } from "../errors.js";
import { unknownCalldataOf } from "../pipeline/token-guardrails.js";
import { formatMajor, parseMajor } from "../units.js";
import type { App } from "./types.js";
import { UUID } from "../uuid.js";
import { AgentParams, CreateAgentRequest, UpdateAgentRequest, type GuardrailInput } from "./schemas/agents.js";

const agentOrNotFound = async (pool: Pool, id: string) => {
  const a = UUID.test(id) ? await getAgent(pool, id) : undefined;
  if (!a) throw notFound("Agent not found.");
  return a;
};

/** Request fields → columns, folding the deprecated `_eth` aliases into their canonical names. */
function toWritable(b: GuardrailInput): AgentWritable {
  const alias = (canonical: string | null | undefined, legacy: string | null | undefined, name: string) => {
    if (canonical !== undefined && legacy !== undefined && canonical !== legacy) {
      throw badRequest(`${name} and ${name}_eth disagree; send one of them.`, [{ field: `${name}_eth`, message: `differs from ${name}` }]);
    }
    const v = canonical !== undefined ? canonical : legacy;
    return v === undefined ? undefined : v === null ? null : parseMajor(v)!.toString();
  };
  const w: AgentWritable = {
    name: b.name,
    description: b.description,
    scopes: b.scopes,
    is_active: b.is_active,
    intents_api_enabled: b.intents_api_enabled,
    tx_to_allowlist: b.tx_to_allowlist,
    tx_max_value_wei: alias(b.tx_max_value, b.tx_max_value_eth, "tx_max_value"),
    tx_daily_limit_wei: alias(b.tx_daily_limit, b.tx_daily_limit_eth, "tx_daily_limit"),
    tx_max_per_day: b.tx_max_per_day,
    tx_allowed_chains: b.tx_allowed_chains,
    tx_token_allowlist: b.tx_token_allowlist,
    token_ttl_seconds: b.token_ttl_seconds,
    api_key_expires_at:
      b.api_key_expires_at === undefined ? undefined : b.api_key_expires_at === null ? null : new Date(b.api_key_expires_at),
    expires_at: b.expires_at === undefined ? undefined : b.expires_at === null ? null : new Date(b.expires_at),
    simulate_required: b.simulate_required,
    tx_unknown_calldata: b.tx_unknown_calldata,
    tx_token_limits: b.tx_token_limits,
    tx_unlimited_approval_allowlist: b.tx_unlimited_approval_allowlist,
    requests_per_minute: b.requests_per_minute,
    tx_max_data_bytes: b.tx_max_data_bytes,
    tx_max_fee_wei: b.tx_max_fee === undefined ? undefined : b.tx_max_fee === null ? null : parseMajor(b.tx_max_fee)!.toString(),
    tx_daily_fee_budget_wei:
      b.tx_daily_fee_budget === undefined
        ? undefined
        : b.tx_daily_fee_budget === null
          ? null
          : parseMajor(b.tx_daily_fee_budget)!.toString(),
    tx_max_gas_limit: b.tx_max_gas_limit === undefined ? undefined : b.tx_max_gas_limit === null ? null : String(b.tx_max_gas_limit),
    shared_signer: b.shared_signer,
    typed_data_unknown: b.typed_data_unknown,
    siwe_domain_allowlist: b.siwe_domain_allowlist,
    verifying_contract_allowlist: b.verifying_contract_allowlist,
    raw_signing_enabled: b.raw_signing_enabled,
    eip7702_delegate_allowlist: b.eip7702_delegate_allowlist,
    eip7702_allow_chain_id_zero: b.eip7702_allow_chain_id_zero,
    sign_max_validity_seconds: b.sign_max_validity_seconds,
  };
  return w;
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
  const maxValue = a.tx_max_value_wei !== null ? formatMajor(BigInt(a.tx_max_value_wei)) : undefined;
  const daily = a.tx_daily_limit_wei !== null ? formatMajor(BigInt(a.tx_daily_limit_wei)) : undefined;
  const spentMajor = formatMajor(spent.spent_wei);
  return {
    id: a.id,
    name: a.name,
    description: a.description ?? "", // a string always: the SDKs type it as required
    auth_method: "api_key" as const,
    scopes: a.scopes,
    is_active: a.is_active,
    intents_api_enabled: a.intents_api_enabled,
    shroud_enabled: false,
    tx_to_allowlist: a.tx_to_allowlist,
    ...(maxValue !== undefined ? { tx_max_value: maxValue, tx_max_value_eth: maxValue } : {}),
    ...(daily !== undefined ? { tx_daily_limit: daily, tx_daily_limit_eth: daily } : {}),
    tx_spent_today: spentMajor,
    tx_spent_today_eth: spentMajor,
    tx_spent_today_by_chain: { evm: spentMajor },
    tx_count_today: spent.count_today,
    // Fee limits and the worst-case fees signed in the last 24 h (null: no limit).
    tx_max_fee: a.tx_max_fee_wei !== null ? formatMajor(BigInt(a.tx_max_fee_wei)) : null,
    tx_daily_fee_budget: a.tx_daily_fee_budget_wei !== null ? formatMajor(BigInt(a.tx_daily_fee_budget_wei)) : null,
    tx_fees_spent_today: formatMajor(spent.fees_wei),
    tx_max_gas_limit: a.tx_max_gas_limit !== null ? Number(a.tx_max_gas_limit) : null,
    tx_max_per_day: a.tx_max_per_day,
    tx_allowed_chains: a.tx_allowed_chains,
    tx_token_allowlist: a.tx_token_allowlist,
    token_ttl_seconds: a.token_ttl_seconds,
    api_key_expires_at: a.api_key_expires_at?.toISOString() ?? null,
    simulate_required: a.simulate_required,
    // The policy in force; tx_unknown_calldata_default says whether it is the default (no explicit value).
    tx_unknown_calldata: unknownCalldataOf(a),
    tx_unknown_calldata_default: a.tx_unknown_calldata === null,
    tx_token_limits: a.tx_token_limits,
    tx_unlimited_approval_allowlist: a.tx_unlimited_approval_allowlist,
    requests_per_minute: a.requests_per_minute,
    tx_max_data_bytes: a.tx_max_data_bytes,
    shared_signer: a.shared_signer,
    // Token amounts sent in the last 24 h, in token units (base units when the decimals are unknown).
    tx_token_spent_today: Object.fromEntries(
      [...tokenSpent].map(([t, v]) => [t, decimals.has(t) ? formatMajor(v, decimals.get(t)!) : v.toString()]),
    ),
    typed_data_unknown: a.typed_data_unknown,
    siwe_domain_allowlist: a.siwe_domain_allowlist,
    verifying_contract_allowlist: a.verifying_contract_allowlist,
    raw_signing_enabled: a.raw_signing_enabled,
    eip7702_delegate_allowlist: a.eip7702_delegate_allowlist,
    eip7702_allow_chain_id_zero: a.eip7702_allow_chain_id_zero,
    sign_max_validity_seconds: a.sign_max_validity_seconds,
    signing_chains: rows.map((r) => r.chain),
    created_at: a.created_at.toISOString(),
    ...(a.expires_at ? { expires_at: a.expires_at.toISOString() } : {}),
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
      const agent = await withTransaction(pool, async (tx) => {
        const a = await insertAgent(tx, id, hashApiKey(apiKey), fields);
        await appendAudit(tx, {
          action: "agent.create",
          actor: op,
          resourceType: "agent",
          resourceId: id,
          details: { name: a.name, intents_api_enabled: a.intents_api_enabled },
          requestId: req.id,
          ip: req.ip,
        });
        return a;
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
      const agent = await withTransaction(pool, async (tx) => {
        const a = await updateAgent(tx, req.params.agent_id, w);
        if (!a) throw notFound("Agent not found.");
        await appendAudit(tx, {
          action: "agent.update",
          actor: op,
          resourceType: "agent",
          resourceId: a.id,
          details: { fields: Object.keys(req.body).sort() },
          requestId: req.id,
          ip: req.ip,
        });
        return a;
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
      await withTransaction(pool, async (tx) => {
        if (!(await softDeleteAgent(tx, req.params.agent_id))) throw notFound("Agent not found.");
        await appendAudit(tx, {
          action: "agent.delete",
          actor: op,
          resourceType: "agent",
          resourceId: req.params.agent_id,
          requestId: req.id,
          ip: req.ip,
        });
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
      await withTransaction(pool, async (tx) => {
        const a = await rotateAgentKey(tx, req.params.agent_id, hashApiKey(apiKey));
        if (!a) throw notFound("Agent not found.");
        await appendAudit(tx, {
          action: "agent.rotate_key",
          actor: op,
          resourceType: "agent",
          resourceId: a.id,
          requestId: req.id,
          ip: req.ip,
        });
      });
      return { api_key: apiKey, agent_id: req.params.agent_id };
    },
  );
}
