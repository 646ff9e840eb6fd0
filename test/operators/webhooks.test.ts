// Webhooks: operators register endpoints; transaction events reach them from the durable outbox
// (fanned out of the sealed audit log), HMAC-signed, retried with backoff, at least once. A real
// HTTP receiver verifies every signature and counts every attempt; it goes down (500s, then a closed
// port) and comes back, and the event still arrives under the same X-Webhook-Id.
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { createPublicClient, http as viemHttp, type Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sealAuditEvents } from "../../src/audit-chain.js";
import { appendAudit } from "../../src/db/audit.js";
import { createPool, type Pool } from "../../src/db/pool.js";
import { createLogger } from "../../src/log.js";
import { backoffDelayMs, attemptDelivery, deliverDue } from "../../src/webhooks/deliver.js";
import { claimDueDeliveries } from "../../src/db/webhooks.js";
import { fanoutWebhookEvents } from "../../src/webhooks/fanout.js";
import { startWebhookWorker, type WebhookWorker } from "../../src/webhooks/worker.js";
import { call, type TestAgent } from "../helpers/api.js";
import { useTestDatabase } from "../helpers/db.js";
import { useService } from "../helpers/use-service.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const ALL_TYPES = ["agent.transaction.signed", "agent.transaction.broadcast", "agent.transaction.confirmed", "agent.transaction.failed"];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a receiver does: HMAC-SHA256(secret, "<timestamp>.<raw body>"), compared in constant time. */
function verifySignature(secret: string, timestamp: string, rawBody: string, header: string): boolean {
  const expected = Buffer.from("sha256=" + createHmac("sha256", secret).update(`${timestamp}.${rawBody}`).digest("hex"));
  const got = Buffer.from(header);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

interface Received {
  id: string;
  timestamp: string;
  signature: string;
  contentType: string;
  raw: string;
  body: any;
  verified: boolean;
  answered: number;
}

/** A webhook receiver on 127.0.0.1: verifies each request with its secret, records it, answers per `mode`. */
class Receiver {
  readonly received: Received[] = [];
  mode: "ok" | "error" = "ok";
  secret = "";
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const h = (n: string) => String(req.headers[n] ?? "");
      const verified = verifySignature(this.secret, h("x-webhook-timestamp"), raw, h("x-webhook-signature"));
      const answered = !verified ? 401 : this.mode === "ok" ? 200 : 500;
      let body: any;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      this.received.push({
        id: h("x-webhook-id"),
        timestamp: h("x-webhook-timestamp"),
        signature: h("x-webhook-signature"),
        contentType: h("content-type"),
        raw,
        body,
        verified,
        answered,
      });
      res.writeHead(answered, { "content-type": "text/plain" }).end(answered === 200 ? "ok" : "no");
    });
  });
  port = 0;

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(this.port, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }
  /** Closes the port: attempts now get "connection refused". */
  async down(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks?token=receiver-side`;
  }
  /** Requests for one transaction, by event type. */
  forTx(txId: string, type?: string): Received[] {
    return this.received.filter((r) => r.body?.data?.transaction_id === txId && (!type || r.body.type === type));
  }
  countsById(list = this.received): Map<string, number> {
    const m = new Map<string, number>();
    for (const r of list) m.set(r.id, (m.get(r.id) ?? 0) + 1);
    return m;
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe("webhooks (service)", () => {
  const logFile = path.join(os.tmpdir(), `webhooks-test-${randomBytes(6).toString("hex")}.log`);
  // Registered before the service's hooks: the log is removed after the service has stopped.
  afterAll(() => fs.rmSync(logFile, { force: true }));
  const svc = useService({
    env: { LOG_LEVEL: "debug", WEBHOOK_INTERVAL_MS: "50", WEBHOOK_BACKOFF_BASE_MS: "100", TRACKER_INTERVAL_MS: "100" },
    start: { logFile },
    agent: true,
  });
  const { op } = svc;
  let agent: TestAgent;
  let chain: ReturnType<typeof createPublicClient>;
  let replicaPool: Pool;
  let replica: WebhookWorker;
  const receivers: Receiver[] = [];
  const secrets: string[] = [];
  const a = new Receiver();
  let endpointA: Awaited<ReturnType<typeof register>>;
  let tx1 = "";
  let tracking = false;

  beforeAll(async () => {
    tracking = svc.ctx.config.trackerEnabled;
    agent = svc.agent;
    chain = createPublicClient({ transport: viemHttp(svc.ctx.localChainUrl!) });
    // A second replica's worker on its own pool: the row locks must keep the two from double-sending.
    replicaPool = createPool(svc.databaseUrl, { max: 5 });
    replica = startWebhookWorker({ pool: replicaPool, log: svc.ctx.log, intervalMs: 50, backoffBaseMs: 100, maxAttempts: 20 });
    receivers.push(await a.start());
  });
  afterAll(async () => {
    await replica?.stop();
    await replicaPool?.end();
    for (const r of receivers) await r.down().catch(() => {});
  });

  /** Until every committed event is sealed (sealAuditEvents returns 0 too while the service's sealer holds the lock). */
  const seal = async () => {
    await waitFor("all audit events sealed", async () => {
      await sealAuditEvents(svc.ctx.pool);
      return Number((await svc.ctx.pool.query("SELECT count(*) FROM audit_events WHERE chain_seq IS NULL")).rows[0].count) === 0;
    });
  };
  const register = async (url: string, events?: string[]) => {
    const r = await call(svc.app, "POST", "/v1/webhooks", {
      token: op,
      body: { url, ...(events ? { events } : {}), description: "test receiver" },
    });
    expect(r.status).toBe(201);
    secrets.push(r.body.secret);
    return r.body as { id: string; secret: string; url: string; events: string[]; is_active: boolean; created_at: string };
  };
  const submit = (body: Record<string, unknown>) =>
    call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, { token: agent.token, body: { to: DEAD, chain: "local", ...body } });
  const deliveries = async (endpointId: string, query = "") => {
    const r = await call(svc.app, "GET", `/v1/webhooks/${endpointId}/deliveries${query}`, { token: op });
    expect(r.status).toBe(200);
    return r.body.deliveries as Array<{
      id: string;
      event_type: string;
      status: string;
      attempts: number;
      last_status_code: number | null;
      last_error: string | null;
      payload: any;
    }>;
  };
  const poorKey = async (name: string): Promise<string> => {
    const key = await svc.ctx.signer.createKey(name);
    const { recordSigningKey } = await import("../../src/db/signing-keys.js");
    await recordSigningKey(svc.ctx.pool, key, { agentId: agent.id }); // the agent's own key
    // Enough for one small transfer, far from enough for 5 ETH.
    await chain.request({ method: "anvil_setBalance" as never, params: [key.address, "0x" + (10n ** 16n).toString(16)] as never });
    return key.address;
  };

  it("registers endpoints for operators only; the secret is shown once and never listed", async () => {
    const routes: Array<["GET" | "POST" | "DELETE", string]> = [
      ["POST", "/v1/webhooks"],
      ["GET", "/v1/webhooks"],
      ["DELETE", `/v1/webhooks/${randomUUID()}`],
      ["GET", `/v1/webhooks/${randomUUID()}/deliveries`],
      ["POST", `/v1/webhooks/${randomUUID()}/test`],
    ];
    for (const [method, url] of routes) {
      const body = method === "POST" ? { url: a.url } : undefined;
      expect((await call(svc.app, method, url, { body })).status, `${method} ${url} without credentials`).toBe(401);
      expect((await call(svc.app, method, url, { token: agent.token, body })).status, `${method} ${url} as an agent`).toBe(403);
    }

    for (const bad of [
      { url: "ftp://127.0.0.1/x" },
      { url: "not a url" },
      { url: "http://user:pass@127.0.0.1/x" },
      { url: a.url, events: [] },
      { url: a.url, events: ["agent.transaction.exploded"] },
      { url: a.url, secret: "mine" },
    ]) {
      expect((await call(svc.app, "POST", "/v1/webhooks", { token: op, body: bad })).status, JSON.stringify(bad)).toBe(400);
    }

    endpointA = await register(a.url);
    a.secret = endpointA.secret;
    expect(endpointA).toMatchObject({ url: a.url, events: ALL_TYPES, is_active: true });
    expect(endpointA.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(Number.isNaN(Date.parse(endpointA.created_at))).toBe(false);

    const list = await call(svc.app, "GET", "/v1/webhooks", { token: op });
    expect(list.status).toBe(200);
    expect(list.body.webhooks.map((w: { id: string }) => w.id)).toContain(endpointA.id);
    expect(list.raw).not.toContain(endpointA.secret);
    expect(list.body.webhooks.every((w: object) => !("secret" in w))).toBe(true);

    expect((await call(svc.app, "DELETE", `/v1/webhooks/${randomUUID()}`, { token: op })).status).toBe(404);
    expect((await call(svc.app, "DELETE", "/v1/webhooks/not-an-id", { token: op })).status).toBe(404);
    expect((await call(svc.app, "GET", `/v1/webhooks/${randomUUID()}/deliveries`, { token: op })).status).toBe(404);
  });

  it("a healthy receiver gets signed, broadcast and confirmed exactly once each, correctly signed; earlier events are not sent", async () => {
    // An endpoint created now starts at the head of the chain: this earlier transaction is not sent to it.
    const before = await submit({ value: "0.0001" });
    expect(before.status).toBe(201);
    await seal();
    const lateReceiver = await new Receiver().start();
    receivers.push(lateReceiver);
    const late = await register(lateReceiver.url);
    lateReceiver.secret = late.secret;

    const r = await submit({ value: "0.001" });
    expect(r.status).toBe(201);
    expect(r.body.status).toBe("broadcast");
    tx1 = r.body.id;
    // The tracker (when on) reports the transaction final on chain: transaction.confirmed.
    const types = ["agent.transaction.signed", "agent.transaction.broadcast", ...(tracking ? ["agent.transaction.confirmed"] : [])];
    await waitFor("every event at the receivers", () =>
      types.every((t) => a.forTx(tx1, t).length > 0 && lateReceiver.forTx(tx1, t).length > 0),
    );
    await sleep(600); // several passes of both workers: no second copy may arrive

    const got = a.forTx(tx1);
    expect(got.map((g) => g.body.type).sort()).toEqual([...types].sort());
    for (const [, n] of a.countsById(got)) expect(n).toBe(1); // one request per delivery attempt, one attempt when healthy
    for (const g of got) {
      expect(g.verified).toBe(true);
      expect(g.answered).toBe(200);
      expect(g.contentType).toMatch(/^application\/json/);
      expect(g.id).toBe(g.body.id);
      expect(Math.abs(Number(g.timestamp) - Date.now() / 1000)).toBeLessThan(60);
      expect(g.signature).toMatch(/^sha256=[0-9a-f]{64}$/);
      // Negative controls: another secret, or one changed byte, and the signature no longer verifies.
      expect(verifySignature("whsec_" + randomBytes(32).toString("base64url"), g.timestamp, g.raw, g.signature)).toBe(false);
      expect(verifySignature(late.secret, g.timestamp, g.raw, g.signature)).toBe(false);
      expect(verifySignature(endpointA.secret, g.timestamp, g.raw.replace(tx1, randomUUID()), g.signature)).toBe(false);
      expect(verifySignature(endpointA.secret, String(Number(g.timestamp) + 1), g.raw, g.signature)).toBe(false);
      expect(g.body).toMatchObject({
        data: {
          transaction_id: tx1,
          agent_id: agent.id,
          chain: "local",
          chain_id: 31337,
          tx_hash: r.body.tx_hash,
          nonce: r.body.nonce,
          from: r.body.from.toLowerCase(),
          value_wei: "1000000000000000",
        },
      });
      expect(Number.isNaN(Date.parse(g.body.created_at))).toBe(false);
    }
    expect(a.forTx(tx1, "agent.transaction.signed")[0].body.data).toMatchObject({ status: "signed", mode: "submit" });
    expect(a.forTx(tx1, "agent.transaction.broadcast")[0].body.data.status).toBe("broadcast");
    if (tracking) {
      const receipt = await chain.getTransactionReceipt({ hash: r.body.tx_hash });
      expect(a.forTx(tx1, "agent.transaction.confirmed")[0].body.data).toMatchObject({
        chain_status: "confirmed",
        receipt_status: "success",
        block_number: Number(receipt.blockNumber),
        block_hash: receipt.blockHash,
      });
    }

    // The outbox agrees: delivered at the first attempt.
    const rows = (await deliveries(endpointA.id)).filter((d) => d.payload.data.transaction_id === tx1);
    expect(rows).toHaveLength(types.length);
    for (const d of rows) expect(d).toMatchObject({ status: "delivered", attempts: 1, last_status_code: 200, last_error: null });
    expect(new Set(rows.map((d) => d.id))).toEqual(new Set(got.map((g) => g.id)));

    // Nothing from before the endpoint existed (the earlier transaction's confirmation may come later, and is sent).
    expect(lateReceiver.forTx(before.body.id).filter((g) => g.body.type !== "agent.transaction.confirmed")).toHaveLength(0);
    expect(lateReceiver.forTx(tx1)).toHaveLength(types.length);
    expect(lateReceiver.received.every((x) => x.verified)).toBe(true);
  });

  it("a node rejection is delivered as signed then failed; an endpoint subscribed to failures gets only that", async () => {
    const c = await new Receiver().start();
    receivers.push(c);
    const failuresOnly = await register(c.url, ["agent.transaction.failed"]);
    c.secret = failuresOnly.secret;
    expect(failuresOnly.events).toEqual(["agent.transaction.failed"]);

    await poorKey("keys/webhook-poor");
    const r = await submit({ value: "5", signing_key_path: "keys/webhook-poor", gas_limit: 21000 });
    expect(r.status).toBe(201);
    expect(r.body.status).toBe("failed");
    const txId = r.body.id;
    await waitFor(
      "signed and failed at the receiver",
      () =>
        a.forTx(txId, "agent.transaction.signed").length > 0 &&
        a.forTx(txId, "agent.transaction.failed").length > 0 &&
        c.forTx(txId).length > 0,
    );
    await sleep(400);

    expect(
      a
        .forTx(txId)
        .map((g) => g.body.type)
        .sort(),
    ).toEqual(["agent.transaction.failed", "agent.transaction.signed"]);
    for (const [, n] of a.countsById(a.forTx(txId))) expect(n).toBe(1);
    const failed = a.forTx(txId, "agent.transaction.failed")[0];
    expect(failed.verified).toBe(true);
    expect(failed.body.data).toMatchObject({
      transaction_id: txId,
      agent_id: agent.id,
      status: "failed",
      nonce: r.body.nonce,
      tx_hash: r.body.tx_hash,
    });
    expect(failed.body.data.error_message).toMatch(/insufficient funds/i);

    expect(c.received.map((g) => [g.body.type, g.body.data.transaction_id])).toEqual([["agent.transaction.failed", txId]]);
    expect(c.received[0].verified).toBe(true);
  });

  it("receiver down (500s, then a closed port) and back: the event still arrives, same X-Webhook-Id, attempts > 1", async () => {
    const b = await new Receiver().start();
    receivers.push(b);
    const endpointB = await register(b.url, ["agent.transaction.signed", "agent.transaction.broadcast"]);
    b.secret = endpointB.secret;
    b.mode = "error";

    const r = await submit({ value: "0.002" });
    expect(r.status).toBe(201);
    const txId = r.body.id;

    // Phase 1: the receiver answers 500, twice per delivery at least.
    await waitFor("two 500s per delivery", () => {
      const counts = [...b.countsById(b.forTx(txId)).values()];
      return counts.length === 2 && counts.every((n) => n >= 2);
    });
    // Phase 2: the port is closed: attempts keep being made and fail with "connection refused".
    await b.down();
    const receivedWhileUp = b.forTx(txId).length;
    await waitFor("a refused attempt per delivery", async () => {
      const ds = (await deliveries(endpointB.id)).filter((d) => d.payload.data.transaction_id === txId);
      return ds.length === 2 && ds.every((d) => d.status === "pending" && d.last_error === "connection refused");
    });
    expect(b.forTx(txId).length).toBe(receivedWhileUp);
    // Meanwhile the healthy endpoint got this transaction's events once each: one receiver's outage holds up no other.
    await waitFor("the healthy receiver's copy", () => a.forTx(txId).length >= 2);

    // Phase 3: back up, same port.
    b.mode = "ok";
    await b.start();
    await waitFor("delivery after the outage", async () => {
      const ds = (await deliveries(endpointB.id)).filter((d) => d.payload.data.transaction_id === txId);
      return ds.length === 2 && ds.every((d) => d.status === "delivered") ? ds : undefined;
    });
    await sleep(400);

    const got = b.forTx(txId);
    const byId = b.countsById(got);
    expect(byId.size).toBe(2); // every attempt of a delivery carries the same X-Webhook-Id
    const ds = (await deliveries(endpointB.id)).filter((d) => d.payload.data.transaction_id === txId);
    for (const d of ds) {
      const attemptsSeen = got.filter((g) => g.id === d.id);
      expect(attemptsSeen.every((g) => g.verified && g.body.id === d.id)).toBe(true);
      expect(attemptsSeen.filter((g) => g.answered === 200)).toHaveLength(1); // delivered once; nothing after
      expect(attemptsSeen.filter((g) => g.answered === 500).length).toBeGreaterThanOrEqual(2);
      // Each attempt that reached the receiver arrived once; the refused ones never arrived.
      expect(d.attempts).toBeGreaterThan(attemptsSeen.length);
      expect(d).toMatchObject({ status: "delivered", last_status_code: 200, last_error: null });
      // Every retry sends the same bytes (only the timestamp and signature change).
      expect(new Set(attemptsSeen.map((g) => g.raw)).size).toBe(1);
    }
    expect(new Set(got.map((g) => g.body.type))).toEqual(new Set(["agent.transaction.signed", "agent.transaction.broadcast"]));
    for (const [, n] of a.countsById(a.forTx(txId))) expect(n).toBe(1);

    // Deactivated: 204, then 404; nothing more is sent to it.
    expect((await call(svc.app, "DELETE", `/v1/webhooks/${endpointB.id}`, { token: op })).status).toBe(204);
    expect((await call(svc.app, "DELETE", `/v1/webhooks/${endpointB.id}`, { token: op })).status).toBe(404);
    const listed = (await call(svc.app, "GET", "/v1/webhooks", { token: op })).body.webhooks.find(
      (w: { id: string }) => w.id === endpointB.id,
    );
    expect(listed.is_active).toBe(false);
    const after = await submit({ value: "0.0001" });
    await waitFor("the active endpoint's copy", () => a.forTx(after.body.id).length >= 2);
    await sleep(300);
    expect(b.forTx(after.body.id)).toHaveLength(0);
  });

  it("a transaction.confirmed audit event (as the tracker writes it) is delivered as agent.transaction.confirmed", async () => {
    const tx = (await svc.ctx.pool.query("SELECT tx_hash FROM transactions WHERE id = $1", [tx1])).rows[0];
    const receipt = await chain.waitForTransactionReceipt({ hash: tx.tx_hash as Hex });
    const eventId = await appendAudit(svc.ctx.pool, {
      action: "transaction.confirmed",
      resourceType: "transaction",
      resourceId: tx1,
      details: {
        chain: "local",
        tx_hash: tx.tx_hash,
        chain_status: "reverted",
        receipt_status: "reverted",
        block_number: Number(receipt.blockNumber),
        block_hash: receipt.blockHash,
        confirmations: 1,
      },
    });
    const got = await waitFor("the confirmed event", () => a.received.find((g) => g.body?.data?.audit_event_id === eventId));
    expect(got.verified).toBe(true);
    expect(got.body).toMatchObject({
      type: "agent.transaction.confirmed",
      data: {
        transaction_id: tx1,
        agent_id: agent.id,
        tx_hash: tx.tx_hash,
        block_number: Number(receipt.blockNumber),
        block_hash: receipt.blockHash,
        chain_status: "reverted",
        receipt_status: "reverted",
      },
    });
  });

  it("sends a signed test event on request", async () => {
    const r = await call(svc.app, "POST", `/v1/webhooks/${endpointA.id}/test`, { token: op });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ delivered: true, status_code: 200, error: null });
    const got = a.received.find((g) => g.id === r.body.id)!;
    expect(got.verified).toBe(true);
    expect(got.body).toMatchObject({ id: r.body.id, type: "webhook.test", data: { webhook_id: endpointA.id } });
  });

  it("secrets appear in no GET response, no audit event and no log line", async () => {
    expect(secrets.length).toBeGreaterThanOrEqual(4);
    const list = await call(svc.app, "GET", "/v1/webhooks", { token: op });
    const ds = await Promise.all(
      list.body.webhooks.map((w: { id: string }) => call(svc.app, "GET", `/v1/webhooks/${w.id}/deliveries?limit=500`, { token: op })),
    );
    const failedOnly = await call(svc.app, "GET", `/v1/webhooks/${endpointA.id}/deliveries?status=failed`, { token: op });
    expect(failedOnly.body.deliveries).toEqual([]);
    const audit = await call(svc.app, "GET", "/v1/audit/events?limit=1000", { token: op });
    expect(audit.body.events.filter((e: { action: string }) => e.action === "webhook.create").length).toBe(secrets.length);
    expect(audit.body.events.some((e: { action: string }) => e.action === "webhook.delete")).toBe(true);
    await svc.ctx.webhooks.runOnce(); // flush whatever the worker still had to log
    const log = fs.readFileSync(logFile, "utf8");
    // Positive control: the log does hold the deliveries, retries included.
    expect(log).toContain("webhook delivered");
    expect(log).toContain("webhook delivery attempt failed; will retry");
    for (const text of [list.raw, ...ds.map((d) => d.raw), audit.raw, log]) {
      for (const s of secrets) expect(text).not.toContain(s);
      expect(text).not.toContain("whsec_");
    }
    // A receiver's URL may carry its own token: the audit log keeps only the origin, the log not even that.
    for (const text of [audit.raw, log]) expect(text).not.toContain("receiver-side");
  });
});

describe("webhooks (outbox mechanics)", () => {
  const db = useTestDatabase();
  const log = createLogger("silent");
  const secret = "whsec_" + randomBytes(32).toString("base64url");

  const endpoint = async (events = ALL_TYPES, url = "http://127.0.0.1:9/x") => {
    const id = randomUUID();
    await db.pool.query(
      "INSERT INTO webhook_endpoints (id, url, secret, events, cursor_chain_seq) VALUES ($1, $4, $2, $3, (SELECT coalesce(max(chain_seq), 0) FROM audit_events))",
      [id, secret, events, url],
    );
    return id;
  };
  const event = (action: "transaction.submit" | "transaction.broadcast" | "agent.create" = "transaction.broadcast") =>
    appendAudit(db.pool, {
      action,
      resourceType: "transaction",
      resourceId: randomUUID(),
      details: { chain: "local", tx_hash: "0x" + "ab".repeat(32), nonce: 7 },
    });
  const seal = async () => {
    while ((await sealAuditEvents(db.pool)) > 0) {
      /* drain */
    }
  };
  const count = async (endpointId: string) =>
    Number((await db.pool.query("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1", [endpointId])).rows[0].count);
  const okFetch =
    (seen: string[], delayMs = 0): typeof fetch =>
    async (_url, init) => {
      seen.push(String((init!.headers as Record<string, string>)["x-webhook-id"]));
      if (delayMs) await sleep(delayMs);
      return new Response("ok", { status: 200 });
    };

  it("waits for sealing, fans out once per event (idempotent even from a rewound cursor), maps only the four actions", async () => {
    const ep = await endpoint();
    await event("transaction.submit");
    await event("agent.create"); // not a webhook event
    expect((await fanoutWebhookEvents(db.pool)).deliveries).toBe(0); // unsealed: not yet visible to the cursor
    await seal();
    expect((await fanoutWebhookEvents(db.pool)).deliveries).toBe(1);
    expect((await fanoutWebhookEvents(db.pool)).deliveries).toBe(0);
    await db.pool.query("UPDATE webhook_endpoints SET cursor_chain_seq = 0 WHERE id = $1", [ep]);
    expect((await fanoutWebhookEvents(db.pool)).deliveries).toBe(0);
    expect(await count(ep)).toBe(1);
    const head = (await db.pool.query("SELECT max(chain_seq) AS h FROM audit_events")).rows[0].h;
    expect((await db.pool.query("SELECT cursor_chain_seq FROM webhook_endpoints WHERE id = $1", [ep])).rows[0].cursor_chain_seq).toBe(head);
    // Batches: 7 events through batches of 3.
    for (let i = 0; i < 7; i++) await event();
    await seal();
    expect((await fanoutWebhookEvents(db.pool, { batch: 3 })).deliveries).toBe(7);
    expect(await count(ep)).toBe(8);
    const row = (
      await db.pool.query("SELECT payload FROM webhook_deliveries WHERE endpoint_id = $1 AND event_type = 'agent.transaction.signed'", [ep])
    ).rows[0];
    expect(row.payload).toMatchObject({
      type: "agent.transaction.signed",
      data: { chain: "local", nonce: 7, status: "signed", mode: "submit" },
    });
    await db.pool.query("UPDATE webhook_endpoints SET is_active = false WHERE id = $1", [ep]);
  });

  it("backs off exponentially with jitter, capped", () => {
    for (let n = 1; n <= 8; n++) {
      const full = 100 * 2 ** (n - 1);
      expect(backoffDelayMs(n, 100, 600_000, () => 0)).toBe(full / 2);
      expect(backoffDelayMs(n, 100, 600_000, () => 1)).toBe(full);
    }
    expect(backoffDelayMs(60, 1000, 600_000, () => 1)).toBe(600_000);
    expect(backoffDelayMs(60, 1000, 600_000, () => 0)).toBe(300_000);
  });

  it("gives up as failed after maxAttempts, recording safe error text", async () => {
    const ep = await endpoint();
    await event();
    await seal();
    await fanoutWebhookEvents(db.pool);
    const failing: typeof fetch = async () => new Response("upstream says no, secret=abc", { status: 503 });
    const opts = { backoffBaseMs: 10, maxAttempts: 3, fetch: failing, log };
    for (let i = 0; i < 3; i++) {
      await waitFor(
        "due",
        async () =>
          (await db.pool.query("SELECT 1 FROM webhook_deliveries WHERE endpoint_id = $1 AND next_attempt_at <= now()", [ep])).rowCount,
        5000,
      );
      expect((await deliverDue(db.pool, opts)).claimed).toBe(1);
    }
    const d = (await db.pool.query("SELECT * FROM webhook_deliveries WHERE endpoint_id = $1", [ep])).rows[0];
    expect(d).toMatchObject({ status: "failed", attempts: 3, last_status_code: 503, last_error: "HTTP 503" });
    expect((await deliverDue(db.pool, opts)).claimed).toBe(0);
    await db.pool.query("UPDATE webhook_endpoints SET is_active = false WHERE id = $1", [ep]);
  });

  it("a timeout counts as a failed attempt", async () => {
    const ep = await endpoint();
    await event();
    await seal();
    await fanoutWebhookEvents(db.pool);
    const silent = http.createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    await db.pool.query("UPDATE webhook_endpoints SET url = $2 WHERE id = $1", [
      ep,
      `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`,
    ]);
    try {
      const res = await deliverDue(db.pool, { backoffBaseMs: 10, maxAttempts: 5, timeoutMs: 200, log });
      expect(res).toMatchObject({ claimed: 1, retrying: 1 });
      const d = (await db.pool.query("SELECT * FROM webhook_deliveries WHERE endpoint_id = $1", [ep])).rows[0];
      expect(d).toMatchObject({ status: "pending", attempts: 1, last_status_code: null, last_error: "timeout after 200 ms" });
    } finally {
      silent.closeAllConnections();
      silent.close();
      await db.pool.query("UPDATE webhook_endpoints SET is_active = false WHERE id = $1", [ep]);
    }
  });

  it("a crash after the POST, before the result is recorded, redelivers with the same id once the lease expires", async () => {
    const ep = await endpoint();
    await event();
    await seal();
    await fanoutWebhookEvents(db.pool);
    const seen: string[] = [];
    const claimed = await claimDueDeliveries(db.pool, { batch: 10, leaseMs: 300 });
    expect(claimed).toHaveLength(1);
    expect((await attemptDelivery(claimed[0], { timeoutMs: 1000, fetch: okFetch(seen) })).ok).toBe(true);
    // ...and the process dies here. While leased, nobody else sends it.
    expect((await deliverDue(db.pool, { backoffBaseMs: 10, maxAttempts: 5, fetch: okFetch(seen) })).claimed).toBe(0);
    await sleep(350);
    expect((await deliverDue(db.pool, { backoffBaseMs: 10, maxAttempts: 5, fetch: okFetch(seen) })).delivered).toBe(1);
    expect(seen).toEqual([claimed[0].id, claimed[0].id]);
    const d = (await db.pool.query("SELECT * FROM webhook_deliveries WHERE endpoint_id = $1", [ep])).rows[0];
    expect(d).toMatchObject({ status: "delivered", attempts: 1 });
    await db.pool.query("UPDATE webhook_endpoints SET is_active = false WHERE id = $1", [ep]);
  });

  it("a receiver that hangs until the timeout holds a few slots, not the other endpoints' deliveries", async () => {
    const hung = await endpoint(ALL_TYPES, "http://hung.invalid/");
    for (let i = 0; i < 40; i++) await event();
    await seal();
    const healthy = await endpoint(ALL_TYPES, "http://healthy.invalid/"); // created after the backlog: gets only what follows
    const hangs = new Set<string>();
    const fakeFetch: typeof fetch = (url, init) => {
      if (String(url).startsWith("http://healthy.invalid/")) return Promise.resolve(new Response("ok", { status: 200 }));
      hangs.add(String((init!.headers as Record<string, string>)["x-webhook-id"]));
      return new Promise((_, reject) => init!.signal!.addEventListener("abort", () => reject(init!.signal!.reason)));
    };
    const w = startWebhookWorker({
      pool: db.pool,
      log,
      intervalMs: 20,
      backoffBaseMs: 10,
      maxAttempts: 5,
      timeoutMs: 3_000,
      fetch: fakeFetch,
      maxInFlight: 16,
      maxInFlightPerEndpoint: 4,
    });
    try {
      await waitFor("the hung endpoint's slots filled", () => hangs.size >= 4, 5000);
      await sleep(200);
      expect(hangs.size).toBe(4); // capped per endpoint
      await event();
      await seal();
      const t0 = Date.now();
      await waitFor(
        "the healthy endpoint's delivery",
        async () =>
          (await db.pool.query("SELECT 1 FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'delivered'", [healthy])).rowCount,
        2500,
      );
      expect(Date.now() - t0).toBeLessThan(2500); // well before the hung requests time out
    } finally {
      await w.stop(); // aborts the hung requests: not counted as attempts, due again at once
      await db.pool.query("UPDATE webhook_endpoints SET is_active = false WHERE id = ANY($1::uuid[])", [[hung, healthy]]);
    }
    const r = await db.pool.query("SELECT attempts, count(*)::int AS n FROM webhook_deliveries WHERE endpoint_id = $1 GROUP BY attempts", [
      hung,
    ]);
    expect(r.rows).toEqual([{ attempts: 0, n: 41 }]);
  });

  it("concurrent workers on separate pools send each delivery exactly once", async () => {
    const eps = [await endpoint(), await endpoint()];
    for (let i = 0; i < 60; i++) await event();
    await seal();
    const other = createPool(db.url, { max: 10 });
    const seen: string[] = [];
    try {
      const workers = [db.pool, other, db.pool, other].map((p) =>
        startWebhookWorker({ pool: p, log, intervalMs: 10, backoffBaseMs: 10, maxAttempts: 5, fetch: okFetch(seen, 5) }),
      );
      await waitFor("all delivered", async () => {
        const r = await db.pool.query(
          "SELECT count(*) FILTER (WHERE status = 'delivered') AS n FROM webhook_deliveries WHERE endpoint_id = ANY($1::uuid[])",
          [eps],
        );
        return Number(r.rows[0].n) === 120;
      });
      await sleep(100);
      await Promise.all(workers.map((w) => w.stop()));
    } finally {
      await other.end();
    }
    expect(seen).toHaveLength(120);
    expect(new Set(seen).size).toBe(120);
  });
});
