// The official 1Claw TypeScript SDK (@1claw/sdk 0.53.3) as a test suite: every SDK method that maps
// to an endpoint this service offers is called against the real stack (PostgreSQL, SoftHSM, anvil,
// the service on a free port), each request typed and checked against the SDK's declared types, each
// response checked against the SDK's .d.ts and the reference API description.
//
// Methods exercised: auth.agentToken, auth.apiKeyToken, auth.logout, createClient({ apiKey: "1ck_…" })
// and ({ apiKey: "ocv_…", agentId? }) token exchanges; agents.create, list, get, getSelf, update,
// rotateKey, delete, submitTransaction (idempotent replay), getTransaction and listTransactions (with
// and without includeSignedTx), signTransaction, simulateTransaction, simulateBundle, sign (expected
// to fail until POST /v1/agents/{id}/sign exists); signingKeys.create, list, getBalance; chains.list,
// get, adminList, create, update, delete; audit.query, audit.verify; webhooks.create, list, delete;
// http.post/get (typed errors:
// ValidationError.fields, AuthError, NotFoundError).
// Left out, because this service has no such endpoint: signingKeys.rotate/deactivate/export/importKey
// (keys live in the HSM and are not exported or rotated in place), agents.enroll, batchDelete,
// generateEoa, smart accounts, bankr keys, delegations, rotateSigner; webhooks.get and update (no
// GET/PATCH /v1/webhooks/{id} here); apiKeys (operator keys API, not part of this suite); everything outside
// agents, transactions, chains, keys, audit and auth (vaults, secrets, billing, …).
import { beforeAll, describe, expect, it, vi } from "vitest";
import type * as S from "../../../shared/vendor/1claw-sdk/dist/types.js";
import { useService } from "../helpers/use-service.js";
import { failed, ok } from "./helpers.js";
import { assertMatchesSdkType, loadSdk, sdkRequired } from "./sdk-types.js";

const sdk = await loadSdk();
const DEAD = "0x000000000000000000000000000000000000dEaD";

/** A request body typed with the SDK's own type, checked at run time against its .d.ts as well. */
function req<T>(sdkType: string, body: T): T {
  assertMatchesSdkType(sdkType, body);
  return body;
}

describe("the official 1Claw SDK against this service", () => {
  const svc = useService({ listen: true });
  const opKey = svc.op;
  let baseUrl: string;
  let operator: InstanceType<typeof sdk.OneclawClient>;
  let agentId: string;
  let agentKey: string;
  let agent: InstanceType<typeof sdk.OneclawClient>;
  const signedCount = async () =>
    Number((await svc.ctx.pool.query("SELECT count(*) FROM transactions WHERE signed_tx IS NOT NULL")).rows[0].count);

  beforeAll(async () => {
    baseUrl = svc.baseUrl;
    operator = sdk.createClient({ baseUrl, token: opKey });
  });

  it("reads its required fields from the SDK's .d.ts (the checker follows the SDK, not a copy)", () => {
    expect(sdkRequired("SimulationResponse")).toEqual(
      expect.arrayContaining(["simulation_id", "status", "gas_used", "balance_changes", "simulated_at"]),
    );
    expect(sdkRequired("AgentSelfResponse")).toEqual(expect.arrayContaining(["description", "org_id"]));
    expect(() =>
      assertMatchesSdkType("SimulationResponse", { simulation_id: "x", status: "error", balance_changes: [], simulated_at: "t" }),
    ).toThrow(/gas_used/);
  });

  it("operators: agents.create, list, get, update through the SDK", async () => {
    const created = ok<S.AgentCreatedResponse>(
      await operator.agents.create(
        req<S.CreateAgentRequest>("CreateAgentRequest", { name: "sdk-agent", description: "made by the SDK", intents_api_enabled: true }),
      ),
      "AgentCreatedResponse",
    );
    agentId = created.agent.id;
    agentKey = created.api_key!;
    expect(agentKey).toMatch(/^ocv_/);
    expect(created.agent.description).toBe("made by the SDK");

    const bare = ok<S.AgentCreatedResponse>(
      await operator.agents.create(req<S.CreateAgentRequest>("CreateAgentRequest", { name: "no-description" })),
      "AgentCreatedResponse",
    );
    const got = ok<S.AgentResponse>(await operator.agents.get(bare.agent.id), "AgentResponse");
    expect(got.description).toBe(""); // unset, but present: the SDK types it as a required string

    const list = ok<S.AgentListResponse>(await operator.agents.list(), "AgentListResponse");
    expect(list.agents.map((a) => a.id)).toEqual(expect.arrayContaining([agentId, bare.agent.id]));

    const updated = ok<S.AgentResponse>(
      await operator.agents.update(agentId, req<S.UpdateAgentRequest>("UpdateAgentRequest", { tx_max_value: "1", tx_daily_limit: "5" })),
      "AgentResponse",
    );
    expect(updated).toMatchObject({ tx_max_value: "1", tx_daily_limit: "5", intents_api_enabled: true });
    agent = sdk.createClient({ baseUrl, apiKey: agentKey, agentId });
  });

  it("agents sign in with their key (with and without agentId) and read themselves", async () => {
    const self = ok<S.AgentSelfResponse>(await agent.agents.getSelf(), "AgentSelfResponse");
    expect(self).toMatchObject({ id: agentId, name: "sdk-agent", description: "made by the SDK", intents_api_enabled: true });
    expect(self.org_id).toMatch(/^[0-9a-f-]{36}$/);
    // Key-only: the SDK resolves the agent id from the token response.
    const keyOnly = sdk.createClient({ baseUrl, apiKey: agentKey });
    expect(ok<S.AgentSelfResponse>(await keyOnly.agents.getSelf(), "AgentSelfResponse").id).toBe(agentId);
    // The explicit exchange, as auth.agentToken.
    const explicit = sdk.createClient({ baseUrl });
    const tok = ok<S.TokenResponse>(
      await explicit.auth.agentToken(req("AgentTokenRequest", { api_key: agentKey, agent_id: agentId })),
      "TokenResponse",
    );
    expect(tok).toMatchObject({ token_type: "Bearer", expires_in: expect.any(Number) });
    expect(ok<S.AgentSelfResponse>(await explicit.agents.getSelf(), "AgentSelfResponse").id).toBe(agentId);
  });

  it("submits by chain name and by chain id, replays idempotently, and reads back with and without signed_tx", async () => {
    const body = req<S.SubmitTransactionRequest>("SubmitTransactionRequest", { to: DEAD, value: "0.001", chain: "local" });
    const first = await agent.agents.submitTransaction(agentId, body, { idempotencyKey: "sdk-replay-1" });
    expect(first.meta?.status).toBe(201);
    const tx = ok<S.TransactionResponse>(first, "TransactionResponse");
    expect(tx.status).toBe("broadcast");
    expect(tx.signed_tx).toMatch(/^0x/);
    const replay = await agent.agents.submitTransaction(agentId, body, { idempotencyKey: "sdk-replay-1" });
    expect(replay.meta?.status).toBe(200);
    expect(ok(replay, "TransactionResponse")).toEqual(tx);

    const byId = ok<S.TransactionResponse>(
      await agent.agents.submitTransaction(
        agentId,
        req<S.SubmitTransactionRequest>("SubmitTransactionRequest", { to: DEAD, value: "0.002", chain: "31337" }),
      ),
      "TransactionResponse",
    );
    expect(byId).toMatchObject({ chain: "local", chain_id: 31337 });

    const plain = ok<S.TransactionResponse>(await agent.agents.getTransaction(agentId, tx.id), "TransactionResponse");
    expect(plain.signed_tx).toBeUndefined();
    const withSigned = ok<S.TransactionResponse>(
      await agent.agents.getTransaction(agentId, tx.id, { includeSignedTx: true }),
      "TransactionResponse",
    );
    expect(withSigned.signed_tx).toBe(tx.signed_tx);

    const list = ok<S.TransactionListResponse>(await agent.agents.listTransactions(agentId), "TransactionListResponse");
    expect(list.transactions.map((t) => t.id)).toEqual(expect.arrayContaining([tx.id, byId.id]));
    expect(list.transactions.every((t) => t.signed_tx === undefined)).toBe(true);
    const listSigned = ok<S.TransactionListResponse>(
      await agent.agents.listTransactions(agentId, { includeSignedTx: true }),
      "TransactionListResponse",
    );
    expect(listSigned.transactions.find((t) => t.id === tx.id)?.signed_tx).toBe(tx.signed_tx);
  });

  it("signs without broadcasting", async () => {
    const r = ok<S.SignTransactionResponse>(
      await agent.agents.signTransaction(
        agentId,
        req<S.SignTransactionRequest>("SignTransactionRequest", { to: DEAD, value: "0.001", chain: "local" }),
      ),
      "SignTransactionResponse",
    );
    expect(r.status).toBe("sign_only");
    expect(r.signed_tx).toMatch(/^0x/);
  });

  it("simulates one transaction and a bundle; a simulation that cannot run still reports gas_used", async () => {
    const sim = ok<S.SimulationResponse>(
      await agent.agents.simulateTransaction(
        agentId,
        req<S.SimulateTransactionRequest>("SimulateTransactionRequest", {
          to: DEAD,
          value: "0.01",
          chain: "local",
        } as S.SimulateTransactionRequest),
      ),
      "SimulationResponse",
    );
    expect(sim).toMatchObject({ status: "success", gas_used: 21000 });
    const bundle = ok<S.BundleSimulationResponse>(
      await agent.agents.simulateBundle(
        agentId,
        req<S.SimulateBundleRequest>("SimulateBundleRequest", {
          transactions: [
            { to: DEAD, value: "0.01", chain: "local" },
            { to: DEAD, value: "0.02", chain: "local" },
          ] as S.SimulateBundleRequest["transactions"],
        }),
      ),
      "BundleSimulationResponse",
    );
    expect(bundle.simulations.map((s) => s.status)).toEqual(["success", "success"]);
    // More than the signer holds: the simulator cannot run it (status error), gas_used is still a number.
    ok<S.AgentResponse>(
      await operator.agents.update(agentId, { tx_max_value: null as unknown as string, tx_daily_limit: null as unknown as string }),
      "AgentResponse",
    );
    const broke = ok<S.SimulationResponse>(
      await agent.agents.simulateTransaction(agentId, { to: DEAD, value: "100000000", chain: "local" } as S.SimulateTransactionRequest),
      "SimulationResponse",
    );
    expect(broke.status).toBe("error");
    expect(typeof broke.gas_used).toBe("number");
  });

  it("agents.sign signs a personal_sign message (POST /v1/agents/{id}/sign; every intent type is in test/intents/sdk.test.ts)", async () => {
    const signed = ok<S.SignIntentResponse>(
      await agent.agents.sign(
        agentId,
        req<S.SignIntentRequest>("SignIntentRequest", { intent_type: "personal_sign", chain: "local", message: "hello" }),
      ),
      "SignIntentResponse",
      "SignIntentResponse",
    );
    expect(signed.signature).toMatch(/^0x[0-9a-f]{130}$/);
  });

  it("chains: list and get publicly, admin list/create/update/delete for operators", async () => {
    const anon = sdk.createClient({ baseUrl });
    const list = ok<S.ChainListResponse>(await anon.chains.list(), "ChainListResponse");
    expect(list.chains.some((c) => c.name === "local")).toBe(true);
    expect(ok<S.ChainResponse>(await anon.chains.get("local"), "ChainResponse").chain_id).toBe(31337);
    expect(ok<S.ChainResponse>(await anon.chains.get("31337"), "ChainResponse").name).toBe("local");
    ok<S.ChainListResponse>(await operator.chains.adminList(), "ChainListResponse");
    const created = ok<S.ChainResponse>(
      await operator.chains.create(
        req<S.CreateChainRequest>("CreateChainRequest", {
          name: "sdk-chain",
          display_name: "SDK chain",
          chain_id: 990001,
          rpc_url: "http://127.0.0.1:1",
          native_currency: "ETH",
        }),
      ),
      "ChainResponse",
    );
    const updated = ok<S.ChainResponse>(await operator.chains.update(created.name, { display_name: "SDK chain 2" }), "ChainResponse");
    expect(updated.display_name).toBe("SDK chain 2");
    const del = await operator.chains.delete(created.name);
    expect(del.error).toBeNull();
    expect(failed(await anon.chains.get("sdk-chain"))).toBe(404);
  });

  it("signing keys: create, list and balance for an agent", async () => {
    const key = ok<S.SigningKeyResponse>(
      await operator.signingKeys.create(agentId, req("CreateSigningKeyRequest", { chain: "local" })),
      "SigningKeyResponse",
    );
    expect(key.address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    const list = ok<S.SigningKeyListResponse>(await operator.signingKeys.list(agentId), "SigningKeyListResponse");
    expect(list.keys.map((k) => k.address)).toContain(key.address);
    const bal = ok<S.SigningKeyBalanceResponse>(await operator.signingKeys.getBalance(agentId, "local"), "SigningKeyBalanceResponse");
    expect(bal.address.toLowerCase()).toBe(key.address!.toLowerCase());
  });

  it("audit: query and verify", async () => {
    const events = ok<S.AuditEventsResponse>(await operator.audit.query({ resource_id: agentId, limit: 50 }), "AuditEventsResponse");
    expect(events.events.map((e) => e.action)).toEqual(expect.arrayContaining(["agent.create", "agent.update"]));
    const byActor = ok<S.AuditEventsResponse>(
      await operator.audit.query({ actor_id: agentId, action: "transaction.submit" }),
      "AuditEventsResponse",
    );
    expect(byActor.count).toBeGreaterThanOrEqual(2);
    // Unfiltered as well: system events (the tracker's) must fit the SDK's type too.
    ok<S.AuditEventsResponse>(await operator.audit.query({ limit: 500 }), "AuditEventsResponse");
    const v = ok<S.AuditVerifyResponse>(await operator.audit.verify(), "AuditVerifyResponse");
    expect(v.chain_valid).toBe(true);
  });

  it("webhooks: create, list and delete (deactivate) through the SDK", async () => {
    const created = ok<S.WebhookResponse & { secret: string }>(
      await operator.webhooks.create(
        req<S.CreateWebhookRequest>("CreateWebhookRequest", { url: "http://127.0.0.1:9/hook", events: ["agent.transaction.confirmed"] }),
      ),
      "WebhookResponse",
      null, // not part of the reference description
    );
    expect(created.secret).toBeTypeOf("string"); // shown once, by the create call
    const list = ok<S.WebhookListResponse>(await operator.webhooks.list(), "WebhookListResponse", null);
    expect(list.webhooks.map((w) => w.id)).toContain(created.id);
    expect(JSON.stringify(list)).not.toContain(created.secret);
    expect((await operator.webhooks.delete(created.id)).error).toBeNull();
    const after = ok<S.WebhookListResponse>(await operator.webhooks.list(), "WebhookListResponse", null);
    expect(after.webhooks.find((w) => w.id === created.id)?.is_active).toBe(false);
  });

  it("errors arrive as the SDK's typed errors; a 400 carries the fields map", async () => {
    const bad = await agent.http
      .post(`/v1/agents/${agentId}/transactions`, { to: "nope", value: "0.1", chain: "local" })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(sdk.ValidationError);
    expect((bad as InstanceType<typeof sdk.ValidationError>).fields).toMatchObject({ to: expect.any(String) });
    const missing = await operator.http.get(`/v1/agents/00000000-0000-4000-8000-000000000000`).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(sdk.NotFoundError);
    const anon = sdk.createClient({ baseUrl, token: "not-a-token" });
    expect(await anon.http.get(`/v1/agents/me`).catch((e: unknown) => e)).toBeInstanceOf(sdk.AuthError);
    // A route that needs a body still refuses a missing one: 400, not "no body is fine".
    const noBody = await agent.http.post(`/v1/agents/${agentId}/transactions`).catch((e: unknown) => e);
    expect(noBody).toBeInstanceOf(sdk.ValidationError);
  });

  it("operators exchange a 1ck_ key for a short-lived operator token, revoked with the key", async () => {
    // createClient({ apiKey: "1ck_…" }) exchanges the key at POST /v1/auth/api-key-token by itself.
    const auto = sdk.createClient({ baseUrl, apiKey: opKey });
    await vi.waitFor(() => expect(auto.http.getToken()).toBeTruthy());
    expect(auto.http.getToken()).not.toBe(opKey);
    ok<S.AgentListResponse>(await auto.agents.list(), "AgentListResponse");

    // A second operator key, its token, then the key revoked (as the operator-keys API would).
    const second = await svc.ctx.auth.createOperatorKey("sdk-second");
    const client = sdk.createClient({ baseUrl });
    const tok = ok<S.TokenResponse>(await client.auth.apiKeyToken(req("UserApiKeyTokenRequest", { api_key: second })), "TokenResponse");
    expect(tok.expires_in).toBeLessThanOrEqual(900);
    const payload = JSON.parse(Buffer.from(tok.access_token.split(".")[1], "base64url").toString());
    const keyId = (await svc.ctx.pool.query("SELECT id FROM operator_keys WHERE name = 'sdk-second'")).rows[0].id;
    expect(payload.sub).toBe(`operator:${keyId}`);
    ok<S.AgentListResponse>(await client.agents.list(), "AgentListResponse");
    // An operator token cannot act as an agent.
    expect(
      failed(await client.agents.submitTransaction(agentId, { to: DEAD, value: "0.001", chain: "local" } as S.SubmitTransactionRequest)),
    ).toBe(403);
    await svc.ctx.pool.query("UPDATE operator_keys SET revoked_at = now() WHERE id = $1", [keyId]);
    expect(failed(await client.agents.list())).toBe(401);
    // Agent keys are not operator keys.
    expect(failed(await sdk.createClient({ baseUrl }).auth.apiKeyToken({ api_key: agentKey }))).toBe(401);
  });

  it("body-less POST and DELETE with Content-Type: application/json work: rotateKey, delete", async () => {
    const victim = ok<S.AgentCreatedResponse>(
      await operator.agents.create({ name: "to-rotate", intents_api_enabled: true }),
      "AgentCreatedResponse",
    );
    const rotated = ok<S.AgentKeyRotatedResponse>(await operator.agents.rotateKey(victim.agent.id), "AgentKeyRotatedResponse");
    expect(rotated.api_key).toMatch(/^ocv_/);
    expect(rotated.api_key).not.toBe(victim.api_key);
    const oldKey = sdk.createClient({ baseUrl });
    expect(failed(await oldKey.auth.agentToken({ api_key: victim.api_key!, agent_id: victim.agent.id }))).toBe(401);
    const del = await operator.agents.delete(victim.agent.id);
    expect(del.error).toBeNull();
    expect(failed(await operator.agents.get(victim.agent.id))).toBe(404);
  });

  it("auth.logout revokes the token: any later call with it is 401, and nothing is signed", async () => {
    const client = sdk.createClient({ baseUrl });
    const tok = ok<S.TokenResponse>(await client.auth.agentToken({ api_key: agentKey, agent_id: agentId }), "TokenResponse");
    ok<S.AgentSelfResponse>(await client.agents.getSelf(), "AgentSelfResponse");
    const out = await client.auth.logout();
    expect(out.error).toBeNull();
    expect(out.meta?.status).toBe(204);
    const reuse = sdk.createClient({ baseUrl, token: tok.access_token });
    const before = await signedCount();
    expect(failed(await reuse.agents.getSelf())).toBe(401);
    expect(
      failed(await reuse.agents.submitTransaction(agentId, { to: DEAD, value: "0.001", chain: "local" } as S.SubmitTransactionRequest)),
    ).toBe(401);
    expect(failed(await reuse.agents.listTransactions(agentId))).toBe(401);
    expect(failed(await reuse.auth.logout())).toBe(401);
    expect(await signedCount()).toBe(before);

    // An operator token logs out the same way.
    const op = sdk.createClient({ baseUrl });
    const opTok = ok<S.TokenResponse>(await op.auth.apiKeyToken({ api_key: opKey }), "TokenResponse");
    expect((await op.auth.logout()).meta?.status).toBe(204);
    expect(failed(await sdk.createClient({ baseUrl, token: opTok.access_token }).agents.list())).toBe(401);
  });
});
