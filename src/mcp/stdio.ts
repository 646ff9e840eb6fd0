// MCP over stdio: `intents mcp`, started by the agent host. It reads the service URL and the agent's
// credential from the environment (INTENTS_URL, INTENTS_AGENT_KEY), so the model never holds either,
// and runs each tool call as an HTTP request to the service with that credential: the service applies
// every rule exactly as for any other request of the agent.
import { randomUUID } from "node:crypto";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { buildMcpServer, type ServiceCaller } from "./tools.js";

export interface StdioOptions {
  url: string;
  /** The agent's `ocv_…` key or JWT; sent only in the Authorization header. */
  credential: string;
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
  timeoutMs?: number;
}

export function httpCaller(opts: { url: string; credential: string; timeoutMs?: number }): ServiceCaller {
  const base = opts.url.replace(/\/+$/, "");
  let agentId: string | undefined;
  const request = async (method: string, path: string, body?: unknown, idempotencyKey?: string) => {
    let res: Response;
    try {
      res = await fetch(base + path, {
        method,
        headers: {
          authorization: `Bearer ${opts.credential}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...(idempotencyKey ? { "idempotency-key": idempotencyKey } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 120_000),
      });
    } catch (err) {
      // An unknown outcome: the host may retry the call (same request id, same Idempotency-Key).
      const c = (err as { cause?: { code?: string } }).cause;
      return {
        status: 503,
        body: {
          title: "Service unreachable",
          detail: `Cannot reach the service (${c?.code ?? (err as Error).name}); retrying the same call is safe.`,
        },
      };
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = { detail: text.slice(0, 500) };
    }
    return { status: res.status, body: parsed };
  };
  return {
    agentId: async () => {
      if (agentId) return agentId;
      const me = await request("GET", "/v1/agents/me");
      const id = (me.body as { id?: unknown } | undefined)?.id;
      if (me.status !== 200 || typeof id !== "string") {
        const detail = (me.body as { detail?: string } | undefined)?.detail ?? `HTTP ${me.status}`;
        throw new Error(
          `Cannot identify the agent (${me.status}): ${detail}${me.status === 401 ? " The agent's credential is missing, expired or revoked." : ""}`,
        );
      }
      return (agentId = id);
    },
    call: (r) => request(r.method, r.path, r.body, r.idempotencyKey),
  };
}

/** Serves MCP on stdin/stdout until stdin ends. */
export async function runStdioMcp(opts: StdioOptions): Promise<void> {
  // One session per process: a host that restarts the server starts a new idempotency scope.
  const server = buildMcpServer(httpCaller(opts), { id: randomUUID() });
  const transport = new StdioServerTransport(opts.stdin as never, opts.stdout as never);
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
  });
  await server.connect(transport);
  (opts.stdin ?? process.stdin).once("end", () => void server.close());
  await closed;
}
