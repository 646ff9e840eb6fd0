// One owner per data folder. The service holds an exclusive flock(2) on `<DATA_DIR>/lock` for its
// whole life. The lock belongs to an open file description of this process, so the kernel drops it
// the moment the process ends, however it ends (Ctrl-C, crash, kill -9): there is no stale lock to
// clean up, and a postmaster found in the folder while we hold the lock is an orphan for certain.
//
// Node has no flock(); util-linux's `flock` takes it for us on a descriptor we pass down as fd 3. A
// flock is held by the open file description, not by the process that called it, so the lock stays
// with our descriptor after the helper exits. Node opens files close-on-exec, so no child (PostgreSQL,
// anvil) inherits the descriptor and keeps the lock alive after this process dies.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

export class DataDirBusy extends Error {}

export interface DataDirLock {
  file: string;
  release(): void;
}

/** Takes the data folder's lock or throws DataDirBusy naming the pid that holds it. */
export function lockDataDir(dataDir: string): DataDirLock {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(path.resolve(dataDir), "lock");
  // r+ (no truncation): the holder's pid stays readable until we own the lock.
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  const r = spawnSync("flock", ["--exclusive", "--nonblock", "--conflict-exit-code", "75", "3"], {
    stdio: ["ignore", "ignore", "pipe", fd],
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") return pidFileLock(dataDir, file, fd);
  if (r.error || (r.status !== 0 && r.status !== 75)) {
    fs.closeSync(fd);
    throw new Error(`could not lock ${file}: ${r.error ? r.error.message : r.stderr.toString().trim()}`);
  }
  if (r.status === 75) {
    const holder = fs.readFileSync(file, "utf8").trim();
    fs.closeSync(fd);
    throw new DataDirBusy(
      `${path.resolve(dataDir)} is in use by another intents service${/^\d+$/.test(holder) ? ` (pid ${holder})` : ""}. ` +
        'Each process needs its own DATA_DIR: stop that one, or start this one with another DATA_DIR (see README, "Several processes").',
    );
  }
  return holdWithPid(file, fd, false);
}

/**
 * Without `flock` (e.g. macOS without util-linux): the pid in the file, checked for life. Weaker (a
 * reused pid looks alive; two starts at the same instant can both pass), hence the warning.
 */
function pidFileLock(dataDir: string, file: string, fd: number): DataDirLock {
  process.stderr.write("warning: the `flock` command (util-linux) is not installed; DATA_DIR is guarded by a pid file only\n");
  const holder = Number(fs.readFileSync(file, "utf8").trim());
  let alive = false;
  if (Number.isInteger(holder) && holder > 0 && holder !== process.pid) {
    try {
      process.kill(holder, 0);
      alive = true;
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === "EPERM";
    }
  }
  if (alive) {
    fs.closeSync(fd);
    throw new DataDirBusy(
      `${path.resolve(dataDir)} is in use by another intents service (pid ${holder}). Each process needs its own DATA_DIR.`,
    );
  }
  return holdWithPid(file, fd, true);
}

/** The lock is ours: the file names this process; release closes it (emptied first when the pid is the lock). */
function holdWithPid(file: string, fd: number, emptyOnRelease: boolean): DataDirLock {
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, `${process.pid}\n`, 0);
  return {
    file,
    release: () => {
      try {
        if (emptyOnRelease) fs.ftruncateSync(fd, 0);
        fs.closeSync(fd);
      } catch {
        /* already closed */
      }
    },
  };
}

/** Fails with a clear message when host:port cannot be bound, before anything is started. Port 0 always passes. */
export async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === "EADDRINUSE"
            ? `${host}:${port} is already in use (PORT/HOST); nothing was started`
            : `cannot listen on ${host}:${port}: ${err.message}`,
        ),
      ),
    );
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve()));
  });
}
