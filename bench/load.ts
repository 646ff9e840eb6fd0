// Parent side of the load generator: forks bench/load-client.ts (with tsx) once and hands it runs.
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { DoneMessage, RequestSpec, RunMessage } from "./load-client.js";

export type { Outcome, RequestSpec } from "./load-client.js";

export class LoadClient {
  private readonly child: ChildProcess;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (m: DoneMessage) => void; reject: (e: Error) => void }>();

  constructor() {
    this.child = fork(fileURLToPath(new URL("./load-client.ts", import.meta.url)), [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.child.on("message", (m: DoneMessage) => {
      this.pending.get(m.id)?.resolve(m);
      this.pending.delete(m.id);
    });
    this.child.on("exit", (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`load client exited (${code})`));
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  run(baseUrl: string, concurrency: number, requests: RequestSpec[]): Promise<DoneMessage> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const msg: RunMessage = { kind: "run", id, baseUrl, concurrency, requests };
      this.child.send(msg, (err) => err && reject(err));
    });
  }

  close(): void {
    this.child.disconnect();
  }
}
