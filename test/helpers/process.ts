// The service as its own process, started the way `npm start` starts it (one node process with tsx as
// a loader, so signals reach the service itself), for tests of start-up, signals and crashes.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "../..");

export interface ServiceProcess {
  proc: ChildProcess;
  /** Resolves with the base URL once the service logs that it listens; rejects if it exits first. */
  url: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every stdout line (JSON logs and the banner) and stderr chunk, in order. */
  output: string[];
}

export function spawnService(env: Record<string, string>): ServiceProcess {
  const proc = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on("exit", (code, signal) => r({ code, signal })));
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
    void exited.then(({ code, signal }) => reject(new Error(`service exited (${code ?? signal}) before listening:\n${output.slice(-30).join("\n")}`)));
  });
  url.catch(() => {}); // callers that never await it must not see an unhandled rejection
  return { proc, url, exited, output };
}
