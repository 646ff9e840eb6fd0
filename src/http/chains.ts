// Chains: the public, read-only view of enabled chains and the operators' /v1/admin/chains.
// Every RPC URL in every response goes through rpcOrigin (public) or redactRpcUrl (operators): the
// registry holds the *effective* URLs, which may come from CHAIN_<NAME>_RPC_URLS with API keys in them.
// Admin writes run in one DB transaction with their audit event, set managed_by = 'admin' (so chains.json
// stops overwriting the row at start) and then refresh this process's registry. Other replicas pick
// the change up at their next periodic refresh.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { appendAudit } from "../db/audit.js";
import { requireOperator } from "../auth/principal.js";
import type { ChainClients } from "../chains/clients.js";
import { redactRpcUrl, rpcOrigin, type Chain, type ChainRegistry } from "../chains/registry.js";
import {
  chainUsingIdentifier,
  deleteChain,
  insertAdminChain,
  lockChainRow,
  lockChainWrites,
  updateAdminChain,
  type ChainUpdate,
} from "../db/chains.js";
import { withTransaction, type Pool, type PoolClient } from "../db/pool.js";
import { conflict, notFound, ServiceError } from "../errors.js";
import { AdminParams, ChainListResponse, ChainParams, ChainResponse, CreateChainRequest, UpdateChainRequest } from "./schemas/chains.js";
import type { App } from "./types.js";

/** SQLSTATE unique_violation: a second chain with the same name or chain_id. */
const PG_UNIQUE_VIOLATION = "23505";

/**
 * A chain as clients see it. Public views show each RPC and websocket URL's origin only (scheme, host,
 * port); operators' views (`admin`) show the URL with its credentials redacted.
 */
export function chainResponse(c: Chain, opts: { admin?: boolean } = {}): z.infer<typeof ChainResponse> {
  const show = opts.admin ? redactRpcUrl : rpcOrigin;
  const rpc = c.rpc_urls.map(show);
  return {
    id: c.id,
    name: c.name,
    display_name: c.display_name,
    chain_id: c.chain_id,
    native_currency: c.native_currency,
    is_testnet: c.is_testnet,
    is_enabled: c.is_enabled,
    ...(rpc[0] !== undefined ? { rpc_url: rpc[0] } : {}),
    rpc_urls: rpc,
    ...(c.ws_url ? { ws_url: show(c.ws_url) } : {}),
    ...(c.explorer_url ? { explorer_url: c.explorer_url } : {}),
    eip1559: c.eip1559,
    confirmations: c.confirmations,
    aliases: c.aliases,
    max_fee_per_gas_gwei: c.max_fee_per_gas_gwei != null ? Number(c.max_fee_per_gas_gwei) : null,
    base_fee_multiple: c.base_fee_multiple != null ? Number(c.base_fee_multiple) : null,
    created_at: c.created_at.toISOString(),
    updated_at: c.updated_at.toISOString(),
  };
}

/** `rpc_url` (the reference's single URL) first, then `rpc_urls`, without duplicates. */
function mergeRpcUrls(one: string | undefined, many: string[] | undefined): string[] | undefined {
  if (one === undefined && many === undefined) return undefined;
  return [...new Set([...(one !== undefined ? [one] : []), ...(many ?? [])])];
}

/**
 * Names and aliases must stay unambiguous across chains (the registry resolves a name before an alias,
 * so a clash would silently shadow one chain). Checked under the chain-write advisory lock.
 */
async function assertIdentifiersFree(tx: PoolClient, ids: string[], selfId: string | null): Promise<void> {
  const taken = await chainUsingIdentifier(tx, ids, selfId);
  if (taken) throw conflict(`Chain ${taken} already uses one of these names or aliases: ${ids.join(", ")}.`, "chain_exists");
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === PG_UNIQUE_VIOLATION;
}

const duplicateChain = () => conflict("A chain with that name or chain_id already exists.", "chain_exists");

/** The fields an update sets, as (column, value) pairs; only whitelisted columns ever reach the SQL. */
function updateColumns(b: UpdateChainRequest, selfName: string): ChainUpdate {
  const cols: ChainUpdate = [];
  if (b.display_name !== undefined) cols.push(["display_name", b.display_name]);
  const rpc = mergeRpcUrls(b.rpc_url, b.rpc_urls);
  if (rpc !== undefined) cols.push(["rpc_urls", rpc]);
  if (b.ws_url !== undefined) cols.push(["ws_url", b.ws_url]);
  if (b.explorer_url !== undefined) cols.push(["explorer_url", b.explorer_url]);
  if (b.native_currency !== undefined) cols.push(["native_currency", b.native_currency]);
  if (b.is_testnet !== undefined) cols.push(["is_testnet", b.is_testnet]);
  if (b.is_enabled !== undefined) cols.push(["is_enabled", b.is_enabled]);
  if (b.eip1559 !== undefined) cols.push(["eip1559", b.eip1559]);
  if (b.confirmations !== undefined) cols.push(["confirmations", b.confirmations]);
  if (b.aliases !== undefined) cols.push(["aliases", [...new Set(b.aliases)].filter((a) => a !== selfName)]);
  if (b.max_fee_per_gas_gwei !== undefined) cols.push(["max_fee_per_gas_gwei", b.max_fee_per_gas_gwei]);
  if (b.base_fee_multiple !== undefined) cols.push(["base_fee_multiple", b.base_fee_multiple]);
  return cols;
}

export async function chainRoutes(app: App, deps: { pool: Pool; chains: ChainRegistry; clients: ChainClients }): Promise<void> {
  const { pool, chains } = deps;

  /** The refreshed registry's view of a chain just written (effective RPC URLs included). */
  const current = (name: string): Chain => {
    const c = chains.resolve(name);
    if (!c) throw new ServiceError("internal_error", 500, "The chain registry did not reload.");
    return c;
  };

  app.get(
    "/v1/chains",
    { config: { public: true }, schema: { tags: ["Chains"], summary: "List enabled chains", response: { 200: ChainListResponse } } },
    async () => ({ chains: chains.list().map((c) => chainResponse(c)) }),
  );

  app.get(
    "/v1/chains/:identifier",
    {
      config: { public: true },
      schema: {
        tags: ["Chains"],
        summary: "Get an enabled chain by name, alias or numeric chain id",
        params: ChainParams,
        response: { 200: ChainResponse },
      },
    },
    async (req) => {
      const c = chains.resolve(req.params.identifier);
      if (!c || !c.is_enabled) throw notFound(`No enabled chain '${req.params.identifier}'.`);
      return chainResponse(c);
    },
  );

  app.get(
    "/v1/admin/chains",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Chains"], summary: "List all chains, disabled ones included (operators)", response: { 200: ChainListResponse } },
    },
    async (req) => {
      requireOperator(req);
      return { chains: chains.list({ includeDisabled: true }).map((c) => chainResponse(c, { admin: true })) };
    },
  );

  app.post(
    "/v1/admin/chains",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Chains"], summary: "Add a chain (operators)", body: CreateChainRequest, response: { 201: ChainResponse } },
    },
    async (req, reply) => {
      const op = requireOperator(req);
      const b = req.body;
      const aliasList = [...new Set(b.aliases)].filter((a) => a !== b.name);
      const id = randomUUID();
      try {
        await withTransaction(pool, async (tx) => {
          await lockChainWrites(tx);
          await assertIdentifiersFree(tx, [b.name, ...aliasList], null);
          await insertAdminChain(tx, id, {
            name: b.name,
            display_name: b.display_name,
            chain_id: b.chain_id,
            native_currency: b.native_currency,
            is_testnet: b.is_testnet,
            is_enabled: b.is_enabled,
            rpc_urls: mergeRpcUrls(b.rpc_url, b.rpc_urls) ?? [],
            ws_url: b.ws_url ?? null,
            explorer_url: b.explorer_url ?? null,
            eip1559: b.eip1559,
            confirmations: b.confirmations,
            aliases: aliasList,
            max_fee_per_gas_gwei: null,
            base_fee_multiple: null,
          });
          // No URLs in the audit trail: an admin-supplied RPC URL may carry an API key.
          await appendAudit(tx, {
            action: "chain.create",
            actor: op,
            resourceType: "chain",
            resourceId: id,
            details: { name: b.name, chain_id: b.chain_id, is_enabled: b.is_enabled },
            requestId: req.id,
            ip: req.ip,
          });
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw duplicateChain();
        throw err;
      }
      await chains.refresh();
      return reply.code(201).send(chainResponse(current(b.name), { admin: true }));
    },
  );

  app.put(
    "/v1/admin/chains/:chain_id",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Chains"],
        summary: "Update a chain (operators); the path names it by id, numeric chain id or name",
        params: AdminParams,
        body: UpdateChainRequest,
        response: { 200: ChainResponse },
      },
    },
    async (req) => {
      const op = requireOperator(req);
      const name = await withTransaction(pool, async (tx) => {
        await lockChainWrites(tx);
        const row = await lockChainRow(tx, req.params.chain_id);
        if (!row) throw notFound(`No chain '${req.params.chain_id}'.`);
        const cols = updateColumns(req.body, row.name);
        const newAliases = cols.find(([c]) => c === "aliases")?.[1] as string[] | undefined;
        if (newAliases) await assertIdentifiersFree(tx, newAliases, row.id);
        await updateAdminChain(tx, row.id, cols);
        await appendAudit(tx, {
          action: "chain.update",
          actor: op,
          resourceType: "chain",
          resourceId: row.id,
          details: { name: row.name, chain_id: Number(row.chain_id), fields: Object.keys(req.body).sort() },
          requestId: req.id,
          ip: req.ip,
        });
        return row.name;
      });
      await chains.refresh();
      return chainResponse(current(name), { admin: true });
    },
  );

  app.delete(
    "/v1/admin/chains/:chain_id",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Chains"], summary: "Remove a chain (operators); its transactions keep the chain name", params: AdminParams },
    },
    async (req, reply) => {
      const op = requireOperator(req);
      await withTransaction(pool, async (tx) => {
        await lockChainWrites(tx);
        const row = await lockChainRow(tx, req.params.chain_id);
        if (!row) throw notFound(`No chain '${req.params.chain_id}'.`);
        await deleteChain(tx, row);
        await appendAudit(tx, {
          action: "chain.delete",
          actor: op,
          resourceType: "chain",
          resourceId: row.id,
          details: { name: row.name, chain_id: Number(row.chain_id) },
          requestId: req.id,
          ip: req.ip,
        });
      });
      await chains.refresh();
      return reply.code(204).send();
    },
  );
}
