// The bench's HTTP load generator, run in its own process (forked by bench/load.ts) so that the
// client's CPU never shares the service's event loop. Closed loop: `concurrency` virtual clients,
// each sending its next request as soon as the previous answer arrived, over keep-alive sockets.
import http from "node:http";

export interface RequestSpec {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface RunMessage {
  kind: "run";
  id: number;
  baseUrl: string;
  concurrency: number;
  requests: RequestSpec[];
}

/** Per request: HTTP status (0 = transport error), latency in ms, and `status`/`code` from the JSON answer. */
export type Outcome = [status: number, ms: number, detail: string];

export interface DoneMessage {
  kind: "done";
  id: number;
  wallMs: number;
  startedAt: number;
  outcomes: Outcome[];
}

function send(agent: http.Agent, base: URL, spec: RequestSpec): Promise<Outcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method: spec.method,
        path: spec.path,
        headers: {
          ...(spec.body !== undefined ? { "content-type": "application/json", "content-length": Buffer.byteLength(spec.body) } : {}),
          ...spec.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const ms = performance.now() - t0;
          let detail = "";
          try {
            const j = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { status?: unknown; code?: unknown };
            detail = typeof j.code === "string" ? j.code : typeof j.status === "string" ? j.status : "";
          } catch {
            /* not JSON */
          }
          resolve([res.statusCode ?? 0, ms, detail]);
        });
        res.on("error", (e) => resolve([0, performance.now() - t0, e.message]));
      },
    );
    req.on("error", (e) => resolve([0, performance.now() - t0, e.message]));
    if (spec.body !== undefined) req.write(spec.body);
    req.end();
  });
}

async function run(msg: RunMessage): Promise<DoneMessage> {
  const base = new URL(msg.baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: msg.concurrency, maxFreeSockets: msg.concurrency });
  const outcomes: Outcome[] = new Array(msg.requests.length);
  let next = 0;
  const startedAt = Date.now();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(msg.concurrency, msg.requests.length) }, async () => {
      for (let i = next++; i < msg.requests.length; i = next++) outcomes[i] = await send(agent, base, msg.requests[i]);
    }),
  );
  const wallMs = performance.now() - t0;
  agent.destroy();
  return { kind: "done", id: msg.id, wallMs, startedAt, outcomes };
}

if (process.send) {
  process.on("message", (msg: RunMessage) => {
    if (msg?.kind !== "run") return;
    void run(msg).then((done) => process.send!(done));
  });
  process.on("disconnect", () => process.exit(0));
}
