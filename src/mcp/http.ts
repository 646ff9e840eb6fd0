// MCP over Streamable HTTP at /mcp, on the service itself. The /mcp request is authenticated by the
// ordinary auth hook (agent key or JWT, DPoP when the token is bound, the failed-authentication limits
// and the agent's request budget); operators are refused. Each tool call then runs the agent route in
// process (app.inject) as the principal of the /mcp request that carried it, marked with the MCP
// transport and the tool for the audit trail.
//
// The mark cannot be forged over HTTP: the inner request carries only a single-use random handle to an
// entry in this process's memory (`InternalCalls`), which the hook below turns into the principal; a
// handle that is not there is a 401, and the header is never trusted for anything else.
//
// Sessions (Mcp-Session-Id) belong to the agent that opened them; another agent's request with the id
// is answered as an unknown session. At most MAX_SESSIONS_PER_AGENT per agent (the oldest is closed)
// and idle ones close after SESSION_IDLE_MS.
import { randomBytes, randomUUID } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { forbidden, unauthorized } from "../errors.js";
import { requirePrincipal, type Principal } from "../auth/principal.js";
import type { App } from "../http/types.js";
import { buildMcpServer, type CallExtra, type ServiceCaller } from "./tools.js";

export const MAX_SESSIONS_PER_AGENT = 16;
export const SESSION_IDLE_MS = 30 * 60 * 1000;
const CALL_HEADER = "x-intents-mcp-call";

type AgentPrincipal = Extract<Principal, { type: "agent" }>;

interface Session {
  id: string;
  agentId: string;
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  lastUsed: number;
}

/** In-flight tool calls, by single-use handle: the principal and tool the inner request runs as. */
class InternalCalls {
  private readonly calls = new Map<string, { principal: AgentPrincipal; tool: string }>();
  open(principal: AgentPrincipal, tool: string): string {
    const handle = randomBytes(32).toString("base64url");
    this.calls.set(handle, { principal, tool });
    return handle;
  }
  take(handle: string): { principal: AgentPrincipal; tool: string } | undefined {
    const c = this.calls.get(handle);
    this.calls.delete(handle);
    return c;
  }
  close(handle: string): void {
    this.calls.delete(handle);
  }
}

/** The principal of the /mcp request that carries a tool call (StreamableHTTPServerTransport passes `req.auth` on as `authInfo`). */
function principalOf(extra: CallExtra): AgentPrincipal {
  const p = extra.authInfo?.extra?.principal as AgentPrincipal | undefined;
  if (!p) throw unauthorized();
  return p;
}

export async function mcpRoutes(app: App): Promise<void> {
  const calls = new InternalCalls();
  const sessions = new Map<string, Session>();

  // Registered before the auth hook (src/app.ts): an inner request's principal comes from its handle.
  app.addHook("onRequest", async (req) => {
    const h = req.headers[CALL_HEADER];
    if (h === undefined) return;
    delete req.headers[CALL_HEADER];
    const c = typeof h === "string" ? calls.take(h) : undefined;
    if (!c) throw unauthorized();
    req.principal = { ...c.principal, channel: { transport: "mcp", tool: c.tool } };
  });

  const sweep = setInterval(() => {
    const cutoff = Date.now() - SESSION_IDLE_MS;
    for (const s of sessions.values()) if (s.lastUsed < cutoff) void s.transport.close();
  }, 60_000);
  sweep.unref();
  app.addHook("onClose", async () => {
    clearInterval(sweep);
    await Promise.all([...sessions.values()].map((s) => s.transport.close().catch(() => {})));
  });

  /** Runs an agent route in process, as the principal of the /mcp request that carried the call. */
  const caller: ServiceCaller = {
    agentId: async (extra) => principalOf(extra).id,
    call: async (r, extra) => {
      const handle = calls.open(principalOf(extra), r.tool);
      try {
        const res = await app.inject({
          method: r.method,
          url: r.path,
          remoteAddress: String(extra.authInfo?.extra?.ip ?? "127.0.0.1"),
          headers: {
            [CALL_HEADER]: handle,
            ...(r.body !== undefined ? { "content-type": "application/json" } : {}),
            ...(r.idempotencyKey ? { "idempotency-key": r.idempotencyKey } : {}),
          },
          payload: r.body === undefined ? undefined : JSON.stringify(r.body),
        });
        let body: unknown;
        try {
          body = res.body ? JSON.parse(res.body) : undefined;
        } catch {
          body = { detail: res.body };
        }
        return { status: res.statusCode, body };
      } finally {
        calls.close(handle);
      }
    },
  };

  const agentOf = (req: FastifyRequest): AgentPrincipal => {
    const p = requirePrincipal(req);
    if (p.type !== "agent") throw forbidden("/mcp is for agents: operators use the HTTP API.");
    return p;
  };

  const jsonRpcError = (code: number, message: string) => ({ jsonrpc: "2.0", error: { code, message }, id: null });

  const handler = async (req: FastifyRequest, reply: import("fastify").FastifyReply) => {
    const principal = agentOf(req);
    // One message per POST: a JSON-RPC batch would run many tool calls on one request of the agent's
    // budget (protocol revision 2025-06-18 dropped batching).
    if (Array.isArray(req.body))
      return reply.code(400).send(jsonRpcError(-32600, "JSON-RPC batches are not accepted: send one message per request"));
    const sid = req.headers["mcp-session-id"];
    let session: Session | undefined;
    if (typeof sid === "string") {
      session = sessions.get(sid);
      // Another agent's session is answered like an unknown one: its existence is not confirmed.
      if (!session || session.agentId !== principal.id) return reply.code(404).send(jsonRpcError(-32001, "Session not found"));
    } else if (req.method === "POST" && isInitializeRequest(req.body)) {
      session = openSession(principal);
    } else {
      return reply.code(400).send(jsonRpcError(-32000, "Bad request: no valid Mcp-Session-Id, and not an initialize request"));
    }
    session.lastUsed = Date.now();
    // The transport hands `req.auth` to tool handlers as `authInfo`: the principal of this very
    // request, so each call runs with the credential as it was checked just now. No secret in it.
    (req.raw as { auth?: unknown }).auth = { token: "", clientId: principal.id, scopes: [], extra: { principal, ip: req.ip } };
    reply.hijack();
    await session.transport.handleRequest(req.raw, reply.raw, req.body);
  };

  function openSession(principal: AgentPrincipal): Session {
    const own = [...sessions.values()].filter((s) => s.agentId === principal.id).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const old of own.slice(0, Math.max(0, own.length - MAX_SESSIONS_PER_AGENT + 1))) void old.transport.close();
    const id = randomUUID();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => id });
    const server = buildMcpServer(caller, { id });
    const session: Session = { id, agentId: principal.id, transport, server, lastUsed: Date.now() };
    sessions.set(id, session);
    transport.onclose = () => {
      sessions.delete(id);
    };
    void server.connect(transport);
    return session;
  }

  for (const method of ["POST", "GET", "DELETE"] as const) {
    app.route({ method, url: "/mcp", schema: { hide: true }, handler });
  }
}
