// Graceful shutdown of the real process under load: `node --import tsx src/server.ts` is started with its own data
// folder (embedded PostgreSQL, SoftHSM token) against an anvil chain the test owns (so the chain
// outlives the service), 16 clients submit on keep-alive connections, and SIGTERM arrives mid-stream.
// Then: the process exits 0; every request the service answered got a complete answer; a refused
// one is an RFC 7807 503 or a refused connection and left no trace; every signed row was broadcast
// and is on chain, with consecutive nonces; no idempotency claim is left in flight.
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { createPublicClient, http as viemHttp, type Address } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnvil, type AnvilNode } from "../../src/chains/anvil.js";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { hashIdempotencyKey } from "../../src/pipeline/idempotency.js";
import { newOperatorKey } from "../helpers/api.js";
import { spawnService } from "../helpers/process.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";

interface Answer {
  key: string;
  kind: "response" | "transport";
  status?: number;
  headers?: http.IncomingHttpHeaders;
  body?: any;
  complete?: boolean;
  error?: string;
  sentAt: number;
  receivedAt: number;
}

function startServer(env: Record<string, string>) {
  const { proc, url, output } = spawnService(env);
  return { proc, url, output };
}

/** One request on a keep-alive agent; resolves with what came back, never rejects. */
function request(
  agent: http.Agent,
  base: URL,
  method: string,
  p: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<Omit<Answer, "key" | "sentAt" | "receivedAt">> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve) => {
    const req = http.request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path: p,
        headers: {
          ...headers,
          ...(payload ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          let complete = res.complete;
          try {
            parsed = JSON.parse(text);
          } catch {
            complete = false;
          }
          resolve({ kind: "response", status: res.statusCode, headers: res.headers, body: parsed, complete });
        });
        res.on("error", (e) => resolve({ kind: "transport", error: e.message }));
        res.on("aborted", () => resolve({ kind: "transport", error: "aborted" }));
      },
    );
    req.on("error", (e) => resolve({ kind: "transport", error: (e as NodeJS.ErrnoException).code ?? e.message }));
    if (payload) req.write(payload);
    req.end();
  });
}

describe("graceful shutdown (SIGTERM under load)", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "intents-shutdown-"));
  fs.chmodSync(dataDir, 0o755);
  const op = newOperatorKey();
  let chainNode: AnvilNode;

  beforeAll(async () => {
    chainNode = await startAnvil({ chainId: 31337 });
  });
  afterAll(async () => {
    await chainNode?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("stops accepting, finishes in-flight submits, exits 0, and leaves nothing half-written", async () => {
    const { proc, url, output } = startServer({ DATA_DIR: dataDir, ADMIN_API_KEY: op, CHAIN_LOCAL_RPC_URLS: chainNode.url });
    const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
    const base = new URL(await url);
    const setupAgent = new http.Agent({ keepAlive: true });
    const created = await request(
      setupAgent,
      base,
      "POST",
      "/v1/agents",
      { authorization: `Bearer ${op}` },
      { name: "shutdown", intents_api_enabled: true },
    );
    expect(created.status).toBe(201);
    const agentId: string = created.body.agent.id;
    const tok = await request(setupAgent, base, "POST", "/v1/auth/agent-token", {}, { api_key: created.body.api_key, agent_id: agentId });
    const token: string = tok.body.access_token;
    setupAgent.destroy();

    // 16 clients on keep-alive sockets, each submitting until its connection is refused.
    const answers: Answer[] = [];
    let stopAt = Infinity;
    const clients = Array.from({ length: 16 }, async (_, c) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = 0; Date.now() < stopAt; i++) {
        const key = `sd-${c}-${i}`;
        const sentAt = Date.now();
        const a = await request(
          agent,
          base,
          "POST",
          `/v1/agents/${agentId}/transactions`,
          { authorization: `Bearer ${token}`, "idempotency-key": key },
          { to: DEAD, value: "0.0001", chain: "local" },
        );
        answers.push({ key, sentAt, receivedAt: Date.now(), ...a });
        if (a.kind === "transport" && a.error === "ECONNREFUSED") break;
      }
      agent.destroy();
    });

    // Let the load run until transactions flow, then SIGTERM.
    const until = Date.now() + 30_000;
    while (answers.filter((a) => a.status === 201).length < 40 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const termAt = Date.now();
    proc.kill("SIGTERM");
    const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(r, 40_000, "timeout"))]);
    stopAt = Date.now();
    await Promise.all(clients);
    if (code !== 0)
      console.log(
        output
          .slice(output.findIndex((l) => l.includes("shutting down")) - 3)
          .map((l) => l.slice(0, 300))
          .join("\n"),
      );
    expect(code).toBe(0);

    // Every answer the service gave is complete; a 201 is a broadcast transaction.
    const responses = answers.filter((a) => a.kind === "response");
    const accepted = responses.filter((a) => a.status === 201);
    expect(accepted.length).toBeGreaterThanOrEqual(40);
    for (const a of responses) {
      expect(a.complete, `${a.key}: ${a.status}`).toBe(true);
      if (a.status === 201) expect(a.body.status).toBe("broadcast");
      else {
        // The only other answer is the drain's refusal: an RFC 7807 503 that tells the client to retry.
        expect(a.status, JSON.stringify(a.body)).toBe(503);
        expect(a.sentAt).toBeGreaterThanOrEqual(termAt - 50);
        expect(a.headers!["retry-after"]).toBeDefined();
        expect(a.headers!["content-type"]).toMatch(/^application\/problem\+json/);
        expect(a.body).toMatchObject({ status: 503, title: "Service Unavailable" });
        expect(typeof a.body.detail).toBe("string");
      }
    }
    // Submits in flight at SIGTERM were finished, not dropped.
    expect(accepted.some((a) => a.sentAt < termAt && a.receivedAt > termAt)).toBe(true);
    // Requests after SIGTERM were refused (by the drain or at connect), never answered by a half-closed service.
    const late = answers.filter((a) => a.sentAt > termAt + 2000);
    for (const a of late) expect(a.status === 201).toBe(false);
    for (const a of answers.filter((x) => x.kind === "transport")) expect(a.error).toMatch(/ECONNREFUSED|ECONNRESET|socket hang up/);

    // What the database says, read with the service gone.
    const db = await startEmbeddedPostgres({ dataDir });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string; status: string; nonce: string; from_address: string; tx_hash: string }>(
        "SELECT id, status, nonce, from_address, tx_hash FROM transactions WHERE agent_id = $1 ORDER BY nonce",
        [agentId],
      );
      // Nothing half-written: no row left `signed` (committed but never broadcast), no claim in flight.
      expect(rows.filter((r) => r.status !== "broadcast")).toEqual([]);
      const inFlight = await client.query("SELECT count(*)::int AS n FROM idempotency_keys WHERE state = 'in_flight'");
      expect(inFlight.rows[0].n).toBe(0);
      // The rows are exactly the accepted answers.
      expect(new Set(rows.map((r) => r.id))).toEqual(new Set(accepted.map((a) => a.body.id)));
      // A refused request left no idempotency record: it was never processed.
      const refused = answers.filter((a) => a.status !== 201);
      if (refused.length) {
        const hashes = refused.map((a) => hashIdempotencyKey(agentId, a.key));
        const found = await client.query("SELECT count(*)::int AS n FROM idempotency_keys WHERE agent_id = $1 AND key_hash = ANY($2)", [
          agentId,
          hashes,
        ]);
        expect(found.rows[0].n).toBe(0);
      }
      // Every submit and broadcast is audited.
      const audit = await client.query<{ action: string; n: number }>(
        "SELECT action, count(*)::int AS n FROM audit_events WHERE action IN ('transaction.submit', 'transaction.broadcast') AND actor_id = $1 GROUP BY action",
        [agentId],
      );
      expect(Object.fromEntries(audit.rows.map((r) => [r.action, r.n]))).toEqual({
        "transaction.submit": rows.length,
        "transaction.broadcast": rows.length,
      });

      // The chain agrees: consecutive nonces from 0, all of them mined.
      const nonces = rows.map((r) => Number(r.nonce));
      expect(nonces).toEqual(Array.from({ length: rows.length }, (_, i) => i));
      const chain = createPublicClient({ transport: viemHttp(chainNode.url) });
      const from = rows[0].from_address as Address;
      expect(await chain.getTransactionCount({ address: from, blockTag: "pending" })).toBe(rows.length);
      expect(await chain.getTransactionCount({ address: from, blockTag: "latest" })).toBe(rows.length);
    } finally {
      await client.end();
      await db.stop();
    }
  });
});
