// Where the CPU goes during a bench phase: CPU seconds of each process of the stack (this process =
// the service with its HSM threads, the load client, PostgreSQL's postmaster and backends, anvil),
// read from /proc (Linux; elsewhere the figures are left out), and an optional V8 CPU profile of the
// service's main thread with its heaviest functions.
import fs from "node:fs";
import { Session } from "node:inspector/promises";
import { execFileSync } from "node:child_process";

const TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcTimes {
  comm: string;
  ppid: number;
  cpuS: number;
}

function readProc(pid: number): ProcTimes | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const f = stat.slice(close + 2).split(" ");
    // After the comm: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    return { comm, ppid: Number(f[1]), cpuS: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS };
  } catch {
    return undefined;
  }
}

/** CPU seconds used so far by this process and each kind of process below it. */
export function cpuSnapshot(loadClientPid?: number): Record<string, number> | undefined {
  if (!fs.existsSync("/proc/self/stat")) return undefined;
  const all = new Map<number, ProcTimes>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name));
    if (p) all.set(Number(name), p);
  }
  const out: Record<string, number> = { service: readProc(process.pid)?.cpuS ?? 0 };
  const walk = (pid: number) => {
    for (const [child, p] of all) {
      if (p.ppid !== pid) continue;
      const kind =
        child === loadClientPid
          ? "load_client"
          : /^postgres|^postmaster/.test(p.comm)
            ? "postgres"
            : /anvil/.test(p.comm)
              ? "anvil"
              : "other";
      // A postmaster's children are counted one by one; its own cutime already holds the ones that exited.
      out[kind] = (out[kind] ?? 0) + p.cpuS;
      if (kind !== "load_client") walk(child);
    }
  };
  walk(process.pid);
  // Our own figure includes the cutime of exited children (e.g. initdb); keep it to this process's own threads.
  const self = fs.readFileSync("/proc/self/stat", "utf8");
  const f = self.slice(self.lastIndexOf(")") + 2).split(" ");
  out.service = (Number(f[11]) + Number(f[12])) / TICKS;
  // …and how much of it the kernel did for us (syscalls: socket writes and reads, futexes, epoll).
  out.service_kernel = Number(f[12]) / TICKS;
  return out;
}

/** Machine-wide CPU jiffies from /proc/stat: all, idle (+iowait) and steal (taken by the hypervisor for other guests). */
export function machineSnapshot(): { total: number; idle: number; steal: number } | undefined {
  try {
    const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    return { total: f.slice(0, 8).reduce((a, b) => a + b, 0), idle: f[3] + f[4], steal: f[7] ?? 0 };
  } catch {
    return undefined;
  }
}

/** Share of the machine's CPU time stolen by the hypervisor between two snapshots (a noisy host makes figures vary). */
export function stealShare(before: ReturnType<typeof machineSnapshot>, after: ReturnType<typeof machineSnapshot>): number | undefined {
  if (!before || !after || after.total === before.total) return undefined;
  return (after.steal - before.steal) / (after.total - before.total);
}

export function cpuDelta(
  before: Record<string, number> | undefined,
  after: Record<string, number> | undefined,
): Record<string, number> | undefined {
  if (!before || !after) return undefined;
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)]))
    out[k] = Math.round(((after[k] ?? 0) - (before[k] ?? 0)) * 1000) / 1000;
  return out;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/** Starts the V8 sampling profiler on this thread; the returned function stops it and summarises. */
export async function startProfile(): Promise<(file?: string) => Promise<Array<{ fn: string; self_pct: number }>>> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 500 });
  await session.post("Profiler.start");
  return async (file?: string) => {
    const { profile } = (await session.post("Profiler.stop")) as { profile: { nodes: ProfileNode[] } };
    session.disconnect();
    if (file) fs.writeFileSync(file, JSON.stringify(profile));
    const self = new Map<string, number>();
    let total = 0;
    for (const n of profile.nodes) {
      const hits = n.hitCount ?? 0;
      total += hits;
      const url = n.callFrame.url.replace(/^.*\/node_modules\//, "").replace(/^file:\/\/.*?\/(src|bench)\//, "$1/");
      const key = `${n.callFrame.functionName || "(anonymous)"} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ""}`.trim();
      self.set(key, (self.get(key) ?? 0) + hits);
    }
    return [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .map(([fn, hits]) => ({ fn, self_pct: Math.round((hits / Math.max(1, total)) * 1000) / 10 }));
  };
}
