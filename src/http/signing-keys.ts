// Signing keys: operators create them (inside the HSM: secp256k1, non-extractable) and list them; the
// per-agent routes of the reference provision an agent's key for a chain, list an agent's keys and read
// the balance of the key the agent signs with by default. No response ever carries key material, and
// there is no export endpoint: the private key cannot leave the token. Operators grant a key to an
// agent (and revoke it) and switch keys off; see src/pipeline/resolve.ts for who may sign with what.
import { getAddress } from "viem";
import { z } from "zod";
import { appendAudit } from "../db/audit.js";
import { requireOperator, requireReader, type Principal } from "../auth/principal.js";
import type { ChainClients } from "../chains/clients.js";
import type { ChainRegistry } from "../chains/registry.js";
import { getAgent } from "../db/agents.js";
import { withTransaction, type Pool, type Queryable } from "../db/pool.js";
import { badGateway, badRequest, forbidden, notFound } from "../errors.js";
import {
  deleteGrant,
  findSigningKey,
  insertGrant,
  listGrants,
  listSigningKeys,
  lockKeyPath,
  recordSigningKey,
  setSigningKeyActive,
  type GrantRow,
  type SigningKeyRow,
} from "../db/signing-keys.js";
import { resolveSigningKey } from "../pipeline/resolve.js";
import type { Signer } from "../signer/signer.js";
import { formatMajor } from "../units.js";
import type { App } from "./types.js";
import { UUID } from "../uuid.js";
import {
  AgentParams,
  BalanceParams,
  CreateAgentSigningKeyRequest,
  CreateGrantRequest,
  CreateSigningKeyRequest,
  GrantListResponse,
  GrantParams,
  GrantResponse,
  KeyParams,
  SigningKeyBalanceResponse,
  SigningKeyListResponse,
  SigningKeyResponse,
  UpdateSigningKeyRequest,
} from "./schemas/signing-keys.js";

/** The reference's EVM family name: provisions the agent's EVM key (path …/chains/ethereum). */
const EVM_FAMILY = "ethereum";
/** Families of the reference that this service does not sign for. */
const NON_EVM_FAMILIES = new Set(["bitcoin", "solana", "xrp", "cardano", "tron"]);

const grantResponse = (key: SigningKeyRow, g: GrantRow) => ({
  key_id: key.id,
  path: key.path,
  agent_id: g.agent_id,
  granted_by: g.granted_by,
  created_at: g.created_at.toISOString(),
});

/** The key named by a route's {key}: its id, or its path (URL-encoded). 404 when there is none. */
async function findKey(db: Queryable, ref: string, lock = false): Promise<SigningKeyRow> {
  const row = await findSigningKey(db, ref, lock);
  if (!row) throw notFound("Signing key not found.");
  return row;
}
/** `chain` and `agent_id` are omitted (not null) when unset: the reference types them as plain strings. */
export function signingKeyResponse(r: SigningKeyRow): z.infer<typeof SigningKeyResponse> {
  return {
    id: r.id,
    path: r.path,
    address: getAddress(r.address),
    public_key: r.public_key,
    ...(r.chain !== null ? { chain: r.chain } : {}),
    ...(r.agent_id !== null ? { agent_id: r.agent_id } : {}),
    curve: "secp256k1",
    key_version: 1,
    is_active: r.is_active,
    created_at: r.created_at.toISOString(),
  };
}

type Deps = { pool: Pool; signer: Signer; chains: ChainRegistry; clients: ChainClients };

/**
 * Generates the key in the HSM and mirrors it in signing_keys with its audit event, in one DB
 * transaction. An advisory lock on the path serialises creators across replicas sharing the token
 * (the signer's own exists-check only covers this process). A taken path is HsmError 'key_exists' → 409.
 */
async function createSigningKey(
  deps: Deps,
  actor: Principal,
  req: { id: string; ip: string },
  path: string,
  meta: { chain: string | null; agentId: string | null },
): Promise<SigningKeyRow> {
  return withTransaction(deps.pool, async (tx) => {
    await lockKeyPath(tx, path);
    const key = await deps.signer.createKey(path);
    const row = await recordSigningKey(tx, key, meta);
    await appendAudit(tx, {
      action: "signing_key.create",
      actor,
      resourceType: "signing_key",
      resourceId: row.id,
      details: { path, address: key.address, chain: meta.chain, agent_id: meta.agentId },
      requestId: req.id,
      ip: req.ip,
    });
    return row;
  });
}

async function requireAgent(pool: Pool, agentId: string): Promise<void> {
  if (!UUID.test(agentId) || !(await getAgent(pool, agentId.toLowerCase()))) throw notFound("Agent not found.");
}

export async function signingKeyRoutes(app: App, deps: Deps): Promise<void> {
  const { pool, chains } = deps;

  app.post(
    "/v1/signing-keys",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Signing Keys"],
        summary: "Generate a signing key inside the HSM (operators)",
        body: CreateSigningKeyRequest,
        response: { 201: SigningKeyResponse },
      },
    },
    async (req, reply) => {
      const op = requireOperator(req);
      const { path } = req.body;
      let chain: string | null = null;
      if (req.body.chain !== undefined) {
        const c = chains.resolve(req.body.chain);
        if (!c)
          throw badRequest(`Unknown chain '${req.body.chain}'.`, [
            { field: "chain", message: "is not a configured chain name, alias or id" },
          ]);
        chain = c.name;
      }
      // A key under agents/{id}/ belongs to that agent; an explicit agent_id must agree with it.
      const pathAgent = path.startsWith("agents/") ? path.slice(7, 43).toLowerCase() : null;
      if (pathAgent && req.body.agent_id !== undefined && req.body.agent_id !== pathAgent) {
        throw badRequest("agent_id does not match the agent in the path.", [
          { field: "agent_id", message: "differs from the path's agent id" },
        ]);
      }
      const agentId = req.body.agent_id ?? pathAgent;
      if (agentId) await requireAgent(pool, agentId);
      const row = await createSigningKey(deps, op, req, path, { chain, agentId });
      return reply.code(201).send(signingKeyResponse(row));
    },
  );

  app.get(
    "/v1/signing-keys",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Signing Keys"], summary: "List signing keys (operators)", response: { 200: SigningKeyListResponse } },
    },
    async (req) => {
      requireOperator(req);
      return { keys: (await listSigningKeys(pool)).map(signingKeyResponse) };
    },
  );

  app.post(
    "/v1/agents/:agent_id/signing-keys",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Signing Keys"],
        summary: "Provision an agent's signing key for a chain (operators)",
        params: AgentParams,
        body: CreateAgentSigningKeyRequest,
        response: { 201: SigningKeyResponse },
      },
    },
    async (req, reply) => {
      const op = requireOperator(req);
      const agentId = req.params.agent_id.toLowerCase();
      await requireAgent(pool, agentId);
      const ref = req.body.chain.trim().toLowerCase();
      let chain: string;
      if (NON_EVM_FAMILIES.has(ref)) {
        throw badRequest(`Chain family '${ref}' is not supported; this service signs for EVM chains.`, [
          { field: "chain", message: "only EVM chains are supported" },
        ]);
      }
      const c = chains.resolve(ref);
      if (c) chain = c.name;
      else if (ref === EVM_FAMILY) chain = EVM_FAMILY;
      else
        throw badRequest(`Unknown chain '${req.body.chain}'.`, [
          { field: "chain", message: "is not a configured chain name, alias or id, nor 'ethereum'" },
        ]);
      const row = await createSigningKey(deps, op, req, `agents/${agentId}/chains/${chain}`, { chain, agentId });
      return reply.code(201).send(signingKeyResponse(row));
    },
  );

  app.get(
    "/v1/agents/:agent_id/signing-keys",
    {
      schema: {
        tags: ["Signing Keys"],
        summary: "List an agent's signing keys",
        params: AgentParams,
        response: { 200: SigningKeyListResponse },
      },
    },
    async (req) => {
      requireReader(req, req.params.agent_id);
      await requireAgent(pool, req.params.agent_id);
      return { keys: (await listSigningKeys(pool, req.params.agent_id.toLowerCase())).map(signingKeyResponse) };
    },
  );

  app.get(
    "/v1/agents/:agent_id/signing-keys/:chain/balance",
    {
      schema: {
        tags: ["Signing Keys"],
        summary: "Native balance of the key the agent signs with by default on a chain",
        params: BalanceParams,
        response: { 200: SigningKeyBalanceResponse },
      },
    },
    async (req) => {
      requireReader(req, req.params.agent_id);
      const agentId = req.params.agent_id.toLowerCase();
      await requireAgent(pool, agentId);
      const chain = chains.resolve(req.params.chain);
      if (!chain) throw notFound(`No chain '${req.params.chain}'.`);
      if (!chain.is_enabled) throw forbidden(`Chain ${chain.name} is disabled.`, "chain_disabled");
      // agents/{id}/chains/{chain} when it exists, else keys/{chain}-signer: the submission default.
      const key = await resolveSigningKey(pool, deps.signer, agentId, chain);
      let wei: bigint;
      try {
        wei = await deps.clients.get(chain).getBalance({ address: key.address });
      } catch (err) {
        // viem's errors quote the RPC URL, which may carry an API key: log only the short reason, and
        // pass no cause on (the error handler logs causes of 5xx answers).
        req.log.warn(
          { chain: chain.name, reason: (err as { shortMessage?: string }).shortMessage ?? (err as Error).name },
          "balance read failed",
        );
        throw badGateway(`Could not read the balance from chain ${chain.name}'s RPC endpoints.`, "rpc_unavailable");
      }
      return { chain: chain.name, address: key.address, balance_wei: wei.toString(), balance_display: formatMajor(wei) };
    },
  );

  app.patch(
    "/v1/signing-keys/:key",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Signing Keys"],
        summary: "Switch a signing key on or off (operators); an inactive key signs nothing",
        params: KeyParams,
        body: UpdateSigningKeyRequest,
        response: { 200: SigningKeyResponse },
      },
    },
    async (req) => {
      const op = requireOperator(req);
      return withTransaction(pool, async (tx) => {
        // The key row is locked so the audit event records the change that happened.
        const key = await findKey(tx, req.params.key, true);
        const updated = await setSigningKeyActive(tx, key.id, req.body.is_active);
        await appendAudit(tx, {
          action: "signing_key.update",
          actor: op,
          resourceType: "signing_key",
          resourceId: key.id,
          details: { path: key.path, is_active: { from: key.is_active, to: req.body.is_active } },
          requestId: req.id,
          ip: req.ip,
        });
        return signingKeyResponse(updated);
      });
    },
  );

  app.get(
    "/v1/signing-keys/:key/grants",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Signing Keys"],
        summary: "List the agents a signing key is granted to (operators)",
        params: KeyParams,
        response: { 200: GrantListResponse },
      },
    },
    async (req) => {
      requireOperator(req);
      const key = await findKey(pool, req.params.key);
      return { grants: (await listGrants(pool, key.id)).map((g) => grantResponse(key, g)) };
    },
  );

  app.post(
    "/v1/signing-keys/:key/grants",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Signing Keys"],
        summary: "Grant a signing key to an agent (operators); granting again changes nothing",
        params: KeyParams,
        body: CreateGrantRequest,
        response: { 201: GrantResponse, 200: GrantResponse },
      },
    },
    async (req, reply) => {
      const op = requireOperator(req);
      const agentId = req.body.agent_id;
      await requireAgent(pool, agentId);
      const { grant, created, key } = await withTransaction(pool, async (tx) => {
        const key = await findKey(tx, req.params.key);
        if (key.path.startsWith("agents/")) {
          throw badRequest("A key under agents/{agent_id}/ belongs to that agent and cannot be granted to another.", [
            { field: "key", message: "is a per-agent key" },
          ]);
        }
        const { grant, created } = await insertGrant(tx, key.id, agentId, `${op.type}:${op.id}`);
        if (!created) return { grant, created, key };
        await appendAudit(tx, {
          action: "signing_key.grant",
          actor: op,
          resourceType: "signing_key",
          resourceId: key.id,
          details: { path: key.path, address: key.address, agent_id: agentId },
          requestId: req.id,
          ip: req.ip,
        });
        return { grant, created, key };
      });
      return reply.code(created ? 201 : 200).send(grantResponse(key, grant));
    },
  );

  app.delete(
    "/v1/signing-keys/:key/grants/:agent_id",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Signing Keys"], summary: "Revoke an agent's grant of a signing key (operators)", params: GrantParams },
    },
    async (req, reply) => {
      const op = requireOperator(req);
      const agentId = req.params.agent_id.toLowerCase();
      if (!UUID.test(agentId)) throw notFound("Grant not found.");
      await withTransaction(pool, async (tx) => {
        const key = await findKey(tx, req.params.key);
        if (!(await deleteGrant(tx, key.id, agentId))) throw notFound("Grant not found.");
        await appendAudit(tx, {
          action: "signing_key.revoke",
          actor: op,
          resourceType: "signing_key",
          resourceId: key.id,
          details: { path: key.path, address: key.address, agent_id: agentId },
          requestId: req.id,
          ip: req.ip,
        });
      });
      return reply.code(204).send();
    },
  );
}
