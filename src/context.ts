// Builds and closes everything with a lifetime: the database (embedded or external), the HSM session
// pool, the chain registry and clients, the local anvil chain. Nothing here runs at import time.
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { ChainClients } from "./chains/clients.js";
import { startAnvil } from "./chains/anvil.js";
import { ChainRegistry, readChainsFile, seedChains } from "./chains/registry.js";
import type { Config } from "./config.js";
import { migrate } from "./db/migrate.js";
import { createPool, type Pool } from "./db/pool.js";
import { ensureSoftHsmToken } from "./hsm/softhsm.js";
import { Pkcs11Signer } from "./signer/pkcs11.js";
import type { Signer } from "./signer/signer.js";
import { ensureSigningKey } from "./keys.js";
import { AuthService } from "./auth/service.js";
import { AddressAdmission } from "./pipeline/admission.js";
import { KeyAccessCache } from "./pipeline/resolve.js";
import { CommitGroups } from "./pipeline/commit-groups.js";
import { SimulatorRegistry } from "./simulators/index.js";
import { startAuditSealer } from "./audit-chain.js";
import { startWebhookWorker, type WebhookWorker } from "./webhooks/worker.js";
import { instrumentSigner, Metrics } from "./metrics.js";
import { Tracker, trackerOptions } from "./tracker/tracker.js";
import { ProcessLiveness } from "./pipeline/liveness.js";

export interface Context {
  config: Config;
  log: Logger;
  pool: Pool;
  databaseUrl: string;
  signer: Signer;
  chains: ChainRegistry;
  clients: ChainClients;
  auth: AuthService;
  admission: AddressAdmission;
  /** The signing keys agents were found allowed to use, per version of their key access. */
  keyAccess: KeyAccessCache;
  commits: CommitGroups;
  /** Simulators per chain (anvil forks are started on first use and stopped by close()). */
  simulators: SimulatorRegistry;
  /** Links committed audit events into the hash chain (one replica at a time). */
  auditSealer: { sealNow(): Promise<number>; stop(): Promise<void> };
  /** Fans audit events out to webhook outboxes and delivers them (every replica; row locks share the work). */
  webhooks: WebhookWorker;
  metrics: Metrics;
  /** This process's liveness lock in PostgreSQL (idempotency claims name it). */
  liveness: ProcessLiveness;
  /** Follows transactions to confirmation (receipts, rebroadcast, fee bumps, reorgs, nonce gaps); started unless TRACKER=off. */
  tracker?: Tracker;
  /** Set when this process started the local anvil chain. */
  localChainUrl?: string;
  /** The operator key generated at this start (first start, no ADMIN_API_KEY): shown once. */
  generatedOperatorKey?: string;
  close(): Promise<void>;
}

export const LOCAL_CHAIN = "local";
export const LOCAL_SIGNER_PATH = "keys/local-signer";
/** Balance given to the local signer on the local anvil chain: plenty for development and benchmarks. */
const LOCAL_SIGNER_FUNDS = 10n ** 24n; // 1,000,000 ETH

export function defaultChainsFile(): string {
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), "../chains.json");
}

export async function createContext(config: Config, log: Logger): Promise<Context> {
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const fn of closers.reverse()) await fn().catch((err) => log.warn({ err }, "error while closing"));
    closers.length = 0;
  };
  try {
    fs.mkdirSync(config.dataDir, { recursive: true });

    // PostgreSQL: external when DATABASE_URL is set, else the project-local embedded cluster.
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      const t = Date.now();
      // Loaded only here: the production image leaves the embedded PostgreSQL out (DATABASE_URL is required there).
      const { startEmbeddedPostgres } = await import("./db/embedded.js").catch((err) => {
        if ((err as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND")
          throw new Error("DATABASE_URL: required here (this installation has no embedded PostgreSQL)");
        throw err;
      });
      const pg = await startEmbeddedPostgres({ dataDir: config.dataDir, onLog: (line) => log.trace({ pg: line }) });
      closers.push(pg.stop);
      databaseUrl = pg.url;
      log.info({ ms: Date.now() - t }, "embedded PostgreSQL started");
    }
    const pool = createPool(databaseUrl, { max: 40 });
    closers.push(() => pool.end());
    const applied = await migrate(pool);
    if (applied.length) log.info({ applied }, "migrations applied");
    const liveness = await ProcessLiveness.start(databaseUrl, log);
    closers.push(() => liveness.stop());

    // HSM: any PKCS#11 module; by default a SoftHSM token under DATA_DIR.
    let modulePath = config.pkcs11.module;
    let pin = config.pkcs11.pin;
    if (!modulePath) {
      const token = await ensureSoftHsmToken({
        dir: config.softHsmDir,
        label: config.pkcs11.tokenLabel,
        pin: config.pkcs11.pin,
      });
      modulePath = token.modulePath;
      pin = token.pin;
    }
    if (!pin) throw new Error("PKCS11_PIN: required when PKCS11_MODULE is set");
    const metrics = new Metrics();
    const hsm = await Pkcs11Signer.open({
      modulePath,
      tokenLabel: config.pkcs11.tokenLabel,
      pin,
      poolSize: config.pkcs11.poolSize,
    });
    closers.push(() => hsm.close());
    const signer = instrumentSigner(hsm, metrics);

    // Chains: the file seeds the table; overrides apply in memory.
    await seedChains(pool, readChainsFile(config.chainsFile ?? defaultChainsFile()));
    const chains = new ChainRegistry(pool, config.rpcOverrides);
    await chains.refresh();
    const clients = new ChainClients({ timeoutMs: config.broadcastTimeoutMs, batchSize: config.rpcBatchSize });
    // Other replicas' admin changes to chains reach this one within seconds.
    const refresher = setInterval(() => chains.refresh().catch((err) => log.warn({ err }, "chain registry refresh failed")), 10_000);
    refresher.unref();
    closers.push(async () => clearInterval(refresher));

    let localChainUrl: string | undefined;
    const local = chains.resolve(LOCAL_CHAIN);
    if (local && local.is_enabled && config.localChain === "anvil") {
      if (!chains.hasRpcOverride(LOCAL_CHAIN)) {
        const node = await startAnvil({
          binary: config.anvilBin,
          chainId: local.chain_id,
          sweepSeconds: config.localChainSweepSeconds > 0 ? config.localChainSweepSeconds : undefined,
          // The chain survives restarts: loaded from this file at start, written back every
          // LOCAL_CHAIN_STATE_INTERVAL_SECONDS and on exit (a kill -9 loses at most one interval;
          // the tracker's chain-reset check repairs what the database then claims beyond it).
          statePath: path.join(config.dataDir, "anvil", "state.json"),
          stateIntervalSeconds: config.localChainStateIntervalSeconds,
        });
        closers.push(node.stop);
        localChainUrl = node.url;
        chains.setRuntimeRpc(LOCAL_CHAIN, [node.url]);
        log.info({ url: node.url }, "local anvil chain started");
      }
      const key = await ensureSigningKey(pool, signer, LOCAL_SIGNER_PATH, { chain: LOCAL_CHAIN });
      await fundOnLocalChain(clients.get(chains.resolve(LOCAL_CHAIN)!), key.address, log);
    }

    const auth = await AuthService.create(pool, config.jwtDefaultTtlSeconds);
    const { generated } = await auth.bootstrapOperator(config.adminApiKey);
    const admission = new AddressAdmission(config.maxInflightPerAddress);
    const keyAccess = new KeyAccessCache();
    const commits = new CommitGroups();
    const auditSealer = startAuditSealer(pool, 250, (err) => log.warn({ err }, "audit sealing failed; will retry"));
    closers.push(() => auditSealer.stop());
    const webhooks = startWebhookWorker({ pool, log, ...config.webhook });
    closers.push(() => webhooks.stop());

    const simulators = new SimulatorRegistry({ config, clients, log });
    closers.push(() => simulators.close());

    // Last: the chains are ready. Its first pass sends rows a crash left signed but unsent.
    // A reset local dev chain (anvil restarted empty) gets the local signer funded again.
    const onChainReset =
      local && local.is_enabled && config.localChain === "anvil"
        ? async (chain: string, address: string) => {
            if (chain === LOCAL_CHAIN) await fundOnLocalChain(clients.get(chains.resolve(LOCAL_CHAIN)!), address, log);
          }
        : undefined;
    const tracker = new Tracker({ pool, signer, chains, clients, log, metrics, onChainReset }, trackerOptions(config));
    if (config.trackerEnabled) {
      tracker.start();
      closers.push(() => tracker.stop());
    }

    return {
      config,
      log,
      pool,
      databaseUrl,
      signer,
      chains,
      clients,
      auth,
      admission,
      keyAccess,
      commits,
      simulators,
      localChainUrl,
      generatedOperatorKey: generated,
      auditSealer,
      webhooks,
      metrics,
      liveness,
      tracker,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Tops the local signer up on the development chain (anvil's cheat RPC; harmless elsewhere). */
async function fundOnLocalChain(client: ReturnType<ChainClients["get"]>, address: string, log: Logger): Promise<void> {
  try {
    const balance = await client.getBalance({ address: address as `0x${string}` });
    if (balance >= LOCAL_SIGNER_FUNDS / 2n) return;
    await client.request({ method: "anvil_setBalance" as never, params: [address, `0x${LOCAL_SIGNER_FUNDS.toString(16)}`] as never });
    log.info({ address }, "funded keys/local-signer on the local chain");
  } catch (err) {
    log.warn({ err: (err as Error).message, address }, "could not fund keys/local-signer on the local chain");
  }
}
