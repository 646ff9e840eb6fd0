// Starts a local anvil node (the `local` development chain, forks for simulation, test chains).
// The binary ships in the npm package @foundry-rs/anvil-linux-amd64; ANVIL_BIN points elsewhere on other
// platforms. Port 0 lets the OS choose; the real port is read from anvil's "Listening on" line.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { createAnvil } from "@viem/anvil";

export interface AnvilNode {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface AnvilOptions {
  binary?: string;
  chainId?: number;
  forkUrl?: string;
  forkBlockNumber?: bigint;
  /** Seconds between blocks; omit for automine. */
  blockTime?: number;
  /**
   * Automine, plus a block every this many seconds (anvil's mixed mining). Under concurrent sends
   * automine can leave a ready transaction in the pool unmined until another one arrives
   * (foundry-rs/foundry#10122); the periodic block mines it.
   */
  sweepSeconds?: number;
  noMining?: boolean;
  gasLimit?: bigint;
  baseFee?: bigint;
  accounts?: number;
  balance?: number;
  extraArgs?: Record<string, unknown>;
  /** Load the chain from this file if it exists and dump it there on exit (anvil --state). */
  statePath?: string;
  /** With statePath: also dump every this many seconds (0: on exit only). */
  stateIntervalSeconds?: number;
}

export function defaultAnvilBinary(): string {
  return createRequire(import.meta.url).resolve("@foundry-rs/anvil-linux-amd64/bin/anvil");
}

/**
 * An anvil left running by a process that was killed -9 would keep writing its (older) chain over
 * the state file. Asks it to stop (SIGTERM: it writes its state one last time, which the new node then
 * loads), then kills it if it lingers. Linux only (/proc); elsewhere nothing is found.
 */
export async function stopOrphanAnvil(statePath: string): Promise<number[]> {
  const found: number[] = [];
  let pids: string[] = [];
  try {
    pids = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return found;
  }
  for (const d of pids) {
    try {
      const args = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      const i = args.indexOf("--state");
      if (i >= 0 && args[i + 1] === statePath && /anvil$/.test(args[0])) found.push(Number(d));
    } catch {
      /* gone meanwhile, or not ours to read */
    }
  }
  for (const pid of found) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      continue;
    }
    for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 50));
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* stopped */
    }
  }
  return found;
}

export async function startAnvil(opts: AnvilOptions = {}): Promise<AnvilNode> {
  let port = 0;
  if (opts.statePath) {
    fs.mkdirSync(path.dirname(opts.statePath), { recursive: true });
    await stopOrphanAnvil(opts.statePath);
  }
  const anvil = createAnvil({
    anvilBinary: opts.binary ?? defaultAnvilBinary(),
    host: "127.0.0.1",
    port: 0,
    chainId: opts.chainId,
    forkUrl: opts.forkUrl,
    forkBlockNumber: opts.forkBlockNumber,
    blockTime: opts.blockTime ?? opts.sweepSeconds,
    noMining: opts.noMining,
    gasLimit: opts.gasLimit,
    blockBaseFeePerGas: opts.baseFee,
    accounts: opts.accounts ?? 2,
    balance: opts.balance,
    // @viem/anvil leaves a timer of this length running after stop(); keep it short.
    stopTimeout: 2_000,
    startTimeout: 20_000,
    // Not in @viem/anvil's option types; passed through as --mixed-mining like any other option.
    ...(opts.sweepSeconds !== undefined && opts.blockTime === undefined ? { mixedMining: true } : {}),
    ...(opts.statePath
      ? { state: opts.statePath, ...(opts.stateIntervalSeconds ? { stateInterval: opts.stateIntervalSeconds } : {}) }
      : {}),
    ...opts.extraArgs,
  });
  const off = anvil.on("message", (message: string) => {
    const m = /Listening on 127\.0\.0\.1:(\d+)/.exec(message);
    if (m) port = Number(m[1]);
  });
  await anvil.start();
  off();
  if (!port) {
    await anvil.stop().catch(() => {});
    throw new Error("anvil started but did not print its port");
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await anvil.stop().catch(() => {});
    },
  };
}
