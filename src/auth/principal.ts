// Who is calling. Set on each request by the auth hook (src/http/auth.ts); read by routes through
// the guards below, which throw the contract's 401/403.
import type { FastifyRequest } from "fastify";
import { forbidden, unauthorized } from "../errors.js";
import type { AgentRow } from "../db/agents.js";

export type Principal =
  | { type: "operator"; id: string; via?: "jwt" | "api_key"; jti?: string; exp?: number }
  | { type: "agent"; id: string; agent: AgentRow; via: "jwt" | "api_key"; jti?: string; exp?: number; channel?: Channel };

/** How a request reached the routes when not over plain HTTP: set only by the in-process MCP server. */
export interface Channel {
  transport: "mcp";
  tool: string;
}

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export function requirePrincipal(req: FastifyRequest): Principal {
  if (!req.principal) throw unauthorized();
  return req.principal;
}

export function requireOperator(req: FastifyRequest): { type: "operator"; id: string } {
  const p = requirePrincipal(req);
  if (p.type !== "operator") throw forbidden("This route is for operators.");
  return p;
}

/** An agent acting on its own id, with the Intents API enabled (every transaction route). */
export function requireIntentsAgent(req: FastifyRequest, agentId: string): Extract<Principal, { type: "agent" }> {
  const p = requirePrincipal(req);
  if (p.type !== "agent") throw forbidden("Operators cannot submit or sign as an agent.");
  if (p.id !== agentId) throw forbidden("An agent may act only on its own agent id.");
  if (!p.agent.intents_api_enabled) throw forbidden("The Intents API is not enabled for this agent.", "intents_disabled");
  return p;
}

/** Reading an agent's data: the agent itself (Intents API enabled for transaction data) or any operator. */
export function requireReader(req: FastifyRequest, agentId: string, opts: { intents?: boolean } = {}): Principal {
  const p = requirePrincipal(req);
  if (p.type === "operator") return p;
  if (p.id !== agentId) throw forbidden("An agent may act only on its own agent id.");
  if (opts.intents && !p.agent.intents_api_enabled) {
    throw forbidden("The Intents API is not enabled for this agent.", "intents_disabled");
  }
  return p;
}
