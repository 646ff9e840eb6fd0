// A chain that goes back under a running service: the local anvil is reset to an empty genesis
// (anvil_reset) after transactions were confirmed on it. The tracker notices within a pass, marks the
// lost rows `chain_reset`, audits and counts it, resynchronises the signing address's nonce and funds
// the local signer again, so the next submission on that key is mined, with nonce 0.
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";
import { chainClient, DEAD, receipt, rpc, waitFor } from "../lifecycle/helpers.js";

describe("chain reset under a running service", () => {
  const svc = useService({ env: { TRACKER_INTERVAL_MS: "200", WEBHOOK_INTERVAL_MS: "100" }, agent: true });
  const { op } = svc;

  // A webhook receiver subscribed to failures: the reset reaches it for every lost transaction.
  const received: Array<{ type: string; data: Record<string, unknown> }> = [];
  const receiver = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", () => {
      try {
        received.push(JSON.parse(raw));
      } catch {
        /* not JSON: not ours */
      }
      res.writeHead(200).end();
    });
  });

  beforeAll(async () => {
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
    const hook = await call(svc.app, "POST", "/v1/webhooks", { token: op, body: { url, events: ["agent.transaction.failed"] } });
    expect(hook.status, hook.raw).toBe(201);
  });
  afterAll(async () => {
    await svc?.close();
    await new Promise((r) => receiver.close(r));
  });

  const submit = () =>
    call(svc.app, "POST", `/v1/agents/${svc.agent.id}/transactions`, {
      token: svc.agent.token,
      body: { chain: "local", to: DEAD, value: "0.001" },
    });
  const read = async (id: string) =>
    (await call(svc.app, "GET", `/v1/agents/${svc.agent.id}/transactions/${id}`, { token: svc.agent.token })).body;

  it("is detected, the rows are marked, the nonce is resynchronised and the next submission is mined", async () => {
    const client = chainClient(svc.ctx.localChainUrl!);
    const first = [];
    for (let i = 0; i < 3; i++) {
      const r = await submit();
      expect(r.status).toBe(201);
      first.push(r.body);
    }
    for (const t of first) await waitFor(`confirmed ${t.nonce}`, async () => (await read(t.id)).chain_status === "confirmed");
    const from = first[0].from as `0x${string}`;
    const before = Number(await client.getTransactionCount({ address: from }));
    expect(before).toBeGreaterThanOrEqual(3);

    await rpc(client, "anvil_reset", []);
    expect(Number(await client.getTransactionCount({ address: from }))).toBe(0);
    expect(await receipt(client, first[0].tx_hash)).toBeNull();

    for (const t of first) await waitFor(`chain_reset ${t.nonce}`, async () => (await read(t.id)).chain_status === "chain_reset", 15_000);
    const { rows: events } = await svc.ctx.pool.query(
      "SELECT details FROM audit_events WHERE action = 'chain.reset_detected' AND lower(details->>'address') = lower($1)",
      [from],
    );
    expect(events).toHaveLength(1);
    expect(events[0].details).toMatchObject({ kind: "nonce_went_back", chain: "local", chain_nonce: 0, transactions_marked: before });
    const perRow = await svc.ctx.pool.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE action = 'transaction.chain_reset' AND resource_id = ANY($1::text[])",
      [first.map((t) => t.id)],
    );
    expect(perRow.rows[0].n).toBe(3);
    expect((await svc.ctx.metrics.chainResets.get()).values.find((v) => v.labels.chain === "local")?.value).toBe(1);
    await waitFor("webhook deliveries", async () => received.filter((e) => e.data?.chain_status === "chain_reset").length >= 3, 20_000);
    const hooks = received.filter((e) => e.data?.chain_status === "chain_reset");
    expect(hooks.map((e) => e.type)).toEqual(Array(3).fill("agent.transaction.failed"));
    expect(hooks.map((e) => e.data.transaction_id).sort()).toEqual(first.map((t) => t.id).sort());
    expect(String(hooks[0].data.error_message)).toMatch(/chain reset/);
    const metrics = (await svc.app.inject({ method: "GET", url: "/metrics" })).body;
    expect(metrics).toMatch(/intents_chain_resets_total\{chain="local"\} 1/);
    const { rows: nonce } = await svc.ctx.pool.query("SELECT next_nonce FROM nonces WHERE lower(address) = lower($1)", [from]);
    expect(Number(nonce[0].next_nonce)).toBe(0);

    // The next submission on that key: nonce 0, mined, confirmed. The chain_status filter finds the old rows.
    const next = await submit();
    expect(next.status).toBe(201);
    expect(next.body.nonce).toBe(0);
    await waitFor("the new transaction mined", async () => (await receipt(client, next.body.tx_hash))?.status === "0x1", 20_000);
    await waitFor("the new transaction confirmed", async () => (await read(next.body.id)).chain_status === "confirmed");
    const listed = await call(svc.app, "GET", `/v1/agents/${svc.agent.id}/transactions?chain_status=chain_reset`, {
      token: svc.agent.token,
    });
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).toContain(first[0].id);
    // The old rows stay marked; nothing of them was resent.
    for (const t of first) expect((await read(t.id)).chain_status).toBe("chain_reset");
  });

  it("records the reset once, not again on every later pass", async () => {
    // Nothing changed since the reset above was recorded: passes keep running, no new reset event.
    await new Promise((r) => setTimeout(r, 1500));
    const { rows } = await svc.ctx.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'chain.reset_detected'");
    expect(rows[0].n).toBe(1);
  });
});
