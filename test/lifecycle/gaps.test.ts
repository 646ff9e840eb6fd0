// Nonce gaps, on the service's own anvil (automine): a released nonce is reused by the next
// submission; a gap that no submission fills within GAP_FILL_AFTER_SECONDS is filled with a zero-value
// self-transfer so the transactions behind it mine; a tracked nonce that drifted ahead of the chain is
// brought back.
import type { Hex, PublicClient } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_AGENT_ID } from "../../src/tracker/types.js";
import { call } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";
import { agentWithKey, auditOf, DEAD, receipt, rpc, submitter, txRow, waitFor } from "./helpers.js";

/** A quick tracker that fills gaps after a second and never replaces a stuck transaction. */
const GAP_REPAIR = { TRACKER_INTERVAL_MS: "100", GAP_FILL_AFTER_SECONDS: "1", STUCK_AFTER_SECONDS: "3600" };

describe("nonce gaps", () => {
  const svc = useService({ env: GAP_REPAIR });
  const { op } = svc;
  let chain: PublicClient;
  beforeAll(() => {
    chain = svc.chain;
  });

  const count = (address: Hex) => chain.getTransactionCount({ address });
  /** Enough for one small transfer's gas, never for 5 ETH: the node refuses the big one outright. */
  const poor = async (address: Hex) => rpc(chain, "anvil_setBalance", [address, "0x" + (10n ** 16n).toString(16)]);

  it("reuses a released nonce for the next submission", async () => {
    const a = await agentWithKey(svc, op, chain);
    const submit = submitter(svc, a);
    await poor(a.address);
    const refused = await submit({ value: "5", gas_limit: 21_000 });
    expect(refused.body).toMatchObject({ status: "failed", nonce: 0 });
    const next = await submit({ value: "0.001", gas_limit: 21_000 });
    expect(next.body).toMatchObject({ status: "broadcast", nonce: 0 });
    await waitFor("mined", async () => (await count(a.address)) === 1);
  });

  it("fills a gap that no submission fills within the bound with a zero-value self-transfer", async () => {
    const a = await agentWithKey(svc, op, chain);
    const submit = submitter(svc, a);
    expect((await submit({ value: "0.001" })).body.nonce).toBe(0);
    await waitFor("nonce 0 mined", async () => (await count(a.address)) === 1);

    // Nonce 1 is signed only and never sent: after the bound its nonce is a gap (explicit nonces can
    // no longer open one: pipeline/nonce.ts).
    const held = await call(svc.app, "POST", `/v1/agents/${a.id}/transactions/sign`, {
      token: a.token,
      body: { chain: "local", to: DEAD, value: "0.001" },
    });
    expect(held.body).toMatchObject({ status: "sign_only", nonce: 1 });
    const behind = await submit({ value: "0.001" }); // nonce 2 waits behind the gap at 1
    expect(behind.body).toMatchObject({ status: "broadcast", nonce: 2 });
    expect(await receipt(chain, behind.body.tx_hash)).toBeNull();

    const filler = await waitFor(
      "a gap filler",
      async () => {
        const { rows } = await svc.ctx.pool.query("SELECT id FROM transactions WHERE from_address = $1 AND nonce = 1 AND agent_id = $2", [
          a.address.toLowerCase(),
          SYSTEM_AGENT_ID,
        ]);
        return rows[0]?.id as string | undefined;
      },
      15_000,
    );
    const fill = await txRow(svc.ctx.pool, filler);
    expect(fill).toMatchObject({ to_address: a.address.toLowerCase(), value_wei: "0", counts_toward_limits: false });
    expect((await auditOf(svc.ctx.pool, filler, "transaction.submit"))[0].details).toMatchObject({ reason: "gap_fill", nonce: 1 });

    await waitFor("both mined", async () => (await count(a.address)) === 3, 15_000);
    expect((await receipt(chain, fill.tx_hash!))!.status).toBe("0x1");
    expect((await receipt(chain, behind.body.tx_hash))!.status).toBe("0x1");
    await waitFor("the filler confirmed", async () => (await txRow(svc.ctx.pool, filler)).chain_status === "confirmed");
    const left = await svc.ctx.pool.query("SELECT 1 FROM released_nonces WHERE address = $1", [a.address.toLowerCase()]);
    expect(left.rowCount).toBe(0);
  });

  it("brings a tracked nonce that drifted ahead of the chain back, so the next submission mines", async () => {
    const a = await agentWithKey(svc, op, chain);
    const submit = submitter(svc, a);
    expect((await submit({ value: "0.001" })).body.nonce).toBe(0);
    await waitFor("nonce 0 mined", async () => (await count(a.address)) === 1);
    const addr = a.address.toLowerCase();
    // Drift: the tracked next nonce is 7 although nothing above 0 was ever signed.
    await svc.ctx.pool.query(
      "UPDATE nonces SET next_nonce = 7, updated_at = now() - interval '1 hour' WHERE chain_id = 31337 AND address = $1",
      [addr],
    );
    await waitFor(
      "reconciled",
      async () => {
        const { rows } = await svc.ctx.pool.query("SELECT next_nonce FROM nonces WHERE chain_id = 31337 AND address = $1", [addr]);
        return rows[0].next_nonce === "1";
      },
      10_000,
    );
    const next = await submit({ value: "0.001" });
    expect(next.body.nonce).toBe(1);
    await waitFor("mined", async () => (await count(a.address)) === 2);
  });
});

describe("gap repair is bounded per key", () => {
  const svc = useService({ env: { ...GAP_REPAIR, GAP_FILLS_PER_KEY_PER_DAY: "1" } });
  const { op } = svc;
  let chain: PublicClient;
  beforeAll(() => {
    chain = svc.chain;
  });

  it("past GAP_FILLS_PER_KEY_PER_DAY it raises an alert (metric, audit, webhook) instead of filling", async () => {
    const hook = await call(svc.app, "POST", "/v1/webhooks", {
      token: op,
      body: { url: "http://127.0.0.1:9/alerts", events: ["signing_key.nonce_gap_alert"] },
    });
    expect(hook.status).toBe(201);
    const a = await agentWithKey(svc, op, chain);
    const submit = submitter(svc, a);
    // Nonces 0 and 1 signed only and never sent; nonce 2 waits behind them.
    for (const n of [0, 1]) {
      const held = await call(svc.app, "POST", `/v1/agents/${a.id}/transactions/sign`, {
        token: a.token,
        body: { chain: "local", to: DEAD, value: "0" },
      });
      expect(held.body.nonce).toBe(n);
    }
    const behind = await submit({ value: "0.001" });
    expect(behind.body).toMatchObject({ status: "broadcast", nonce: 2 });

    const alert = await waitFor(
      "a gap alert",
      async () => {
        const { rows } = await svc.ctx.pool.query(
          "SELECT details FROM audit_events WHERE action = 'nonce.gap_alert' AND resource_id = $1",
          [a.address.toLowerCase()],
        );
        return rows[0]?.details as Record<string, unknown> | undefined;
      },
      15_000,
    );
    expect(alert).toMatchObject({ gaps: [0, 1], fills_today: 0, limit: 1 });
    // One fill (the bound), no more: nonce 1 stays open and nonce 2 waits.
    await new Promise((r) => setTimeout(r, 1500));
    const fills = await svc.ctx.pool.query("SELECT nonce FROM transactions WHERE from_address = $1 AND agent_id = $2", [
      a.address.toLowerCase(),
      SYSTEM_AGENT_ID,
    ]);
    expect(fills.rows.map((r) => r.nonce)).toEqual(["0"]);
    await waitFor("the fill mined", async () => (await count(a.address)) === 1);
    expect(await chain.getTransactionCount({ address: a.address })).toBe(1);
    expect(await svc.ctx.metrics.registry.metrics()).toMatch(/intents_nonce_gap_alerts_total\{chain="local"\} 1/);
    await waitFor(
      "the alert's webhook delivery",
      async () => {
        const { rows } = await svc.ctx.pool.query(
          "SELECT payload FROM webhook_deliveries WHERE endpoint_id = $1 AND event_type = 'signing_key.nonce_gap_alert'",
          [hook.body.id],
        );
        return rows[0]?.payload?.data?.from === a.address.toLowerCase();
      },
      15_000,
    );
  });

  const count = (address: Hex) => chain.getTransactionCount({ address });
});
