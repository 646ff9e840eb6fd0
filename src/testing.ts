// The testing kit: `startSigner()` starts the whole service for an agent developer's test file against
// their own anvil fork(s), on a free port, with a throw-away data folder, and `stop()` removes all of it.
//
// Each kit is its own child process (src/server.ts, bundled once by esbuild; see serverBundle):
// SoftHSM reads SOFTHSM2_CONF once per process and the PKCS#11 module is loaded once per process, so two
// kits in one test process would share one token store; the service also owns SIGINT/SIGTERM and the
// embedded PostgreSQL. A child per kit keeps ports, folders, tokens and signals apart, and a test that
// fails or throws cannot leave half a service in the caller's process.
//
// Start time: the first start on a machine initialises a PostgreSQL cluster, migrates it and creates a
// SoftHSM token in a template folder under the OS temp dir, keyed by the migrations' and chains' hash;
// every later start copies that folder (cp -a) and starts from it.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import {
  createPublicClient,
  encodeAbiParameters,
  encodeFunctionData,
  decodeFunctionResult,
  http,
  keccak256,
  pad,
  toHex,
  type Hex,
} from "viem";

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "..");

/** A chain the service signs for: typically an anvil fork (`@viem/anvil` with `forkUrl`), which keeps the forked chain's id. */
export interface KitChain {
  name: string;
  chainId: number;
  rpcUrl: string;
}

export interface StartSignerOptions {
  /** Chains to sign for. None: the service starts its own local anvil (chain `local`, id 31337). */
  chains?: KitChain[];
  /** More service environment (README "Configuration"), e.g. `{ SIMULATE_ALL: "true" }`. */
  env?: Record<string, string>;
  /** Where the template folder is cached (default: the OS temp dir). */
  cacheDir?: string;
}

export interface KitAgent {
  id: string;
  /** The agent's `ocv_…` key (for the SDK's `createClient({ baseUrl, apiKey, agentId })`). */
  apiKey: string;
  /** A bearer token for the agent, from POST /v1/auth/agent-token. */
  token: string;
}

export interface KitSigningKey {
  id: string;
  path: string;
  address: Hex;
  chain: string;
}

/** A pending approval as GET /v1/pending-approvals/{id} answers it (the fields a test usually reads). */
export interface KitApproval {
  id: string;
  agent_id: string;
  status: "pending" | "executing" | "executed" | "failed" | "rejected" | "expired" | "cancelled";
  payload_hash: string;
  required_approvals: number;
  current_approvals: number;
  /** The executed request's answer: the transaction, or the signature of a signing intent. */
  result: Record<string, any> | null;
  failure_reason: string | null;
  [field: string]: unknown;
}

export interface Signer {
  /** Base URL of the service, e.g. http://127.0.0.1:41234 */
  url: string;
  /** An operator key (ADMIN_API_KEY of this service). */
  operatorKey: string;
  /** The chains the service signs for (the local anvil's URL when none were named). */
  chains: KitChain[];
  /** The kit's folder (data folder, chains file); removed by stop(). */
  dir: string;
  /** The service's process id; gone after stop(). */
  pid: number;
  /** Creates an agent with `intents_api_enabled: true` and the given guardrails/fields, and gets its token. */
  createAgent(fields?: Record<string, unknown>): Promise<KitAgent>;
  /**
   * Creates a signing key on `chain`: the agent's own key (`agents/{id}/chains/{chain}`, used by default
   * for that agent) when `agentId` is given, else a key at `path` (default `keys/kit-<random>`) granted to
   * every agent in `grantTo`. With `fund`, gives the key that much native currency (wei) on the chain.
   */
  createSigningKey(opts: { chain: string; agentId?: string; path?: string; grantTo?: string[]; fund?: bigint }): Promise<KitSigningKey>;
  /**
   * Sets an agent's approval rules (README "Human approvals"), e.g. `{ everything: true }` or
   * `{ cost_above_wei: "100000000000000000" }`; `null` removes them. Held requests answer 202 with a
   * `pending_approval_id`.
   */
  setApprovalRules(agentId: string, rules: Record<string, unknown> | null): Promise<void>;
  /**
   * Votes on a pending approval with the kit's operator key, naming the payload hash the service shows
   * (approve by default). Answers the approval after the vote: once the quorum is reached it has been
   * executed, with `status` `executed` and the transaction or signature in `result` (or `failed`).
   */
  approve(approvalId: string, opts?: { decision?: "approve" | "reject"; reason?: string }): Promise<KitApproval>;
  /** Sets an address's native balance on a chain (anvil_setBalance). */
  fund(address: string, wei: bigint, chain?: string): Promise<void>;
  /** Sets an ERC-20 balance by writing the token's balance mapping slot (found by probing, Solidity and Vyper layouts). */
  fundToken(address: string, token: string, amount: bigint, chain?: string): Promise<{ slot: number; layout: "solidity" | "vyper" }>;
  /** JSON over HTTP to the service, as the operator unless `token` is given. Throws on a non-2xx answer. */
  request<T = any>(method: string, urlPath: string, body?: unknown, token?: string): Promise<T>;
  /** Stops the service (PostgreSQL, anvil, HSM sessions) and removes the kit's folder. Idempotent. */
  stop(): Promise<void>;
}

/** The template's cache key: what makes a migrated cluster and token different. */
function templateKey(): string {
  const h = createHash("sha256");
  const dir = path.join(ROOT, "migrations");
  for (const f of fs.readdirSync(dir).sort()) h.update(f).update(fs.readFileSync(path.join(dir, f)));
  h.update(String(process.getuid?.() ?? ""));
  return h.digest("hex").slice(0, 16);
}

export interface ServiceChild {
  proc: ChildProcess;
  /** Resolves with the base URL once the service logs that it listens; rejects if it exits first. */
  url: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every stdout line (JSON logs and the banner) and stderr chunk, in order. */
  output: string[];
}

/** The hash of what a bundle is built from: every file under src/, package.json and esbuild's version. */
function sourceKey(esbuildVersion: string): string {
  const h = createHash("sha256")
    .update(esbuildVersion)
    .update(fs.readFileSync(path.join(ROOT, "package.json")));
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else h.update(path.relative(ROOT, p)).update(fs.readFileSync(p));
    }
  };
  walk(path.join(ROOT, "src"));
  return h.digest("hex").slice(0, 16);
}

/**
 * `src/server.ts` bundled into one ES module by esbuild (the one tsx itself uses), so a kit's child loads
 * plain JavaScript instead of transforming ~100 TypeScript files through tsx's loader on every start.
 * Built once per source hash into node_modules/.cache (so its bare imports resolve to this package's
 * node_modules, left external); `import.meta.url`/`dirname` are replaced in each file by that file's own
 * location, so the sources' paths to migrations, chains.json and the console's files still hold.
 * Undefined when esbuild cannot be loaded or the build fails: the caller then runs the sources with tsx.
 */
async function serverBundle(): Promise<string | undefined> {
  try {
    const esbuild = await import("esbuild");
    const out = path.join(ROOT, "node_modules", ".cache", "intents-signer-kit", `server-${sourceKey(esbuild.version)}.mjs`);
    if (fs.existsSync(out)) return out;
    const srcDir = path.join(ROOT, "src") + path.sep;
    const tmp = `${out}.${randomBytes(4).toString("hex")}.tmp`;
    await esbuild.build({
      entryPoints: [path.join(ROOT, "src/server.ts")],
      outfile: tmp,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      logLevel: "silent",
      plugins: [
        {
          name: "source-locations",
          setup(b) {
            b.onLoad({ filter: /\.ts$/ }, (args) => {
              if (!args.path.startsWith(srcDir)) return undefined;
              const code = fs
                .readFileSync(args.path, "utf8")
                .replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href))
                .replaceAll("import.meta.dirname", JSON.stringify(path.dirname(args.path)));
              return { contents: code, loader: "ts" };
            });
          },
        },
      ],
    });
    fs.renameSync(tmp, out); // atomic: a concurrent start sees the whole file or none
    return out;
  } catch {
    return undefined;
  }
}

/**
 * Starts `src/server.ts` as its own process with exactly `env` (plus PATH and HOME), the way `npm start`
 * does (one node process with tsx as a loader, so signals reach the service itself), or, with `bundle`,
 * that file's bundle (see serverBundle) in plain node.
 */
export function spawnServiceProcess(env: Record<string, string>, opts: { stdin?: "ignore" | "pipe"; bundle?: string } = {}): ServiceChild {
  const proc = spawn(process.execPath, opts.bundle ? [opts.bundle] : ["--import", "tsx", "src/server.ts"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: [opts.stdin ?? "ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.on("exit", (code, signal) => r({ code, signal })),
  );
  const url = new Promise<string>((resolve, reject) => {
    let buf = "";
    proc.stdout!.on("data", (d) => {
      buf += d.toString();
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        output.push(line);
        try {
          const j = JSON.parse(line);
          if (j.msg === "intents service listening") resolve(j.url);
        } catch {
          /* banner text */
        }
      }
    });
    proc.stderr!.on("data", (d) => output.push(d.toString()));
    void exited.then(({ code, signal }) =>
      reject(new Error(`service exited (${code ?? signal}) before listening:\n${output.slice(-30).join("\n")}`)),
    );
  });
  url.catch(() => {}); // callers that never await it must not see an unhandled rejection
  return { proc, url, exited, output };
}

/** Stops a child gracefully (SIGTERM: the service closes PostgreSQL and anvil), SIGKILL after `graceMs`. */
async function stopChild(child: ServiceChild, graceMs = 20_000): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  child.proc.kill("SIGTERM");
  const timer = setTimeout(() => child.proc.kill("SIGKILL"), graceMs);
  await child.exited;
  clearTimeout(timer);
}

const EMPTY_CHAINS = JSON.stringify({ chains: [] });

/**
 * The template data folder: a PostgreSQL cluster already initialised and migrated, its password file and
 * a SoftHSM token. Built once (by starting the service on it with no chains and stopping it), then copied.
 * Builds racing each other each build their own and the first rename wins.
 */
async function ensureTemplate(cacheDir: string): Promise<string> {
  const template = path.join(cacheDir, `intents-signer-kit-${templateKey()}`);
  if (fs.existsSync(path.join(template, "ready"))) return template;
  const building = `${template}.build-${randomBytes(4).toString("hex")}`;
  fs.mkdirSync(building, { recursive: true });
  try {
    const chainsFile = path.join(building, "chains.json");
    fs.writeFileSync(chainsFile, EMPTY_CHAINS);
    const dataDir = path.join(building, "data");
    const child = spawnServiceProcess(
      { DATA_DIR: dataDir, CHAINS_FILE: chainsFile, LOCAL_CHAIN: "off", TRACKER: "off", ADMIN_API_KEY: newKey() },
      { bundle: await serverBundle() },
    );
    try {
      await child.url;
    } finally {
      await stopChild(child);
    }
    for (const f of ["lock", "anvil"]) fs.rmSync(path.join(dataDir, f), { recursive: true, force: true });
    fs.rmSync(chainsFile);
    fs.writeFileSync(path.join(building, "ready"), "");
    try {
      fs.renameSync(building, template);
    } catch {
      fs.rmSync(building, { recursive: true, force: true }); // another start won the race
    }
  } catch (err) {
    fs.rmSync(building, { recursive: true, force: true });
    throw err;
  }
  return template;
}

function newKey(): string {
  return "1ck_" + randomBytes(32).toString("base64url");
}

/** The chains file of one kit: the caller's chains (1 confirmation: forks mine on demand), or the local dev chain. */
function chainsFileFor(chains: KitChain[]): string {
  if (chains.length === 0) {
    const all = JSON.parse(fs.readFileSync(path.join(ROOT, "chains.json"), "utf8")) as { chains: Array<{ name: string }> };
    return JSON.stringify({ chains: all.chains.filter((c) => c.name === "local") });
  }
  return JSON.stringify({
    chains: chains.map((c) => ({
      name: c.name,
      display_name: c.name,
      chain_id: c.chainId,
      native_currency: "ETH",
      is_testnet: true,
      is_enabled: true,
      rpc_urls: [c.rpcUrl],
      eip1559: true,
      confirmations: 1,
      aliases: [],
    })),
  });
}

export async function startSigner(opts: StartSignerOptions = {}): Promise<Signer> {
  const named = opts.chains ?? [];
  const names = new Set<string>();
  for (const c of named) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(c.name)) throw new Error(`chain name '${c.name}': lower-case letters, digits and '-'`);
    if (!Number.isSafeInteger(c.chainId) || c.chainId <= 0) throw new Error(`chain '${c.name}': chainId must be a positive integer`);
    if (names.has(c.name)) throw new Error(`chain '${c.name}' is named twice`);
    names.add(c.name);
  }
  const template = await ensureTemplate(opts.cacheDir ?? os.tmpdir());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "intents-signer-kit-run-"));
  let child: ServiceChild | undefined;
  const removeAll = async () => {
    if (child) await stopChild(child);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    fs.chmodSync(dir, 0o755);
    const dataDir = path.join(dir, "data");
    // cp -a keeps owners and modes: as root the cluster belongs to the `postgres` user.
    await execFileAsync("cp", ["-a", path.join(template, "data"), dataDir]);
    const chainsFile = path.join(dir, "chains.json");
    fs.writeFileSync(chainsFile, chainsFileFor(named));
    const operatorKey = newKey();
    child = spawnServiceProcess(
      {
        LOG_LEVEL: "info",
        ...opts.env,
        DATA_DIR: dataDir,
        CHAINS_FILE: chainsFile,
        ADMIN_API_KEY: operatorKey,
        LOCAL_CHAIN: named.length ? "off" : "anvil",
        LOCAL_CHAIN_STATE_INTERVAL_SECONDS: "0",
      },
      { bundle: await serverBundle() },
    );
    const url = await child.url;
    const running = child;
    const request = async <T = any>(method: string, urlPath: string, body?: unknown, token = operatorKey): Promise<T> => {
      const r = await fetch(url + urlPath, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      if (!r.ok) throw new Error(`${method} ${urlPath}: ${r.status} ${text}`);
      return (text ? JSON.parse(text) : undefined) as T;
    };
    let chains = named;
    if (named.length === 0) {
      const info = await request<{ chains: Array<{ name: string; chain_id: number }> }>("GET", "/v1/chains");
      const local = info.chains.find((c) => c.name === "local");
      const localUrl = running.output.map((l) => /"url":"([^"]+)","msg":"local anvil chain started"/.exec(l)?.[1]).find(Boolean);
      if (!local || !localUrl) throw new Error("the service did not start its local chain");
      chains = [{ name: "local", chainId: local.chain_id, rpcUrl: localUrl }];
    }
    const rpc = (chain?: string) => {
      const c = chain === undefined ? chains[0] : chains.find((x) => x.name === chain || String(x.chainId) === chain);
      if (!c) throw new Error(`unknown chain '${chain}' (this kit signs for ${chains.map((x) => x.name).join(", ")})`);
      return createPublicClient({ transport: http(c.rpcUrl) });
    };
    const fund = async (address: string, wei: bigint, chain?: string) => {
      await rpc(chain).request({ method: "anvil_setBalance" as never, params: [address, toHex(wei)] as never });
    };
    let stopped = false;
    return {
      url,
      operatorKey,
      chains,
      dir,
      pid: running.proc.pid!,
      request,
      fund,
      async createAgent(fields = {}) {
        const created = await request<{ agent: { id: string }; api_key: string }>("POST", "/v1/agents", {
          name: "agent",
          intents_api_enabled: true,
          ...fields,
        });
        const tok = await request<{ access_token: string }>("POST", "/v1/auth/agent-token", {
          api_key: created.api_key,
          agent_id: created.agent.id,
        });
        return { id: created.agent.id, apiKey: created.api_key, token: tok.access_token };
      },
      async createSigningKey(o) {
        const key = o.agentId
          ? await request<KitSigningKey>("POST", `/v1/agents/${o.agentId}/signing-keys`, { chain: o.chain })
          : await request<KitSigningKey>("POST", "/v1/signing-keys", {
              path: o.path ?? `keys/kit-${randomBytes(4).toString("hex")}`,
              chain: o.chain,
            });
        for (const agentId of o.grantTo ?? []) await request("POST", `/v1/signing-keys/${key.id}/grants`, { agent_id: agentId });
        if (o.fund !== undefined) await fund(key.address, o.fund, o.chain);
        return { id: key.id, path: key.path, address: key.address, chain: key.chain };
      },
      async setApprovalRules(agentId, rules) {
        await request("PUT", `/v1/agents/${agentId}/approval-rules`, { approval_rules: rules });
      },
      async approve(approvalId, o = {}) {
        const seen = await request<KitApproval>("GET", `/v1/pending-approvals/${approvalId}`);
        return request<KitApproval>("POST", `/v1/pending-approvals/${approvalId}/approve`, {
          decision: o.decision ?? "approve",
          payload_hash: seen.payload_hash,
          ...(o.reason !== undefined ? { reason: o.reason } : {}),
        });
      },
      async fundToken(address, token, amount, chain) {
        return setTokenBalance(rpc(chain), address as Hex, token as Hex, amount);
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await removeAll();
      },
    };
  } catch (err) {
    await removeAll();
    throw err;
  }
}

const BALANCE_OF = [
  {
    type: "function",
    name: "balanceOf",
    stateMutability: "view",
    inputs: [{ name: "a", type: "address" }],
    outputs: [{ type: "uint256" }],
  },
] as const;
/** How many storage slots are probed for the balance mapping. */
const PROBE_SLOTS = 100;

/**
 * Finds the storage slot of `balanceOf[holder]` by writing a marker value to each candidate (Solidity:
 * keccak256(holder . slot); Vyper: keccak256(slot . holder)) and reading balanceOf back; a wrong
 * candidate is restored at once. Then writes `amount` there.
 */
export async function setTokenBalance(
  client: ReturnType<typeof createPublicClient>,
  holder: Hex,
  token: Hex,
  amount: bigint,
): Promise<{ slot: number; layout: "solidity" | "vyper" }> {
  const balanceOf = async () =>
    decodeFunctionResult({
      abi: BALANCE_OF,
      functionName: "balanceOf",
      data:
        (await client.call({ to: token, data: encodeFunctionData({ abi: BALANCE_OF, functionName: "balanceOf", args: [holder] }) })).data ??
        "0x",
    });
  const setStorage = (slot: Hex, value: Hex) =>
    client.request({ method: "anvil_setStorageAt" as never, params: [token, slot, value] as never });
  const marker = 0x1c1a1b1d1e1f0123456789n;
  for (let slot = 0; slot < PROBE_SLOTS; slot++) {
    for (const layout of ["solidity", "vyper"] as const) {
      const key = keccak256(
        layout === "solidity"
          ? encodeAbiParameters([{ type: "address" }, { type: "uint256" }], [holder, BigInt(slot)])
          : encodeAbiParameters([{ type: "uint256" }, { type: "address" }], [BigInt(slot), holder]),
      );
      const before = (await client.getStorageAt({ address: token, slot: key })) ?? pad("0x0");
      await setStorage(key, pad(toHex(marker)));
      const seen = await balanceOf().catch(() => undefined);
      if (seen === marker) {
        await setStorage(key, pad(toHex(amount)));
        return { slot, layout };
      }
      await setStorage(key, before);
    }
  }
  throw new Error(`no balance mapping found in the first ${PROBE_SLOTS} storage slots of ${token}`);
}
