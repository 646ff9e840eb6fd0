// Day-to-day running of `npm start` on one DATA_DIR, as its own process:
//   - the printed banner lines run with bash, line by line, each exit status checked (first start and restart);
//   - a second start on the same DATA_DIR (same port, other port) exits non-zero naming the running pid,
//     and the first service, its database untouched, still serves a submission;
//   - SIGINT, start again: the old rows are still confirmed and on the (persisted) local chain, a new
//     submission is confirmed; the same after kill -9 of the whole service (node, PostgreSQL, anvil).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { descendants, spawnService, type ServiceProcess } from "../helpers/process.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The banner's command block: from `BASE=` to the next empty line. */
async function bannerScript(svc: ServiceProcess): Promise<string[]> {
  await until("the banner", async () =>
    svc.output.some((l) => l.startsWith('curl -sS --fail-with-body "$BASE/v1/agents/$AGENT_ID/transactions/$TX_ID')),
  );
  const start = svc.output.findIndex((l) => l.startsWith("BASE="));
  return svc.output.slice(
    start,
    svc.output.findIndex((l, i) => i > start && l === ""),
  );
}

/** Runs the lines in one bash, recording each line's exit status; returns the statuses and stdout. */
function runLines(lines: string[]): { statuses: number[]; stdout: string; stderr: string } {
  const script = ["set -o pipefail", ...lines.flatMap((l) => [l, `echo "__rc=$?" >&2`])].join("\n");
  const r = spawnSync("bash", ["-c", script], {
    encoding: "utf8",
    timeout: 120_000,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
  });
  const statuses = [...r.stderr.matchAll(/__rc=(\d+)/g)].map((m) => Number(m[1]));
  return { statuses, stdout: r.stdout, stderr: r.stderr };
}

async function api(base: string, method: string, url: string, token: string, body?: unknown) {
  const r = await fetch(base + url, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

async function rpc(url: string, method: string, params: unknown[]) {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  return ((await r.json()) as { result: any }).result;
}

function chainUrl(svc: ServiceProcess): string {
  for (const l of svc.output) {
    try {
      const j = JSON.parse(l);
      if (j.msg === "local anvil chain started") return j.url;
    } catch {
      /* banner */
    }
  }
  throw new Error("no local chain url in the log");
}

describe("npm start, day to day", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "intents-d2d-"));
  const started: ServiceProcess[] = [];
  const env = { DATA_DIR: dataDir, LOCAL_CHAIN_STATE_INTERVAL_SECONDS: "1", TRACKER_INTERVAL_MS: "200" };
  const start = (extra: Record<string, string> = {}) => {
    const s = spawnService({ ...env, ...extra });
    started.push(s);
    return s;
  };
  afterAll(() => {
    for (const s of started) {
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) continue;
      for (const pid of descendants(s.proc.pid!)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
      s.proc.kill("SIGKILL");
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  let op = "";
  let agent = { id: "", token: "" };
  const old: Array<{ id: string; tx_hash: string }> = [];

  async function submitAndConfirm(base: string): Promise<{ id: string; tx_hash: string }> {
    const r = await api(base, "POST", `/v1/agents/${agent.id}/transactions`, agent.token, { to: DEAD, value: "0.001", chain: "local" });
    expect(r.status).toBe(201);
    await until("confirmed", async () => (await api(base, "GET", `/v1/transactions/${r.body.id}`, op)).body.chain_status === "confirmed");
    return { id: r.body.id, tx_hash: r.body.tx_hash };
  }

  async function oldRowsHold(base: string, chain: string): Promise<void> {
    for (const t of old) {
      const row = (await api(base, "GET", `/v1/transactions/${t.id}`, op)).body;
      expect(row.chain_status).toBe("confirmed");
      const receipt = await rpc(chain, "eth_getTransactionReceipt", [t.tx_hash]);
      expect(receipt?.status).toBe("0x1");
    }
  }

  it("first start: the banner lines all succeed; a second start on the same DATA_DIR exits and leaves the first intact", async () => {
    const first = start();
    const base = await first.url;
    const lines = await bannerScript(first);
    expect(lines.some((l) => l.includes("$ADMIN_API_KEY"))).toBe(false);
    const run = runLines(lines);
    expect(run.statuses).toEqual(lines.map(() => 0));
    const tx = JSON.parse(run.stdout);
    expect(tx).toMatchObject({ chain: "local", value: "0.01" });
    op = lines.find((l) => l.startsWith("OP="))!.slice(3);

    // An agent of our own for the later submissions.
    const created = await api(base, "POST", "/v1/agents", op, { name: "d2d", intents_api_enabled: true });
    const token = await fetch(`${base}/v1/auth/agent-token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: created.body.api_key }),
    });
    agent = { id: created.body.agent.id, token: ((await token.json()) as { access_token: string }).access_token };
    old.push({
      id: tx.id,
      tx_hash: await until("hash", async () => (await api(base, "GET", `/v1/transactions/${tx.id}`, op)).body.tx_hash),
    });

    // A second start on the same folder, on the same port and on another one.
    const port = new URL(base).port;
    for (const extra of [{ PORT: port }, { PORT: "0" }]) {
      const second = start(extra);
      const exit = await second.exited;
      expect(exit.code).not.toBe(0);
      const said = second.output.join("\n");
      expect(said).toContain(`is in use by another intents service (pid ${first.proc.pid})`);
      expect(said).not.toMatch(/PostgreSQL|listening/);
    }
    // The first still serves, with its database: health, and a submission confirmed.
    expect(((await (await fetch(`${base}/v1/health`)).json()) as { status: string }).status).toBe("healthy");
    old.push(await submitAndConfirm(base));

    const exited = first.exited;
    first.proc.kill("SIGINT");
    expect((await exited).code).toBe(0);
  });

  it("after SIGINT: the restart banner works as pasted, old rows are still confirmed and on chain, a new submission is confirmed", async () => {
    const svc = start();
    const base = await svc.url;
    const lines = await bannerScript(svc);
    const text = svc.output.join("\n");
    expect(text).not.toMatch(/generated\. It is shown only this once/);
    expect(text).toMatch(/printed once at the first start/);
    expect(lines.some((l) => l.includes("$ADMIN_API_KEY"))).toBe(false);
    const run = runLines(lines);
    if (run.statuses.some((s) => s !== 0)) console.log(run.stderr);
    expect(run.statuses).toEqual(lines.map(() => 0));
    expect(JSON.parse(run.stdout)).toMatchObject({ chain: "local", value: "0.01" });

    await oldRowsHold(base, chainUrl(svc));
    old.push(await submitAndConfirm(base));
    // Let the periodic anvil dump (every second here) include it before the crash below.
    await new Promise((r) => setTimeout(r, 2_500));

    // kill -9 of the whole service: node, its PostgreSQL and its anvil.
    const pids = [svc.proc.pid!, ...descendants(svc.proc.pid!)];
    for (const pid of pids) process.kill(pid, "SIGKILL");
    await svc.exited;
  });

  it("after kill -9 of everything: the old rows are still confirmed and on chain, a new submission is confirmed", async () => {
    const svc = start();
    const base = await svc.url;
    await oldRowsHold(base, chainUrl(svc));
    old.push(await submitAndConfirm(base));
    expect(old.length).toBe(4);
    await new Promise((r) => setTimeout(r, 2_500));
    // kill -9 of the node process only: its PostgreSQL and anvil are left running, orphaned.
    orphans = descendants(svc.proc.pid!).filter((pid) => {
      try {
        return /postgres|anvil/.test(fs.readFileSync(`/proc/${pid}/comm`, "utf8"));
      } catch {
        return false;
      }
    });
    svc.proc.kill("SIGKILL");
    await svc.exited;
    expect(orphans.some((pid) => fs.existsSync(`/proc/${pid}`))).toBe(true);
  });

  let orphans: number[] = [];
  it("after kill -9 of the node process alone: the orphaned PostgreSQL and anvil are stopped, everything still holds", async () => {
    const svc = start();
    const base = await svc.url;
    const zombie = (pid: number) => {
      try {
        return / Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
      } catch {
        return true; // gone
      }
    };
    expect(orphans.length).toBeGreaterThanOrEqual(2);
    for (const pid of orphans) await until(`orphan ${pid} stopped`, async () => zombie(pid), 10_000);
    await oldRowsHold(base, chainUrl(svc));
    old.push(await submitAndConfirm(base));
    const exited = svc.exited;
    svc.proc.kill("SIGINT");
    expect((await exited).code).toBe(0);
  });
});
