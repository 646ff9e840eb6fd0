// The MCP server over both transports, with the official SDK's Client against the real stack: Streamable
// HTTP at /mcp on the service, and stdio through `intents mcp` (a child process calling the service
// over HTTP). Each transport lists its tools, submits a transaction that mines on anvil, simulates one,
// meets a guardrail, a malformed call and a revoked credential; a retried call signs once.
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { formatEther, parseEther, type Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, createAgent, type TestAgent } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const BIN = path.resolve(import.meta.dirname, "../../bin/intents.mjs");
const TOOLS = [
  "get_approval_status",
  "get_balance",
  "get_guardrails",
  "get_transaction",
  "list_chains",
  "list_transactions",
  "sign_message",
  "sign_transaction",
  "sign_typed_data",
  "simulate_bundle",
  "simulate_transaction",
  "submit_transaction",
];

const svc = useService({ listen: true });
const { op } = svc;

async function httpClient(credential: string) {
  const transport = new StreamableHTTPClientTransport(new URL(`${svc.baseUrl}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${credential}` } },
  });
  const client = new Client({ name: "test-host", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

/** `intents mcp` as a host starts it: a child process speaking MCP on stdin/stdout to the service. */
const stdioServer = (credential: string) => ({
  command: process.execPath,
  args: [BIN, "mcp"],
  env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", INTENTS_URL: svc.baseUrl, INTENTS_AGENT_KEY: credential },
});

async function stdioClient(credential: string) {
  const transport = new StdioClientTransport({ ...stdioServer(credential), stderr: "pipe" });
  const client = new Client({ name: "test-host", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

const countTxs = async (agentId: string) =>
  Number((await svc.ctx.pool.query<{ n: string }>("SELECT count(*) AS n FROM transactions WHERE agent_id = $1", [agentId])).rows[0].n);

const text = (r: CallToolResult) => r.content.map((c) => (c.type === "text" ? c.text : "")).join(" ");

/** One JSON-RPC request over /mcp by hand, as a host that retries with the same id would send it. */
async function rawPost(credential: string, sessionId: string | undefined, msg: unknown) {
  const res = await fetch(`${svc.baseUrl}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${credential}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-06-18",
      ...(sessionId ? { "mcp-session-id": sessionId } : {}),
    },
    body: JSON.stringify(msg),
  });
  const body = await res.text();
  const data = body.split("\n").find((l) => l.startsWith("data: "));
  return { status: res.status, message: data ? JSON.parse(data.slice(6)) : body ? JSON.parse(body) : undefined };
}

const tool = (id: number, name: string, args: Record<string, unknown>) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name, arguments: args },
});
const submitCall = (id: number, value: string) =>
  tool(id, "submit_transaction", { to: DEAD, value, chain: "local", simulate_first: false });

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
};

/** A raw JSON-RPC session, so a call can be retried with the same request id as a host would. */
interface RawSession {
  rpc(msg: { id: number } & Record<string, unknown>): Promise<any>;
  close(): Promise<void>;
}
async function rawHttp(credential: string): Promise<RawSession> {
  const { client, transport } = await httpClient(credential);
  return {
    rpc: async (msg) => (await rawPost(credential, transport.sessionId, msg)).message,
    close: () => client.close(),
  };
}
async function rawStdio(credential: string): Promise<RawSession> {
  const transport = new StdioClientTransport(stdioServer(credential));
  const waiting = new Map<number, (m: any) => void>();
  transport.onmessage = (m: any) => waiting.get(m.id)?.(m);
  const rpc = (msg: { id: number } & Record<string, unknown>) =>
    new Promise<any>((resolve) => {
      waiting.set(msg.id, resolve);
      void transport.send(msg as never);
    });
  await transport.start();
  await rpc(INITIALIZE);
  await transport.send({ jsonrpc: "2.0", method: "notifications/initialized" } as never);
  return { rpc, close: () => transport.close() };
}

for (const kind of ["http", "stdio"] as const) {
  describe(`MCP over ${kind}`, () => {
    let agent: TestAgent;
    let client: Client;
    const connect = (credential: string) => (kind === "http" ? httpClient(credential) : stdioClient(credential));

    beforeAll(async () => {
      agent = await createAgent(svc.app, op, { tx_max_value: "0.5", tx_daily_limit: "1", tx_max_per_day: 10 });
      ({ client } = await connect(kind === "http" ? agent.token : agent.apiKey));
    });
    afterAll(async () => client?.close());

    it("lists the tools, with input schemas and descriptions", async () => {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(TOOLS);
      const submit = tools.find((t) => t.name === "submit_transaction")!;
      expect(submit.description).toMatch(/IRREVERSIBLE/);
      expect(submit.inputSchema.required).toEqual(expect.arrayContaining(["to", "value", "chain"]));
      expect(JSON.stringify(submit.inputSchema)).not.toMatch(/agent_id/);
    });

    it("submit_transaction signs, broadcasts, and the transaction mines on anvil", async () => {
      const r = (await client.callTool({
        name: "submit_transaction",
        arguments: { to: DEAD, value: "0.01", chain: "local" },
      })) as CallToolResult;
      expect(r.isError ?? false).toBe(false);
      const tx = r.structuredContent as Record<string, any>;
      expect(tx).toMatchObject({ status: "broadcast", agent_id: agent.id, value_wei: "10000000000000000" });
      // simulate_first defaults to true for tools.
      expect(tx.simulation_status).toBe("success");
      expect(text(r)).toContain(tx.tx_hash);
      const receipt = await svc.chain.waitForTransactionReceipt({ hash: tx.tx_hash as Hex });
      expect(receipt.status).toBe("success");
      const got = (await client.callTool({ name: "get_transaction", arguments: { tx_id: tx.id } })) as CallToolResult;
      expect((got.structuredContent as any).tx_hash).toBe(tx.tx_hash);
      // The audit trail names the transport and the tool (stdio: the agent's own HTTP calls, unmarked).
      const { rows } = await svc.ctx.pool.query<{ details: any }>(
        "SELECT details FROM audit_events WHERE action = 'transaction.submit' AND resource_id = $1",
        [tx.id],
      );
      expect(rows).toHaveLength(1);
      if (kind === "http") expect(rows[0].details.via).toEqual({ transport: "mcp", tool: "submit_transaction" });
      else expect(rows[0].details.via).toBeUndefined();
    });

    it("simulate_transaction answers balance changes and signs nothing", async () => {
      const before = await countTxs(agent.id);
      const r = (await client.callTool({
        name: "simulate_transaction",
        arguments: { to: DEAD, value: "0.02", chain: "local" },
      })) as CallToolResult;
      expect(r.isError ?? false).toBe(false);
      const sim = r.structuredContent as any;
      expect(sim.status).toBe("success");
      expect(sim.balance_changes.length).toBeGreaterThan(0);
      expect(sim.balance_changes.find((c: any) => c.address.toLowerCase() === DEAD.toLowerCase())?.change).toBe("0.02");
      expect(await countTxs(agent.id)).toBe(before);
    });

    it("a guardrail denial is a tool error naming the rule, the limit and what was attempted", async () => {
      const before = await countTxs(agent.id);
      const r = (await client.callTool({
        name: "submit_transaction",
        arguments: { to: DEAD, value: "0.9", chain: "local" },
      })) as CallToolResult;
      expect(r.isError).toBe(true);
      const g = (r.structuredContent as any).guardrail;
      expect(g).toMatchObject({ reason_code: expect.any(String), limit: "0.5", attempted: "0.9" });
      expect(text(r)).toContain(`guardrail rule ${g.reason_code}`);
      expect(text(r)).toContain("limit 0.5");
      expect(await countTxs(agent.id)).toBe(before);
    });

    it("nothing is signed by a malformed tool call", async () => {
      const before = await countTxs(agent.id);
      const nonce = await svc.chain.getTransactionCount({
        address: ((await client.callTool({ name: "get_balance", arguments: { chain: "local" } })).structuredContent as any).address as Hex,
      });
      for (const args of [
        { to: "0xnot-an-address", value: "0.01", chain: "local" },
        { to: DEAD, value: "1000000000000000000", chain: "local", gas_price: "-1" },
        { to: DEAD, value: "0.01", chain: "local", agent_id: "00000000-0000-0000-0000-000000000000" },
        { to: DEAD, chain: "local" },
      ]) {
        const r = (await client.callTool({ name: "submit_transaction", arguments: args })) as CallToolResult;
        expect(r.isError).toBe(true);
      }
      const bad = (await client.callTool({ name: "get_transaction", arguments: { tx_id: "../../../v1/agents" } })) as CallToolResult;
      expect(bad.isError).toBe(true);
      expect(await countTxs(agent.id)).toBe(before);
      expect(
        await svc.chain.getTransactionCount({
          address: ((await client.callTool({ name: "get_balance", arguments: { chain: "local" } })).structuredContent as any)
            .address as Hex,
        }),
      ).toBe(nonce);
    });

    it("get_guardrails shows the agent's limits and what remains today", async () => {
      const r = (await client.callTool({ name: "get_guardrails", arguments: {} })) as CallToolResult;
      const g = r.structuredContent as any;
      expect(g.tx_max_value).toBe("0.5");
      expect(g.tx_spent_today).toBe("0.01");
      expect(g.remaining_today.value).toBe("0.99");
      expect(g.remaining_today.transactions).toBe(9);
      expect(g.remaining_today.fees).toBe(formatEther(parseEther(g.tx_daily_fee_budget) - parseEther(g.tx_fees_spent_today)));
      const chains = (await client.callTool({ name: "list_chains", arguments: {} })) as CallToolResult;
      expect(((chains.structuredContent as any).chains as any[]).map((c) => c.name)).toContain("local");
      const list = (await client.callTool({ name: "list_transactions", arguments: { limit: 5 } })) as CallToolResult;
      expect((list.structuredContent as any).transactions).toHaveLength(1);
    });

    it("a revoked credential gets an authentication error", async () => {
      const victim = await createAgent(svc.app, op);
      const conn = await connect(kind === "http" ? victim.token : victim.apiKey);
      try {
        expect((await conn.client.listTools()).tools.length).toBe(TOOLS.length);
        expect((await call(svc.app, "POST", `/v1/agents/${victim.id}/rotate-key`, { token: op })).status).toBe(200);
        const before = await countTxs(victim.id);
        if (kind === "http") {
          await expect(
            conn.client.callTool({ name: "submit_transaction", arguments: { to: DEAD, value: "0.01", chain: "local" } }),
          ).rejects.toMatchObject({ code: 401 });
        } else {
          const r = (await conn.client.callTool({
            name: "submit_transaction",
            arguments: { to: DEAD, value: "0.01", chain: "local" },
          })) as CallToolResult;
          expect(r.isError).toBe(true);
          expect(text(r)).toMatch(/401/);
          expect(text(r)).toMatch(/revoked/);
        }
        expect(await countTxs(victim.id)).toBe(before);
      } finally {
        await conn.client.close().catch(() => {});
      }
    });
  });
}

describe("MCP retries and attacks", () => {
  let agent: TestAgent;
  beforeAll(async () => {
    agent = await createAgent(svc.app, op);
  });

  it("a retried submit_transaction over /mcp (same session, same request id) signs once", async () => {
    const { client, transport } = await httpClient(agent.token);
    try {
      const before = await countTxs(agent.id);
      const a = await rawPost(agent.token, transport.sessionId, submitCall(7001, "0.003"));
      const b = await rawPost(agent.token, transport.sessionId, submitCall(7001, "0.003"));
      expect(a.status).toBe(200);
      const [ta, tb] = [a.message.result.structuredContent, b.message.result.structuredContent];
      expect(ta.status).toBe("broadcast");
      expect(tb).toEqual(ta);
      expect(await countTxs(agent.id)).toBe(before + 1);
      // Another request id is another call.
      const c = await rawPost(agent.token, transport.sessionId, submitCall(7002, "0.003"));
      expect(c.message.result.structuredContent.id).not.toBe(ta.id);
      expect(await countTxs(agent.id)).toBe(before + 2);
    } finally {
      await client.close();
    }
  });

  it("a retried submit_transaction over stdio (same request id) signs once", async () => {
    const { rpc, close } = await rawStdio(agent.apiKey);
    try {
      const before = await countTxs(agent.id);
      const a = await rpc(submitCall(9, "0.004"));
      const b = await rpc(submitCall(9, "0.004"));
      expect(a.result.structuredContent.status).toBe("broadcast");
      expect(b.result.structuredContent).toEqual(a.result.structuredContent);
      expect(await countTxs(agent.id)).toBe(before + 1);
    } finally {
      await close();
    }
  });

  it("the in-process mark cannot be forged over HTTP, and nothing is signed", async () => {
    const before = await countTxs(agent.id);
    for (const headers of [{ "x-intents-mcp-call": "forged" }, { "x-intents-mcp-call": "a".repeat(43) }]) {
      // With the agent's own credential, and with none: the header is never trusted.
      for (const token of [agent.token, undefined]) {
        const r = await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, {
          token,
          headers,
          body: { to: DEAD, value: "0.001", chain: "local" },
        });
        expect(r.status).toBe(401);
      }
    }
    expect(await countTxs(agent.id)).toBe(before);
    const { rows } = await svc.ctx.pool.query(
      "SELECT 1 FROM audit_events WHERE details ? 'via' AND actor_id = $1 AND action = 'transaction.submit'",
      [agent.id],
    );
    expect(rows.length).toBe(2); // the two /mcp submits above, none from these requests
  });

  it("operators are refused at /mcp, and a session belongs to the agent that opened it", async () => {
    expect((await rawPost(op, undefined, INITIALIZE)).status).toBe(403);
    expect((await rawPost("ocv_not-a-key", undefined, INITIALIZE)).status).toBe(401);
    const { client, transport } = await httpClient(agent.token);
    try {
      const other = await createAgent(svc.app, op);
      const before = await countTxs(agent.id);
      const r = await rawPost(other.token, transport.sessionId, submitCall(1, "0.001"));
      expect(r.status).toBe(404);
      // A batch would spend one request of the budget on many tool calls: refused, nothing signed.
      const batch = await rawPost(agent.token, transport.sessionId, [submitCall(2, "0.001"), submitCall(3, "0.001")]);
      expect(batch.status).toBe(400);
      expect(await countTxs(agent.id)).toBe(before);
      expect(await countTxs(other.id)).toBe(0);
    } finally {
      await client.close();
    }
  });
});

describe("MCP and human approvals", () => {
  for (const kind of ["http", "stdio"] as const) {
    it(`over ${kind}: submit_transaction waits for approval (202); get_approval_status follows it to the mined transaction; a retry returns that one transaction`, async () => {
      const agent = await createAgent(svc.app, op);
      const rules = await call(svc.app, "PUT", `/v1/agents/${agent.id}/approval-rules`, {
        token: op,
        body: { approval_rules: { cost_above_wei: (10n ** 16n).toString() } },
      });
      expect(rules.status).toBe(200);
      const credential = (a: TestAgent) => (kind === "http" ? a.token : a.apiKey);
      const s = await (kind === "http" ? rawHttp : rawStdio)(credential(agent));
      try {
        const args = { to: DEAD, value: "0.05", chain: "local" };
        const held = (await s.rpc(tool(101, "submit_transaction", args))).result as CallToolResult;
        expect(held.isError ?? false).toBe(false);
        const pending = held.structuredContent as Record<string, any>;
        expect(pending).toMatchObject({
          status: "pending_approval",
          required_approvals: 1,
          current_approvals: 0,
          pending_approval_id: expect.any(String),
        });
        const id = pending.pending_approval_id as string;
        expect(text(held)).toContain("202");
        expect(text(held)).toContain(id);
        expect(text(held)).toContain("get_approval_status");
        expect(await countTxs(agent.id)).toBe(0);

        const waiting = (await s.rpc(tool(102, "get_approval_status", { approval_id: id }))).result as CallToolResult;
        expect(waiting.isError ?? false).toBe(false);
        expect(waiting.structuredContent).toMatchObject({
          id,
          status: "pending",
          agent_id: agent.id,
          reasons: [{ rule: "cost_above_wei" }],
        });
        expect(text(waiting)).toMatch(/pending, 0 of 1 approval/);
        // A retry while it waits is the same 202, nothing stored twice.
        expect(((await s.rpc(tool(101, "submit_transaction", args))).result.structuredContent as any).pending_approval_id).toBe(id);

        // Another agent cannot read it through its own tools (404, as for no such approval).
        const other = await createAgent(svc.app, op);
        const os = await (kind === "http" ? rawHttp : rawStdio)(credential(other));
        try {
          const peek = (await os.rpc(tool(103, "get_approval_status", { approval_id: id }))).result as CallToolResult;
          expect(peek.isError).toBe(true);
          expect(text(peek)).toMatch(/404/);
          expect(JSON.stringify(peek)).not.toContain((waiting.structuredContent as any).payload_hash);
        } finally {
          await os.close();
        }

        // An operator approves over the API; the vote that completes the quorum executes it.
        const seen = await call(svc.app, "GET", `/v1/pending-approvals/${id}`, { token: op });
        const voted = await call(svc.app, "POST", `/v1/pending-approvals/${id}/approve`, {
          token: op,
          body: { decision: "approve", payload_hash: seen.body.payload_hash },
        });
        expect(voted.status).toBe(200);
        expect(voted.body.status).toBe("executed");

        const done = (await s.rpc(tool(104, "get_approval_status", { approval_id: id }))).result as CallToolResult;
        const result = (done.structuredContent as any).result;
        expect(done.structuredContent).toMatchObject({ id, status: "executed", current_approvals: 1 });
        expect(result).toMatchObject({ status: "broadcast", agent_id: agent.id, value_wei: "50000000000000000" });
        expect(text(done)).toContain(result.tx_hash);
        expect((await svc.chain.waitForTransactionReceipt({ hash: result.tx_hash as Hex })).status).toBe("success");

        // The retried call (same request id) now answers that transaction; one transaction only.
        const retried = (await s.rpc(tool(101, "submit_transaction", args))).result as CallToolResult;
        expect(retried.isError ?? false).toBe(false);
        expect(retried.structuredContent).toMatchObject({ id: result.id, tx_hash: result.tx_hash });
        expect(text(retried)).toContain(result.tx_hash);
        expect(await countTxs(agent.id)).toBe(1);
      } finally {
        await s.close();
      }
    });
  }
});
