// useService(): the service stack most test files need, started before the file's (or describe's)
// tests and torn down after them: a cloned test database, a SoftHSM token, the fastify app, an
// operator key, and on request an anvil of the test's own and an agent (with its own funded key).
//
//   const svc = useService({ env: { TRACKER: "off" }, agent: { tx_max_value: "1" } });
//   it("…", async () => { await call(svc.app, "GET", "/v1/agents/me", { token: svc.agent.token }); });
//
// The handle's fields are read inside tests and hooks (they exist once beforeAll has run). Hooks the
// file registers before useService() run before the service starts (and their afterAll after it stops),
// so `env` and `start` may be functions reading what those hooks made.
import { createPublicClient, http, type Hex, type PublicClient } from "viem";
import { afterAll, beforeAll } from "vitest";
import { startAnvil, type AnvilNode, type AnvilOptions } from "../../src/chains/anvil.js";
import { recordSigningKey } from "../../src/db/signing-keys.js";
import type { Context } from "../../src/context.js";
import type { App } from "../../src/http/types.js";
import { createAgent, newOperatorKey, type TestAgent } from "./api.js";
import { startReplica, type Replica } from "./replica.js";
import { startTestService, type TestService } from "./service.js";

type Env = Record<string, string>;
type StartOptions = Parameters<typeof startTestService>[1];

export interface UseServiceOptions {
  /** Environment of the service (ADMIN_API_KEY is set to the handle's operator key unless given here or generated). */
  env?: Env | ((made: { anvil?: AnvilNode }) => Env | Promise<Env>);
  /** Where the database, data folder or log go when a test needs them outside the service's lifetime. */
  start?: StartOptions | (() => StartOptions);
  /** An anvil of the test's own (e.g. `{ noMining: true }`), which the `local` chain then uses. */
  anvil?: AnvilOptions | true;
  /** An agent created by the operator, with these fields (`true`: the defaults). */
  agent?: Record<string, unknown> | true;
  /** The agent also gets its own HSM key on the local chain (agents/{id}/chains/local), funded with 1000 ETH. */
  agentKey?: boolean;
  /** No ADMIN_API_KEY: the first start generates one, as `npm start` does (the handle's op). */
  generatedOperatorKey?: boolean;
  /** Listen on a free port of 127.0.0.1, for clients that speak real HTTP (the handle's baseUrl). */
  listen?: boolean;
  /** This many more replicas on the same database (startReplica), closed before the service. */
  replicas?: number;
}

/** The started service (a TestService: it can be passed wherever one is expected) and what came with it. */
export interface ServiceHandle extends TestService {
  readonly svc: TestService;
  readonly app: App;
  readonly ctx: Context;
  /** The operator key (ADMIN_API_KEY). */
  readonly op: string;
  readonly agent: TestAgent & { address?: Hex; path?: string };
  readonly anvil: AnvilNode;
  /** A client of the local chain (the test's own anvil, or the one the service started). */
  readonly chain: PublicClient;
  /** Where the service listens (useService({ listen: true })). */
  readonly baseUrl: string;
  /** The other replicas (useService({ replicas })). */
  readonly replicas: Replica[];
}

export function useService(opts: UseServiceOptions = {}): ServiceHandle {
  const op = (typeof opts.env === "object" ? opts.env.ADMIN_API_KEY : undefined) ?? newOperatorKey();
  const replicas: Replica[] = [];
  let baseUrl: string | undefined;
  let svc: TestService | undefined;
  let anvil: AnvilNode | undefined;
  let agent: ServiceHandle["agent"] | undefined;
  let chain: PublicClient | undefined;

  beforeAll(async () => {
    if (opts.anvil) anvil = await startAnvil(opts.anvil === true ? {} : opts.anvil);
    const env = typeof opts.env === "function" ? await opts.env({ anvil }) : opts.env;
    const start = typeof opts.start === "function" ? opts.start() : opts.start;
    const key: Env = opts.generatedOperatorKey ? {} : { ADMIN_API_KEY: op };
    svc = await startTestService({ ...key, ...(anvil ? { CHAIN_LOCAL_RPC_URLS: anvil.url } : {}), ...env }, start);
    if (opts.listen) baseUrl = await svc.app.listen({ port: 0, host: "127.0.0.1" });
    for (let i = 0; i < (opts.replicas ?? 0); i++) replicas.push(await startReplica(svc));
    const localRpc = anvil?.url ?? svc.ctx.chains.resolve("local")?.rpc_urls[0];
    if (localRpc) chain = createPublicClient({ transport: http(localRpc), cacheTime: 0 }) as PublicClient;
    if (opts.agent || opts.agentKey) {
      agent = await createAgent(
        svc.app,
        svc.ctx.generatedOperatorKey ?? op,
        opts.agent === true || opts.agent === undefined ? {} : opts.agent,
      );
      if (opts.agentKey) agent = { ...agent, ...(await fundedKey(svc, agent.id, need(chain, "a local chain"))) };
    }
  });
  afterAll(async () => {
    for (const r of replicas.splice(0)) await r.close();
    await svc?.close();
    svc = undefined;
    await anvil?.stop();
  });

  return {
    get svc() {
      return need(svc, "the service");
    },
    get app() {
      return need(svc, "the service").app;
    },
    get ctx() {
      return need(svc, "the service").ctx;
    },
    get dataDir() {
      return need(svc, "the service").dataDir;
    },
    get databaseUrl() {
      return need(svc, "the service").databaseUrl;
    },
    /** Torn down by the afterAll hook; a test that stops the service early calls this (twice is harmless). */
    close: async () => {
      const s = svc;
      svc = undefined;
      for (const r of replicas.splice(0)) await r.close();
      await s?.close();
    },
    get op() {
      return opts.generatedOperatorKey ? need(svc?.ctx.generatedOperatorKey, "the generated operator key") : op;
    },
    get agent() {
      return need(agent, "an agent (useService({ agent }))");
    },
    get anvil() {
      return need(anvil, "an anvil (useService({ anvil }))");
    },
    get chain() {
      return need(chain, "a local chain");
    },
    get baseUrl() {
      return need(baseUrl, "an address (useService({ listen: true }))");
    },
    replicas,
  };
}

/** An agent's own key on the local chain, funded: its nonces start at 0 and nothing else uses them. */
export async function fundedKey(svc: TestService, agentId: string, chain: PublicClient): Promise<{ address: Hex; path: string }> {
  const path = `agents/${agentId}/chains/local`;
  const key = await svc.ctx.signer.createKey(path);
  await recordSigningKey(svc.ctx.pool, key, { chain: "local", agentId });
  await chain.request({ method: "anvil_setBalance" as never, params: [key.address, "0x" + (10n ** 21n).toString(16)] as never });
  return { address: key.address, path };
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`useService: ${what} is not there (read it inside a test or hook, and ask for it in the options)`);
  return v;
}
