// RPC failover and a flapping RPC. The first URLs of a chain dead (one refuses connections, one
// accepts and never answers): submits go through the next one. A node's JSON-RPC error ("nonce too
// low") is an answer, not an unhealthy endpoint. And 100 submits through a proxy that drops every
// third request (alternately before and after forwarding it, so some sends reach the node with their
// answer lost): all 100 mine, with consecutive nonces, each signed once.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Hex, PublicClient } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AnvilNode } from "../../src/chains/anvil.js";
import { ChainClients } from "../../src/chains/clients.js";
import type { Chain } from "../../src/chains/registry.js";
import { useService } from "../helpers/use-service.js";
import { agentWithKey, receipt, submitter, waitFor } from "./helpers.js";

function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })),
  );
}

async function closedPort(): Promise<string> {
  const { server, url } = await listen(() => {});
  await new Promise((r) => server.close(r));
  return url;
}

/** Forwards JSON-RPC to `target`; every third request is dropped, alternately before and after forwarding. */
function flappingProxy(target: string) {
  let n = 0;
  let sendsSeen = 0;
  const stats = { total: 0, droppedBefore: 0, droppedAfter: 0, sendsDroppedBefore: 0, sendsDroppedAfter: 0 };
  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const k = ++n;
      stats.total++;
      const body = Buffer.concat(chunks);
      // Calls made together arrive as one JSON-RPC batch, so a dropped request may carry broadcasts.
      // Every third request is dropped, alternately before and after it reaches the node; and, so the
      // worst case is sure to happen, so are the first two requests carrying a broadcast (one each way).
      const isSend = body.includes("eth_sendRawTransaction");
      if (isSend) sendsSeen++;
      const forced = isSend && sendsSeen <= 2;
      const drop = forced || k % 3 === 0;
      const before = forced ? sendsSeen === 1 : (k / 3) % 2 === 1;
      if (drop && before) {
        stats.droppedBefore++;
        if (isSend) stats.sendsDroppedBefore++;
        req.socket.destroy();
        return;
      }
      try {
        const upstream = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body });
        const answer = Buffer.from(await upstream.arrayBuffer());
        if (drop) {
          stats.droppedAfter++;
          if (isSend) stats.sendsDroppedAfter++;
          req.socket.destroy(); // the node got it; the caller never hears
          return;
        }
        res.writeHead(upstream.status, { "content-type": "application/json" }).end(answer);
      } catch {
        res.writeHead(502).end();
      }
    });
  };
  return { handler, stats };
}

describe("RPC failover", () => {
  const servers: http.Server[] = [];
  let dead: string;
  let hanging: string;
  // Registered before the service's hooks: the servers close after the service has stopped.
  afterAll(async () => {
    for (const s of servers) (s.closeAllConnections(), s.close());
  });
  const svc = useService({
    anvil: true,
    env: async ({ anvil }) => {
      dead = await closedPort();
      const h = await listen(() => {}); // accepts, never answers
      servers.push(h.server);
      hanging = h.url;
      return { CHAIN_LOCAL_RPC_URLS: `${dead},${hanging},${anvil!.url}`, BROADCAST_TIMEOUT_MS: "500", TRACKER_INTERVAL_MS: "100" };
    },
  });
  const { op } = svc;
  let chain: PublicClient;
  let anvil: AnvilNode;
  beforeAll(() => {
    chain = svc.chain;
    anvil = svc.anvil;
  });

  it("submits through the next URL when the first ones are dead, and ranks the dead ones last", async () => {
    const a = await agentWithKey(svc, op, chain);
    const submit = submitter(svc, a);
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await submit({ value: "0.001" }));
    for (const r of results) expect(r.body).toMatchObject({ status: "broadcast" });
    expect(results.map((r) => r.body.nonce)).toEqual([0, 1, 2, 3, 4]);
    await waitFor("all mined", async () => (await chain.getTransactionCount({ address: a.address })) === 5);
    for (const r of results) expect((await receipt(chain, r.body.tx_hash))!.status).toBe("0x1");
    const health = svc.ctx.clients.endpointHealth(svc.ctx.chains.resolve("local")!);
    // Demotion is a cooldown (1 s, doubling): on a slow run it may already have expired by now, so
    // check what was recorded rather than the current instant.
    expect(health[0].consecutive_failures).toBeGreaterThan(0);
    expect(health[1].consecutive_failures).toBeGreaterThan(0);
    expect(health[1].last_error).toBe("timeout");
    expect(health[2]).toMatchObject({ healthy: true, consecutive_failures: 0 });
  });

  it("never counts a JSON-RPC error answer (nonce too low) against an endpoint", async () => {
    let calls = 0;
    const answering = await listen((req, res) => {
      calls++;
      req.resume();
      req.on("end", () =>
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ jsonrpc: "2.0", id: 1, error: { code: -32000, message: "nonce too low" } })),
      );
    });
    servers.push(answering.server);
    const clients = new ChainClients({ timeoutMs: 500 });
    const c = { ...svc.ctx.chains.resolve("local")!, name: "nonce-test", rpc_urls: [answering.url, anvil.url] } as Chain;
    const err = await clients
      .get(c)
      .request({ method: "eth_sendRawTransaction", params: ["0x02"] })
      .catch((e) => e);
    expect(String(err.details ?? err.message)).toMatch(/nonce too low/);
    expect(calls).toBe(1); // answered: not sent on to the second URL
    expect(clients.endpointHealth(c).map((h) => h.healthy)).toEqual([true, true]);
  });
});

describe("a flapping RPC", () => {
  let proxy: http.Server;
  let stats: ReturnType<typeof flappingProxy>["stats"];
  // Registered before the service's hooks: the proxy closes after the service has stopped.
  afterAll(async () => {
    proxy?.closeAllConnections();
    proxy?.close();
  });
  const svc = useService({
    anvil: true,
    env: async ({ anvil }) => {
      const p = flappingProxy(anvil!.url);
      stats = p.stats;
      const l = await listen(p.handler);
      proxy = l.server;
      return { CHAIN_LOCAL_RPC_URLS: l.url, BROADCAST_TIMEOUT_MS: "1000", TRACKER_INTERVAL_MS: "100" };
    },
  });
  const { op } = svc;
  let chain: PublicClient;
  beforeAll(() => {
    chain = svc.chain;
  });

  it("100 submits while every third RPC request is dropped: all mined, consecutive nonces, no duplicates", async () => {
    const a = await agentWithKey(svc, op, chain);
    const submit = submitter(svc, a);
    // A client retries a 5xx with the same Idempotency-Key, as the contract allows: never a second signature.
    const submitWithRetry = async (i: number) => {
      for (let attempt = 0; ; attempt++) {
        const r = await submit({ value: "0.0001" }, { "idempotency-key": `flap-${i}` });
        if (r.status < 500 && r.status !== 409) return r;
        if (attempt > 20) throw new Error(`submit ${i}: ${r.status} ${r.raw}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    const results = [];
    for (let wave = 0; wave < 5; wave++)
      results.push(...(await Promise.all(Array.from({ length: 20 }, (_, j) => submitWithRetry(wave * 20 + j)))));
    for (const r of results) {
      expect([200, 201]).toContain(r.status);
      expect(["broadcast", "signed"]).toContain(r.body.status); // signed: the send's answer was lost; the tracker finishes it
    }
    const nonces = results.map((r) => r.body.nonce).sort((x, y) => x - y);
    expect(nonces).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(new Set(results.map((r) => r.body.tx_hash)).size).toBe(100);

    const addr = a.address.toLowerCase();
    await waitFor(
      "all 100 confirmed",
      async () => {
        const { rows } = await svc.ctx.pool.query(
          "SELECT count(*)::int AS n FROM transactions WHERE from_address = $1 AND chain_status = 'confirmed'",
          [addr],
        );
        return rows[0].n === 100;
      },
      60_000,
      200,
    );
    expect(await chain.getTransactionCount({ address: a.address as Hex })).toBe(100);
    const { rows } = await svc.ctx.pool.query<{ id: string; tx_hash: string; nonce: string; attempts: number }>(
      `SELECT t.id, t.tx_hash, t.nonce, (SELECT count(*)::int FROM transaction_attempts x WHERE x.tx_id = t.id) AS attempts
         FROM transactions t WHERE from_address = $1 ORDER BY nonce`,
      [addr],
    );
    expect(rows).toHaveLength(100); // no duplicate rows
    expect(rows.every((r) => r.attempts === 1)).toBe(true); // each signed once
    for (const r of rows) expect((await receipt(chain, r.tx_hash))!.status).toBe("0x1");
    expect(stats.droppedBefore + stats.droppedAfter).toBeGreaterThanOrEqual(Math.floor(stats.total / 3));
    // Broadcasts were lost both ways: never reaching the node, and reaching it with the answer lost.
    expect(stats.sendsDroppedBefore).toBeGreaterThan(0);
    expect(stats.sendsDroppedAfter).toBeGreaterThan(0);
  });
});
