// The only reader of process.env. Everything the service can be told from outside is parsed and
// validated here, once, at boot; a bad value stops the start with a message naming the variable.
import net from "node:net";
import fs from "node:fs";
import path from "node:path";
import { parseUnits } from "viem";
import { z } from "zod";
import { MAX_DATA_BYTES_CEILING } from "./agents/guardrail-fields.js";
import { DEFAULT_MAX_DATA_BYTES } from "./quotas.js";

const port = z.coerce
  .number({ error: "must be a number" })
  .int("must be a whole number")
  .min(0, "must be between 0 and 65535")
  .max(65535, "must be between 0 and 65535");

const postgresUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === "postgres:" || u.protocol === "postgresql:") && u.hostname !== "";
  } catch {
    return false;
  }
}, "must be a postgres:// or postgresql:// URL with a host");

const urlList = z
  .string()
  .transform((v) =>
    v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  )
  .refine((list) => list.length > 0, "must list at least one URL")
  .refine(
    (list) =>
      list.every((u) => {
        try {
          const p = new URL(u).protocol;
          return p === "http:" || p === "https:" || p === "ws:" || p === "wss:";
        } catch {
          return false;
        }
      }),
    "must be comma-separated http(s) or ws(s) URLs",
  );

export { MAX_DATA_BYTES_CEILING };

function isAddressOrCidr(v: string): boolean {
  const [addr, bits, ...rest] = v.split("/");
  if (rest.length > 0 || !addr) return false;
  const family = net.isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

const EnvSchema = z.object({
  PORT: port.default(8080),
  HOST: z.string().min(1).default("127.0.0.1"),
  DATA_DIR: z.string().min(1).default("./.data"),
  DATABASE_URL: postgresUrl.optional(),
  ADMIN_API_KEY: z
    .string()
    .regex(/^1ck_[A-Za-z0-9_-]{32,}$/, "must be 1ck_ followed by at least 32 characters [A-Za-z0-9_-]")
    .optional(),
  PKCS11_MODULE: z.string().min(1).optional(),
  PKCS11_TOKEN_LABEL: z.string().min(1).max(32, "must be at most 32 characters").default("intents"),
  PKCS11_PIN: z.string().min(4, "must be at least 4 characters").optional(),
  PKCS11_POOL_SIZE: z.coerce.number().int().min(1).max(64).default(4),
  CHAINS_FILE: z.string().min(1).optional(),
  LOCAL_CHAIN: z.enum(["anvil", "off"]).default("anvil"),
  LOCAL_CHAIN_SWEEP_SECONDS: z.coerce.number().int().min(0).max(3_600).default(1),
  LOCAL_CHAIN_STUCK_AFTER_SECONDS: z.coerce.number().int().min(1).max(86_400).default(5),
  ANVIL_BIN: z.string().min(1).optional(),
  SIMULATOR: z.enum(["anvil", "tenderly", "rpc"]).optional(),
  TENDERLY_ACCOUNT: z.string().min(1).optional(),
  TENDERLY_PROJECT: z.string().min(1).optional(),
  TENDERLY_ACCESS_KEY: z.string().min(1).optional(),
  TENDERLY_API_URL: z.url().default("https://api.tenderly.co"),
  SIMULATE_ALL: z.stringbool({ error: "must be true or false" }).default(false),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  JWT_DEFAULT_TTL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(3600),
  // Only an explicit list: with `true` the left-most X-Forwarded-For entry, which the client writes, became
  // the client address, and with it the key of every per-address limit.
  TRUST_PROXY: z
    .string()
    .refine((v) => v !== "true", "'true' is not accepted: list the proxies' addresses or CIDRs (e.g. 10.0.0.5,10.1.0.0/16)")
    .refine(
      (v) => v === "false" || v === "true" || v.split(",").every((e) => isAddressOrCidr(e.trim())),
      "must be false or comma-separated proxy IP addresses/CIDRs",
    )
    .default("false"),
  AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(0).max(1_000_000).default(60),
  // Quotas (src/quotas.ts, src/auth/failures.ts, src/simulators/fair-queue.ts).
  AUTH_FAILURES_PER_CREDENTIAL_PER_MINUTE: z.coerce.number().int().min(0).max(1_000_000).default(10),
  AGENT_REQUESTS_PER_MINUTE: z.coerce.number().int().min(0).max(10_000_000).default(1200),
  MAX_DATA_BYTES: z.coerce.number().int().min(0).max(MAX_DATA_BYTES_CEILING).default(DEFAULT_MAX_DATA_BYTES),
  SIMULATION_QUEUE_PER_AGENT: z.coerce.number().int().min(1).max(10_000).default(8),
  SIMULATION_QUEUE_MAX: z.coerce.number().int().min(1).max(100_000).default(64),
  METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").max(512).optional(),
  MAX_INFLIGHT_PER_ADDRESS: z.coerce.number().int().min(1).max(100_000).default(512),
  BROADCAST_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  RPC_BATCH_SIZE: z.coerce.number().int().min(1).max(1_000).default(100),
  TRACKER_INTERVAL_MS: z.coerce.number().int().min(50).max(600_000).default(2000),
  TRACKER: z.enum(["on", "off"]).default("on"),
  STUCK_AFTER_SECONDS: z.coerce.number().min(0.1).max(86_400).default(60),
  GAP_FILL_AFTER_SECONDS: z.coerce.number().min(0.1).max(86_400).default(120),
  MAX_FEE_PER_GAS_CAP_GWEI: z
    .string()
    .regex(/^\d{1,12}(\.\d{1,9})?$/, "must be a number of gwei, e.g. 500 or 0.5")
    .default("500"),
  BASE_FEE_MULTIPLE: z.coerce.number().min(1).max(1000).default(4),
  GAP_FILLS_PER_KEY_PER_DAY: z.coerce.number().int().min(0).max(10_000).default(16),
  // Test-only: SIGKILL the process right after a submit's COMMIT, before its broadcast (crash recovery tests).
  INTENTS_TEST_CRASH_AFTER_COMMIT: z.enum(["0", "1"]).default("0"),
  WEBHOOK_INTERVAL_MS: z.coerce.number().int().min(10).max(600_000).default(500),
  WEBHOOK_BACKOFF_BASE_MS: z.coerce.number().int().min(10).max(3_600_000).default(1000),
  WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(20),
  // Day-to-day running: the local chain's state file cadence, the SoftHSM token folder (shared by replicas).
  LOCAL_CHAIN_STATE_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(3_600).default(2),
  SOFTHSM_DIR: z.string().min(1).optional(),
  DATABASE_PASSWORD: z.string().min(1).optional(),
});

/** Secrets that may come from a file instead (`<NAME>_FILE`, e.g. Docker/Compose secrets). */
const FILE_VARIABLES = ["ADMIN_API_KEY", "PKCS11_PIN", "DATABASE_PASSWORD"] as const;

export type Env = z.infer<typeof EnvSchema>;

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  adminApiKey?: string;
  pkcs11: { module?: string; tokenLabel: string; pin?: string; poolSize: number };
  chainsFile?: string;
  /** CHAIN_<NAME>_RPC_URLS, keyed by the upper-cased chain name with `-` as `_`. */
  rpcOverrides: Record<string, string[]>;
  localChain: "anvil" | "off";
  /** The local anvil automines and also mines a block this often (0: automine only). */
  localChainSweepSeconds: number;
  /** STUCK_AFTER_SECONDS for the local chain (the smaller of the two applies). */
  localChainStuckAfterSeconds: number;
  anvilBin?: string;
  simulator?: "anvil" | "tenderly" | "rpc";
  tenderly?: { account: string; project: string; accessKey: string; apiUrl: string };
  /** Operator switch: simulate every submission before signing, as if it asked for simulate_first. */
  simulateAll: boolean;
  logLevel: Env["LOG_LEVEL"];
  jwtDefaultTtlSeconds: number;
  /** Failed authentications per client address and minute before it gets 429 (0: no limit). */
  authFailuresPerMinute: number;
  /** Fastify's trustProxy: the proxies (addresses/CIDRs) whose X-Forwarded-For names the client; false: none. */
  trustProxy: false | string[];
  /** Failed authentications with one credential (by its hash) per minute before it gets 429 (0: no limit). */
  authFailuresPerCredential: number;
  /** Requests per agent and minute, refused and failed ones included, unless the agent has its own `requests_per_minute` (0: no limit). */
  agentRequestsPerMinute: number;
  /** Largest transaction `data` in bytes, unless the agent has its own `tx_max_data_bytes`. */
  maxDataBytes: number;
  /** Simulations queued or running per agent, and in all, per chain before 503 + Retry-After. */
  simulationQueue: { perAgent: number; max: number };
  /** A bearer token that may read /metrics (operator keys may too); unset: /metrics is open to loopback clients when HOST is loopback. */
  metricsToken?: string;
  maxInflightPerAddress: number;
  broadcastTimeoutMs: number;
  /** Most calls in one JSON-RPC batch to a node; 1 disables batching. */
  rpcBatchSize: number;
  trackerIntervalMs: number;
  /** Transaction tracker (src/tracker): on/off, when a pending transaction counts as stuck, the nonce-gap bound, the replacement fee cap. */
  trackerEnabled: boolean;
  stuckAfterSeconds: number;
  gapFillAfterSeconds: number;
  maxFeePerGasCapWei: bigint;
  /** Every signature's fee per gas is at most the cap and this multiple of the chain's current price (per chain: chains.json). */
  feeBounds: { maxFeePerGasWei: bigint; priceMultiple: number };
  /** Gap fills per signing key in a rolling 24 h; past it, an alert instead of a fill. */
  gapFillsPerKeyPerDay: number;
  /** INTENTS_TEST_CRASH_AFTER_COMMIT=1: tests only; see src/pipeline/submit.ts. */
  testCrashAfterCommit: boolean;
  /** Webhooks: worker pass interval, first retry delay (doubling, capped at 10 min), attempts before giving up. */
  webhook: { intervalMs: number; backoffBaseMs: number; maxAttempts: number };
  /** The local anvil dumps its state to DATA_DIR/anvil/state.json this often (0: on exit only). */
  localChainStateIntervalSeconds: number;
  /** The SoftHSM token folder (config, tokens, PIN files): DATA_DIR/softhsm unless SOFTHSM_DIR. */
  softHsmDir: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Parse an environment (process.env by default). Throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset: `PORT= npm start` should mean the default, not an error.
  const cleaned: Record<string, string> = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== "")) as Record<
    string,
    string
  >;
  const problems: string[] = [];
  for (const name of FILE_VARIABLES) {
    const file = cleaned[`${name}_FILE`];
    if (!file) continue;
    if (cleaned[name]) {
      problems.push(`${name}, ${name}_FILE: set one or the other`);
      continue;
    }
    try {
      const value = fs.readFileSync(file, "utf8").trim();
      if (value) cleaned[name] = value;
      else problems.push(`${name}_FILE: the file is empty`);
    } catch (err) {
      problems.push(`${name}_FILE: cannot read the file (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
  }
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // Never echo the value: the variable may hold a secret (ADMIN_API_KEY, PKCS11_PIN, DATABASE_URL).
      problems.push(`${issue.path.join(".")}: ${issue.message}`);
    }
  }

  const rpcOverrides: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(cleaned)) {
    const m = /^CHAIN_([A-Z0-9_]+)_RPC_URLS$/.exec(key);
    if (!m) continue;
    const r = urlList.safeParse(value);
    if (r.success) rpcOverrides[m[1]] = r.data;
    else problems.push(`${key}: ${r.error.issues[0]?.message ?? "invalid"}`);
  }

  const e = parsed.data;
  if (e) {
    const tenderlyVars = [e.TENDERLY_ACCOUNT, e.TENDERLY_PROJECT, e.TENDERLY_ACCESS_KEY];
    const someTenderly = tenderlyVars.some(Boolean);
    if (someTenderly && !tenderlyVars.every(Boolean)) {
      problems.push("TENDERLY_ACCOUNT, TENDERLY_PROJECT, TENDERLY_ACCESS_KEY: set all three or none");
    }
    if (e.DATABASE_PASSWORD && !e.DATABASE_URL) problems.push("DATABASE_PASSWORD: only with DATABASE_URL");
    if (e.SIMULATOR === "tenderly" && !someTenderly) {
      problems.push("SIMULATOR: 'tenderly' needs TENDERLY_ACCOUNT, TENDERLY_PROJECT and TENDERLY_ACCESS_KEY");
    }
  }
  if (problems.length > 0 || !e) throw new ConfigError(problems);

  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: path.resolve(e.DATA_DIR),
    databaseUrl: e.DATABASE_URL && e.DATABASE_PASSWORD ? withPassword(e.DATABASE_URL, e.DATABASE_PASSWORD) : e.DATABASE_URL,
    adminApiKey: e.ADMIN_API_KEY,
    pkcs11: { module: e.PKCS11_MODULE, tokenLabel: e.PKCS11_TOKEN_LABEL, pin: e.PKCS11_PIN, poolSize: e.PKCS11_POOL_SIZE },
    chainsFile: e.CHAINS_FILE,
    rpcOverrides,
    localChain: e.LOCAL_CHAIN,
    localChainSweepSeconds: e.LOCAL_CHAIN_SWEEP_SECONDS,
    localChainStuckAfterSeconds: e.LOCAL_CHAIN_STUCK_AFTER_SECONDS,
    anvilBin: e.ANVIL_BIN,
    simulator: e.SIMULATOR,
    tenderly:
      e.TENDERLY_ACCOUNT && e.TENDERLY_PROJECT && e.TENDERLY_ACCESS_KEY
        ? { account: e.TENDERLY_ACCOUNT, project: e.TENDERLY_PROJECT, accessKey: e.TENDERLY_ACCESS_KEY, apiUrl: e.TENDERLY_API_URL }
        : undefined,
    simulateAll: e.SIMULATE_ALL,
    logLevel: e.LOG_LEVEL,
    jwtDefaultTtlSeconds: e.JWT_DEFAULT_TTL_SECONDS,
    authFailuresPerMinute: e.AUTH_FAILURES_PER_MINUTE,
    trustProxy: e.TRUST_PROXY === "false" ? false : e.TRUST_PROXY.split(",").map((x) => x.trim()),
    authFailuresPerCredential: e.AUTH_FAILURES_PER_CREDENTIAL_PER_MINUTE,
    agentRequestsPerMinute: e.AGENT_REQUESTS_PER_MINUTE,
    maxDataBytes: e.MAX_DATA_BYTES,
    simulationQueue: { perAgent: e.SIMULATION_QUEUE_PER_AGENT, max: e.SIMULATION_QUEUE_MAX },
    metricsToken: e.METRICS_TOKEN,
    maxInflightPerAddress: e.MAX_INFLIGHT_PER_ADDRESS,
    broadcastTimeoutMs: e.BROADCAST_TIMEOUT_MS,
    rpcBatchSize: e.RPC_BATCH_SIZE,
    trackerIntervalMs: e.TRACKER_INTERVAL_MS,
    trackerEnabled: e.TRACKER === "on",
    stuckAfterSeconds: e.STUCK_AFTER_SECONDS,
    gapFillAfterSeconds: e.GAP_FILL_AFTER_SECONDS,
    maxFeePerGasCapWei: parseUnits(e.MAX_FEE_PER_GAS_CAP_GWEI, 9),
    feeBounds: { maxFeePerGasWei: parseUnits(e.MAX_FEE_PER_GAS_CAP_GWEI, 9), priceMultiple: e.BASE_FEE_MULTIPLE },
    gapFillsPerKeyPerDay: e.GAP_FILLS_PER_KEY_PER_DAY,
    testCrashAfterCommit: e.INTENTS_TEST_CRASH_AFTER_COMMIT === "1",
    webhook: { intervalMs: e.WEBHOOK_INTERVAL_MS, backoffBaseMs: e.WEBHOOK_BACKOFF_BASE_MS, maxAttempts: e.WEBHOOK_MAX_ATTEMPTS },
    localChainStateIntervalSeconds: e.LOCAL_CHAIN_STATE_INTERVAL_SECONDS,
    softHsmDir: path.resolve(e.SOFTHSM_DIR ?? path.join(e.DATA_DIR, "softhsm")),
  };
}

/** DATABASE_URL with DATABASE_PASSWORD(_FILE) as its password (the URL then needs none). */
function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** The env-var key for a chain name: `base-sepolia` → `BASE_SEPOLIA`. */
export function chainEnvKey(name: string): string {
  return name.toUpperCase().replace(/-/g, "_");
}
