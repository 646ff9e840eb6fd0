// The audit log is append-only and hash-chained: direct edits are refused, an edit made behind the
// trigger's back is found by verify at exactly that event, and concurrent writers form one chain.
import { describe, expect, it } from "vitest";
import { sealAuditEvents, verifyAuditChain } from "../../src/audit-chain.js";
import { call, createAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";

describe("audit log", () => {
  const svc = useService();
  const { op } = svc;

  // The service's own sealer may hold the sealing lock (sealAuditEvents then returns 0): wait until
  // no committed event is left unsealed, whoever seals it.
  const drain = async () => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      await sealAuditEvents(svc.ctx.pool);
      const { rows } = await svc.ctx.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE chain_seq IS NULL");
      if (rows[0].n === 0) return;
      if (Date.now() > deadline) throw new Error(`${rows[0].n} audit events still unsealed`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it("200 concurrent submits produce one chain that verifies", async () => {
    const agent = await createAgent(svc.app, op);
    const body = { to: "0x000000000000000000000000000000000000dEaD", value: "0.0001", chain: "local" };
    const results = await Promise.all(
      Array.from({ length: 200 }, () => call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, { token: agent.token, body })),
    );
    expect(results.every((r) => r.status === 201)).toBe(true);
    await drain();
    const v = await call(svc.app, "GET", "/v1/audit/verify", { token: op });
    expect(v.status).toBe(200);
    assertMatchesReference("AuditVerifyResponse", v.body);
    expect(v.body).toMatchObject({ chain_valid: true, broken_at_event_id: null, events_unsealed: 0 });
    expect(v.body.events_checked).toBeGreaterThanOrEqual(400); // submit + broadcast per transaction
    const submits = await call(svc.app, "GET", `/v1/audit/events?action=transaction.submit&actor_id=${agent.id}&limit=1000`, { token: op });
    assertMatchesReference("AuditEventsResponse", submits.body);
    expect(submits.body.count).toBe(200);
    const ids = new Set(results.map((r) => r.body.id));
    expect(new Set(submits.body.events.map((e: { resource_id: string }) => e.resource_id))).toEqual(ids);
    // No secret in any event.
    const all = JSON.stringify((await svc.ctx.pool.query("SELECT * FROM audit_events")).rows);
    expect(all).not.toContain(agent.token);
    expect(all).not.toContain(agent.apiKey);
    expect(all).not.toContain(op);
  });

  it("pages with a cursor and filters by resource", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 3; i++) {
      const page: { body: { events: Array<{ id: string }>; next_cursor: string | null } } = await call(
        svc.app,
        "GET",
        `/v1/audit/events?limit=5${cursor ? `&cursor=${cursor}` : ""}`,
        { token: op },
      );
      seen.push(...page.body.events.map((e) => e.id));
      cursor = page.body.next_cursor;
    }
    expect(new Set(seen).size).toBe(15);
    const agent = await createAgent(svc.app, op);
    const byResource = await call(svc.app, "GET", `/v1/audit/events?resource_id=${agent.id}`, { token: op });
    expect(byResource.body.events.map((e: { action: string }) => e.action)).toEqual(
      expect.arrayContaining(["agent.create", "agent.token_issued"]),
    );
    expect((await call(svc.app, "GET", "/v1/audit/events", { token: agent.token })).status).toBe(403);
    expect((await call(svc.app, "GET", "/v1/audit/verify")).status).toBe(401);
  });

  it("refuses UPDATE, DELETE and TRUNCATE", async () => {
    await drain();
    const { rows } = await svc.ctx.pool.query("SELECT id FROM audit_events ORDER BY seq LIMIT 1");
    for (const sql of [
      "UPDATE audit_events SET details = '{\"x\":1}' WHERE id = $1",
      "UPDATE audit_events SET hash = 'f' WHERE id = $1",
      "DELETE FROM audit_events WHERE id = $1",
    ]) {
      await expect(svc.ctx.pool.query(sql, [rows[0].id])).rejects.toMatchObject({ code: "42501" });
    }
    await expect(svc.ctx.pool.query("TRUNCATE audit_events")).rejects.toMatchObject({ code: "42501" });
  });

  it("an edit made with the trigger disabled is caught by verify at exactly that event", async () => {
    await drain();
    expect((await verifyAuditChain(svc.ctx.pool)).chain_valid).toBe(true);
    const { rows } = await svc.ctx.pool.query(
      "SELECT id FROM audit_events WHERE chain_seq IS NOT NULL ORDER BY chain_seq OFFSET 100 LIMIT 1",
    );
    const target = rows[0].id;
    const c = await svc.ctx.pool.connect();
    try {
      await c.query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update");
      await c.query(`UPDATE audit_events SET details = jsonb_set(details, '{value_wei}', '"1"') WHERE id = $1`, [target]);
      await c.query("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update");
    } finally {
      c.release();
    }
    const v = await call(svc.app, "GET", "/v1/audit/verify", { token: op });
    expect(v.body).toMatchObject({ chain_valid: false, broken_at_event_id: target, events_verified: 100 });
  });
});
