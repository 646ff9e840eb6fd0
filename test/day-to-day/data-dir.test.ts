// The data folder's lock and its reachability for PostgreSQL's `postgres` user, on their own:
// a held lock names its pid and dies with its process (kill -9 included); a folder closed to other
// users above DATA_DIR stops a root start naming the folder and the fix; the port is checked first.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { assertPortFree, DataDirBusy, lockDataDir } from "../../src/data-dir-lock.js";
import { makeReachableForPostgres } from "../../src/db/embedded.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "intents-datadir-"));
fs.chmodSync(tmp, 0o711);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A separate process that takes the lock, says so, and waits to be killed. */
function holder(dir: string) {
  const code = `
    const { spawnSync } = require("node:child_process"); const fs = require("node:fs");
    const fd = fs.openSync(${JSON.stringify(path.join(dir, "lock"))}, fs.constants.O_RDWR | fs.constants.O_CREAT);
    const r = spawnSync("flock", ["-xn", "3"], { stdio: ["ignore", "ignore", "ignore", fd] });
    fs.ftruncateSync(fd, 0); fs.writeSync(fd, process.pid + "\\n", 0);
    console.log(r.status === 0 ? "locked" : "busy"); setInterval(() => {}, 1000);`;
  const p = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  const ready = new Promise<string>((r) => p.stdout!.once("data", (d) => r(d.toString().trim())));
  return { p, ready };
}

describe("DATA_DIR lock", () => {
  it("a second owner is refused with the holder's pid; kill -9 of the holder frees the folder at once", async () => {
    const dir = path.join(tmp, "a");
    fs.mkdirSync(dir);
    const h = holder(dir);
    expect(await h.ready).toBe("locked");
    let err: unknown;
    try {
      lockDataDir(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataDirBusy);
    expect((err as Error).message).toContain(`(pid ${h.p.pid})`);
    const gone = new Promise((r) => h.p.once("exit", r));
    h.p.kill("SIGKILL");
    await gone;
    const lock = lockDataDir(dir);
    expect(fs.readFileSync(path.join(dir, "lock"), "utf8").trim()).toBe(String(process.pid));
    // Held by this process now: another process is refused.
    const other = holder(dir);
    expect(await other.ready).toBe("busy");
    other.p.kill("SIGKILL");
    lock.release();
    const again = lockDataDir(dir);
    again.release();
  });

  it("without the flock command: a pid file, checked for life, with a warning", async () => {
    const dir = path.join(tmp, "noflock");
    fs.mkdirSync(dir);
    const sleeper = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    fs.writeFileSync(path.join(dir, "lock"), `${sleeper.pid}\n`);
    const savedPath = process.env.PATH;
    process.env.PATH = path.join(tmp, "empty-bin"); // no flock found
    try {
      expect(() => lockDataDir(dir)).toThrow(`(pid ${sleeper.pid})`);
      const gone = new Promise((r) => sleeper.once("exit", r));
      sleeper.kill("SIGKILL");
      await gone;
      const lock = lockDataDir(dir);
      expect(fs.readFileSync(path.join(dir, "lock"), "utf8").trim()).toBe(String(process.pid));
      lock.release();
    } finally {
      process.env.PATH = savedPath;
      sleeper.kill("SIGKILL");
    }
  });

  it("refuses a port in use before anything starts; port 0 always passes", async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as net.AddressInfo).port;
    await expect(assertPortFree("127.0.0.1", port)).rejects.toThrow(`127.0.0.1:${port} is already in use`);
    await new Promise((r) => srv.close(r));
    await expect(assertPortFree("127.0.0.1", port)).resolves.toBeUndefined();
    await expect(assertPortFree("127.0.0.1", 0)).resolves.toBeUndefined();
  });
});

describe.runIf(process.getuid?.() === 0)("DATA_DIR as root", () => {
  it("opens DATA_DIR itself (mktemp -d makes it 0700) for traversal by postgres", () => {
    const dir = fs.mkdtempSync(path.join(tmp, "mk-"));
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    makeReachableForPostgres(dir);
    expect(fs.statSync(dir).mode & 0o001).toBe(0o001);
    expect(fs.statSync(dir).mode & 0o004).toBe(0); // traversal only, no listing
  });

  it("names a closed parent folder and the fix", () => {
    const closed = fs.mkdtempSync(path.join(tmp, "closed-"));
    const dir = path.join(closed, "data");
    fs.mkdirSync(dir);
    expect(() => makeReachableForPostgres(dir)).toThrow(new RegExp(`because ${closed} \\(mode 700\\).*chmod o\\+x ${closed}`));
  });
});
