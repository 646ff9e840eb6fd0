// The tracker against an anvil with automine off: confirmations counted block by block to the chain's
// `confirmations`, a failed receipt recorded as reverted, a transaction dropped from the mempool sent
// again, and a reorg that removes a mined transaction noticed and followed until it mines again.
// A second tracker (another replica: its own pool, registry and clients) runs on the same database
// throughout: leases keep them off each other's rows, so every event is recorded once.
import type { PublicClient } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChainClients } from "../../src/chains/clients.js";
import { ChainRegistry } from "../../src/chains/registry.js";
import { createPool, type Pool } from "../../src/db/pool.js";
import { Tracker, trackerOptions } from "../../src/tracker/tracker.js";
import { call } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";
import {
  agentWithKey,
  attemptsOf,
  auditOf,
  byHash,
  mine,
  minedByHand,
  receipt,
  rpc,
  setConfirmations,
  submitter,
  txRow,
  waitFor,
} from "./helpers.js";

describe("confirmations, reverts, drops and reorgs", () => {
  const svc = useService(minedByHand());
  const { op } = svc;
  let chain: PublicClient;
  let submit: ReturnType<typeof submitter>;
  let agentId: string;
  let agentToken: string;
  let replicaPool: Pool;
  let replica: Tracker;

  beforeAll(async () => {
    chain = svc.chain;
    await setConfirmations(svc, 3);
    replicaPool = createPool(svc.databaseUrl, { max: 5 });
    const chains = new ChainRegistry(replicaPool, { LOCAL: [svc.anvil.url] });
    await chains.refresh();
    replica = new Tracker(
      { pool: replicaPool, signer: svc.ctx.signer, chains, clients: new ChainClients(), log: svc.ctx.log },
      trackerOptions(svc.ctx.config),
    );
    replica.start();
    const agent = await agentWithKey(svc, op, chain);
    submit = submitter(svc, agent);
    agentId = agent.id;
    agentToken = agent.token;
  });
  afterAll(async () => {
    await replica?.stop();
    await replicaPool?.end();
  });

  const row = (id: string) => txRow(svc.ctx.pool, id);

  it("counts confirmations block by block and marks the transaction confirmed at the chain's confirmations", async () => {
    const r = await submit({ value: "0.001" });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ status: "broadcast", chain_status: "unconfirmed", confirmations: 0 });
    const id = r.body.id;

    await mine(chain);
    const one = await waitFor("the first confirmation", async () => ((await row(id)).confirmations === 1 ? row(id) : undefined));
    expect(one.chain_status).toBe("unconfirmed");
    expect(one.block_number).not.toBeNull();

    await mine(chain);
    await waitFor("the second confirmation", async () => (await row(id)).confirmations === 2);
    expect((await row(id)).chain_status).toBe("unconfirmed");

    await mine(chain);
    const done = await waitFor("confirmed", async () => ((await row(id)).chain_status === "confirmed" ? row(id) : undefined));
    expect(done.confirmations).toBe(3);
    expect(done.block_hash).toBe((await receipt(chain, r.body.tx_hash))!.blockHash);

    const got = await call(svc.app, "GET", `/v1/agents/${agentId}/transactions/${id}`, { token: agentToken });
    expect(got.body).toMatchObject({
      chain_status: "confirmed",
      confirmations: 3,
      block_number: Number(done.block_number),
      tx_hash: r.body.tx_hash,
    });
    const confirmed = await auditOf(svc.ctx.pool, id, "transaction.confirmed");
    expect(confirmed).toHaveLength(1);
    expect(confirmed[0].details).toMatchObject({ chain_status: "confirmed", confirmations: 3, receipt_status: "success" });

    // Final: more blocks change nothing.
    await mine(chain, 2);
    await new Promise((r) => setTimeout(r, 300));
    expect((await row(id)).confirmations).toBe(3);
  });

  it("records a failed receipt as reverted", async () => {
    const reverter = "0x00000000000000000000000000000000000bad01";
    await rpc(chain, "anvil_setCode", [reverter, "0x60006000fd"]); // PUSH1 0 PUSH1 0 REVERT
    const r = await submit({ to: reverter, gas_limit: 60_000 });
    expect(r.status).toBe(201);
    expect(r.body.status).toBe("broadcast");
    await mine(chain, 3);
    const done = await waitFor("reverted", async () => ((await row(r.body.id)).chain_status === "reverted" ? row(r.body.id) : undefined));
    expect(done.confirmations).toBe(3);
    expect(done.error_message).toMatch(/reverted/i);
    expect((await receipt(chain, r.body.tx_hash))!.status).toBe("0x0");
    expect((await auditOf(svc.ctx.pool, r.body.id, "transaction.confirmed"))[0].details).toMatchObject({
      chain_status: "reverted",
      receipt_status: "reverted",
    });
  });

  it("sends a transaction dropped from the mempool again, byte for byte, and it mines", async () => {
    const r = await submit({ value: "0.002" });
    const hash = r.body.tx_hash;
    expect(await rpc(chain, "anvil_dropTransaction", [hash])).toBe(hash);
    expect(await byHash(chain, hash)).toBeNull();

    const back = await waitFor("the rebroadcast", async () => byHash(chain, hash), 10_000);
    expect(back.blockNumber).toBeNull(); // pending again
    const dropped = await waitFor("the drop recorded", async () => {
      const events = await auditOf(svc.ctx.pool, r.body.id, "transaction.dropped");
      return events.length ? events : undefined;
    });
    expect(dropped).toHaveLength(1);
    expect(dropped[0].details).toMatchObject({ final: false, tx_hash: hash });

    await mine(chain, 3);
    const done = await waitFor("confirmed", async () => ((await row(r.body.id)).chain_status === "confirmed" ? row(r.body.id) : undefined));
    expect(done.tx_hash).toBe(hash);
    expect(done.broadcast_attempts).toBe(2);
    expect(await auditOf(svc.ctx.pool, r.body.id, "transaction.broadcast")).toHaveLength(2);
    // A resend is the stored signature: one attempt, never a second signature.
    expect(await attemptsOf(svc.ctx.pool, r.body.id)).toHaveLength(1);
  });

  it.each(["anvil_reorg", "anvil_rollback"])(
    "notices a reorg (%s) that removes a mined transaction, and follows it until it mines again",
    async (how) => {
      const r = await submit({ value: "0.003" });
      const id = r.body.id;
      await mine(chain);
      const mined = await waitFor("mined", async () => ((await row(id)).block_hash ? row(id) : undefined));
      expect(mined.confirmations).toBe(1);

      if (how === "anvil_reorg") await rpc(chain, "anvil_reorg", [1, []]);
      else await rpc(chain, "anvil_rollback", [1]);
      expect(await receipt(chain, r.body.tx_hash)).toBeNull();

      await waitFor("the reorg to be noticed", async () => (await auditOf(svc.ctx.pool, id, "transaction.reorged")).length > 0);
      const reorged = await auditOf(svc.ctx.pool, id, "transaction.reorged");
      expect(reorged[0].details).toMatchObject({ old_block_hash: mined.block_hash, tx_hash: r.body.tx_hash });
      // Back in the node's mempool (sent again by the tracker), then mined in a new block.
      await waitFor("the transaction back in the mempool", async () => byHash(chain, r.body.tx_hash), 10_000);
      await mine(chain, 3);
      const done = await waitFor("confirmed again", async () => ((await row(id)).chain_status === "confirmed" ? row(id) : undefined));
      expect(done.tx_hash).toBe(r.body.tx_hash);
      expect(done.block_hash).not.toBe(mined.block_hash);
      expect(done.block_hash).toBe((await receipt(chain, r.body.tx_hash))!.blockHash);
      expect(done.confirmations).toBe(3);
      expect(await attemptsOf(svc.ctx.pool, id)).toHaveLength(1);
      expect(await auditOf(svc.ctx.pool, id, "transaction.reorged")).toHaveLength(1);
      expect(await auditOf(svc.ctx.pool, id, "transaction.confirmed")).toHaveLength(1);
    },
  );
});
