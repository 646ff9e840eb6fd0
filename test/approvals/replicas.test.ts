// Approvals decided at once from three replicas (in-process apps, each with its own pool, registry,
// clients, limiter and liveness lock, on one database and one HSM token): every approval executes
// exactly once, and the signing key's nonces stay consecutive. And the sweep's takeover of an
// execution whose process died: run once, never signed twice.
import { beforeAll, describe, expect, it } from "vitest";
import { sweepApprovals, executionKey } from "../../src/approvals/service.js";
import type { Context } from "../../src/context.js";
import { parseTransaction, requestParsers } from "../../src/http/intents.js";
import type { App } from "../../src/http/types.js";
import { submitTransaction } from "../../src/pipeline/submit.js";
import { getAgent } from "../../src/db/agents.js";
import { call, createAgent } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
/** A replica's context as the approval routes hand it to the approvals service. */
const executing = (ctx: Context) => ({ ...ctx, parsers: requestParsers(ctx) });

describe("approvals across three replicas", () => {
  const svc = useService({ replicas: 2 });
  const { op } = svc;
  const apps: App[] = [];
  const extra: Context[] = [];
  const keys: string[] = [];

  beforeAll(async () => {
    apps.push(svc.app, ...svc.replicas.map((r) => r.app));
    extra.push(...svc.replicas.map((r) => r.ctx));
    for (const name of ["a", "b", "c"])
      keys.push((await call(svc.app, "POST", "/v1/auth/api-keys", { token: op, body: { name } })).body.api_key);
  });

  it("20 approvals, 3 operator keys voting at once on 3 replicas (and /execute hammered): 20 executions, no duplicate, consecutive nonces", async () => {
    const agent = await createAgent(svc.app, op);
    await call(svc.app, "PUT", `/v1/agents/${agent.id}/approval-rules`, {
      token: op,
      body: { approval_rules: { everything: true, quorum: 2 } },
    });
    const held = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(apps[i % 3], "POST", `/v1/agents/${agent.id}/transactions`, {
          token: agent.token,
          body: { to: DEAD, chain: "local", value: `0.${String(i + 1).padStart(3, "0")}` },
        }),
      ),
    );
    expect(held.map((r) => r.status)).toEqual(Array(20).fill(202));
    const ids: string[] = held.map((r) => r.body.pending_approval_id);
    const hashes = await Promise.all(
      ids.map(async (id) => (await call(svc.app, "GET", `/v1/pending-approvals/${id}`, { token: op })).body.payload_hash),
    );

    const votes = await Promise.all(
      ids.flatMap((id, i) => [
        ...keys.map((key, k) =>
          call(apps[(i + k) % 3], "POST", `/v1/pending-approvals/${id}/approve`, {
            token: key,
            body: { decision: "approve", payload_hash: hashes[i] },
          }),
        ),
        ...apps.map((app) => call(app, "POST", `/v1/pending-approvals/${id}/execute`, { token: op })),
      ]),
    );
    for (const v of votes) expect([200, 409]).toContain(v.status);

    const rows = (
      await svc.ctx.pool.query("SELECT status, current_approvals, result_body FROM pending_approvals WHERE id = ANY($1::uuid[])", [ids])
    ).rows;
    expect(rows.map((r) => r.status)).toEqual(Array(20).fill("executed"));
    expect(rows.every((r) => r.current_approvals === 2)).toBe(true);
    const txs = (await svc.ctx.pool.query("SELECT id, nonce, value_wei FROM transactions WHERE agent_id = $1 ORDER BY nonce", [agent.id]))
      .rows;
    expect(txs).toHaveLength(20);
    expect(new Set(rows.map((r) => JSON.parse(r.result_body).id)).size).toBe(20);
    expect(new Set(txs.map((t) => t.value_wei)).size).toBe(20);
    const nonces = txs.map((t) => Number(t.nonce));
    expect(nonces).toEqual(Array.from({ length: 20 }, (_, i) => nonces[0] + i));
    const executed = await svc.ctx.pool.query(
      "SELECT resource_id, count(*)::int AS n FROM audit_events WHERE action = 'approval.executed' AND resource_id = ANY($1::text[]) GROUP BY resource_id",
      [ids],
    );
    expect(executed.rows).toHaveLength(20);
    expect(executed.rows.every((r) => r.n === 1)).toBe(true);
  }, 120_000);

  it("an execution whose process died is taken over by the sweep; if it had already signed, that transaction is the result and nothing is signed again", async () => {
    const agent = await createAgent(svc.app, op);
    await call(svc.app, "PUT", `/v1/agents/${agent.id}/approval-rules`, { token: op, body: { approval_rules: { everything: true } } });
    const ids: string[] = [];
    for (const value of ["0.011", "0.012"]) {
      const r = await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, {
        token: agent.token,
        body: { to: DEAD, chain: "local", value },
      });
      ids.push(r.body.pending_approval_id);
    }
    // Both approved by a process that is gone (a liveness key nobody holds); the second had signed and
    // committed its transaction before dying.
    await svc.ctx.pool.query(
      "UPDATE pending_approvals SET status = 'executing', current_approvals = 1, decided_at = now(), executor_key = 424242 WHERE id = ANY($1::uuid[])",
      [ids],
    );
    const row = (await getAgent(svc.ctx.pool, agent.id))!;
    const body = { to: DEAD, chain: "local", value: "0.012" };
    const first = await submitTransaction(extra[0], {
      principal: { type: "agent", id: agent.id, agent: row, via: "api_key" },
      intent: parseTransaction(body, { agent: row }),
      body,
      mode: "submit",
      idempotencyKey: executionKey(ids[1]),
      approval: { action: "transaction.submit", body: {}, heldAddresses: [], heldDelegates: [], executing: ids[1] },
    });
    const signedBefore = JSON.parse(first.body);

    // The replicas' own background sweeps (every 2 s) may take one of them over first; what matters is
    // that each is resumed once, by whichever replica, which the rows and transactions below show.
    const swept = await sweepApprovals(executing(extra[1]));
    expect(swept.resumed).toBeGreaterThanOrEqual(0);
    expect(swept.resumed).toBeLessThanOrEqual(2);
    await waitForExecuted(svc.ctx.pool, ids);
    const rows = (await svc.ctx.pool.query("SELECT id, status, result_body FROM pending_approvals WHERE id = ANY($1::uuid[])", [ids])).rows;
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.get(ids[0])!.status).toBe("executed");
    expect(byId.get(ids[1])!.status).toBe("executed");
    expect(JSON.parse(byId.get(ids[1])!.result_body).id).toBe(signedBefore.id);
    const txs = (await svc.ctx.pool.query("SELECT value_wei FROM transactions WHERE agent_id = $1 ORDER BY value_wei", [agent.id])).rows;
    expect(txs.map((t) => t.value_wei)).toEqual(["11000000000000000", "12000000000000000"]);
    const executedOnce = await svc.ctx.pool.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE action = 'approval.executed' AND resource_id = ANY($1::text[]) GROUP BY resource_id",
      [ids],
    );
    expect(executedOnce.rows.map((r) => r.n)).toEqual([1, 1]);
    // A second sweep finds nothing to take over.
    expect(await sweepApprovals(executing(extra[0]))).toMatchObject({ resumed: 0 });
  }, 60_000);
});

/** Until every approval in ids has left `executing` (a background sweep may still be finishing one). */
async function waitForExecuted(
  pool: { query: (sql: string, params: unknown[]) => Promise<{ rows: Array<{ n: number }> }> },
  ids: string[],
): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await pool.query(
      "SELECT count(*)::int AS n FROM pending_approvals WHERE id = ANY($1::uuid[]) AND status = 'executing'",
      [ids],
    );
    if (rows[0].n === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("approvals still executing after 10 s");
}
