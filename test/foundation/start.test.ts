// The start command with no configuration but a data folder: embedded PostgreSQL, a SoftHSM token,
// the local anvil chain with a funded keys/local-signer; SIGINT leaves no process behind.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { descendants, ROOT, spawnService } from "../helpers/process.js";

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Running, not merely a zombie waiting for a reaper (a container's PID 1 may not reap). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

function startService(dataDir: string) {
  const svc = spawnService({ DATA_DIR: dataDir });
  return { proc: svc.proc, lines: svc.output, url: svc.url };
}

describe("npm start", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "intents-start-"));
  fs.chmodSync(dataDir, 0o755);
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it("brings up Postgres, SoftHSM and anvil, serves health, and stops everything on SIGINT", async () => {
    const { proc, url, lines } = startService(dataDir);
    const base = await url;
    const health = (await (await fetch(`${base}/v1/health`)).json()) as { status: string; version: unknown };
    expect(health).toMatchObject({ status: "healthy" });
    expect(typeof health.version).toBe("string");
    expect(await (await fetch(`${base}/v1/health/hsm`)).json()).toMatchObject({ status: "healthy" });

    // The printed example commands work verbatim: create an agent, enable it, get a token, send
    // 0.01 ETH on the local chain and read the transaction back.
    await waitFor(() => lines.some((l) => l.startsWith('curl -sS --fail-with-body "$BASE/v1/agents/$AGENT_ID/transactions/$TX_ID')));
    const start = lines.findIndex((l) => l.startsWith("BASE="));
    const script = lines
      .slice(
        start,
        lines.findIndex((l, i) => i > start && l === ""),
      )
      .join("\n");
    expect(lines.some((l) => /^ {2}1ck_[A-Za-z0-9_-]{43}$/.test(l))).toBe(true);
    const out = execFileSync("bash", ["-euo", "pipefail", "-c", script], { encoding: "utf8", timeout: 60_000 });
    const tx = JSON.parse(out);
    expect(tx).toMatchObject({ chain: "local", value: "0.01", status: "broadcast" });
    expect(tx.signed_tx).toBeUndefined();

    // The PIN file is private, and the token lives under DATA_DIR.
    const pinStat = fs.statSync(path.join(dataDir, "softhsm", "pin"));
    expect(pinStat.mode & 0o077).toBe(0);
    expect(fs.readdirSync(path.join(dataDir, "softhsm", "tokens")).length).toBeGreaterThan(0);

    const children = descendants(proc.pid!);
    expect(children.length).toBeGreaterThanOrEqual(2); // postgres and anvil at least
    const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
    proc.kill("SIGINT");
    expect(await exited).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    const left = children.filter(alive);
    if (left.length) console.log(execFileSync("ps", ["-o", "pid,ppid,stat,args", "-p", left.join(",")], { encoding: "utf8" }));
    expect(left).toEqual([]);
  });

  it("starts again on the same data folder (existing cluster, token and key)", async () => {
    const { proc, url } = startService(dataDir);
    const base = await url;
    expect(((await (await fetch(`${base}/v1/health`)).json()) as { status: string }).status).toBe("healthy");
    const exited = new Promise((r) => proc.on("exit", r));
    proc.kill("SIGTERM");
    await exited;
  });

  it("refuses a malformed PORT with a message naming it", () => {
    let err = "";
    try {
      execFileSync(process.execPath, ["--import", "tsx", "src/server.ts"], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, PORT: "eighty", DATA_DIR: dataDir },
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (e) {
      err = (e as { stderr: string }).stderr;
    }
    expect(err).toMatch(/PORT: /);
  });
});
