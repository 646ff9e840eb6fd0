// /v1/auth/api-keys: operators create (named; the key is in the 201 body only), list and revoke
// operator keys. The shapes follow the 1Claw SDK's ApiKeysResource (createApiKey, listApiKeys,
// revokeApiKey); scopes are not supported (every operator key is a full operator).
import { requireOperator } from "../auth/principal.js";
import { createOperatorKey, listOperatorKeys, revokeOperatorKey } from "../auth/operator-keys.js";
import type { Pool } from "../db/pool.js";
import { badRequest } from "../errors.js";
import type { App } from "./types.js";
import { ApiKeyListResponse, CreateApiKeyRequest, CreateApiKeyResponse, KeyParams } from "./schemas/operator-keys.js";

export async function operatorKeyRoutes(app: App, deps: { pool: Pool }): Promise<void> {
  app.post(
    "/v1/auth/api-keys",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Auth"],
        summary: "Create an operator key (the full key is in this response only)",
        body: CreateApiKeyRequest,
        response: { 201: CreateApiKeyResponse },
      },
    },
    async (req, reply) => {
      const actor = requireOperator(req);
      const expiresAt = req.body.expires_at ? new Date(req.body.expires_at) : undefined;
      if (expiresAt && expiresAt.getTime() <= Date.now()) {
        throw badRequest("expires_at must be in the future.", [{ field: "expires_at", message: "is in the past" }]);
      }
      const out = await createOperatorKey(deps.pool, { name: req.body.name, expiresAt, actor, requestId: req.id, ip: req.ip });
      return reply.code(201).send(out);
    },
  );

  app.get(
    "/v1/auth/api-keys",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Auth"],
        summary: "List operator keys (prefix, name, created, last used; never the key)",
        response: { 200: ApiKeyListResponse },
      },
    },
    async (req) => {
      requireOperator(req);
      return { keys: await listOperatorKeys(deps.pool) };
    },
  );

  app.delete(
    "/v1/auth/api-keys/:key_id",
    {
      config: { operatorOnly: true },
      schema: { tags: ["Auth"], summary: "Revoke an operator key (refused for the last active one)", params: KeyParams },
    },
    async (req, reply) => {
      const actor = requireOperator(req);
      await revokeOperatorKey(deps.pool, req.params.key_id.toLowerCase(), { actor, requestId: req.id, ip: req.ip });
      return reply.code(204).send();
    },
  );
}
