// The anvil-fork simulator's lifetime: one warm fork per chain reused across simulations, concurrent
// simulations serialised (snapshot/revert is global to the fork), a dead fork replaced, close() stops it.
import { getAddress, type Address } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnvil, type AnvilNode } from "../../src/chains/anvil.js";
import { ChainClients } from "../../src/chains/clients.js";
import { createLogger } from "../../src/log.js";
import { AnvilForkSimulator } from "../../src/simulators/anvil-fork.js";
import { chainRecord, devClients } from "./helpers.js";

const recipient = (i: number) => `0x${(0xc0de00 + i).toString(16).padStart(40, "0")}` as Address;

describe("anvil fork lifetime", () => {
  let node: AnvilNode;
  let sim: AnvilForkSimulator;
  let from: Address;

  beforeAll(async () => {
    node = await startAnvil({ chainId: 31337 });
    from = devClients(node.url).account.address;
    sim = new AnvilForkSimulator({ clients: new ChainClients(), log: createLogger("silent") });
  });
  afterAll(async () => {
    await sim?.close();
    await node?.stop();
  });

  const forkUrl = async () => ((await (sim as any).forks.get("local")) as { node: AnvilNode }).node.url;

  it("keeps one warm fork per chain across simulations", async () => {
    await sim.simulate(chainRecord(node.url), [{ from, to: recipient(0), value: 1n }]);
    const first = await forkUrl();
    await sim.simulate(chainRecord(node.url), [{ from, to: recipient(0), value: 1n }]);
    expect(await forkUrl()).toBe(first);
    expect((sim as any).forks.size).toBe(1);
  });

  it("serialises concurrent simulations: each starts from the chain's state", async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        sim.simulate(chainRecord(node.url), [{ from, to: recipient(1), value: BigInt(i + 1) * 10n ** 15n }]),
      ),
    );
    results.forEach(([r], i) => {
      expect(r!.status).toBe("success");
      const got = r!.balanceChanges.find((c) => c.address === getAddress(recipient(1)));
      expect(got).toMatchObject({ before: "0", change: String((i + 1) / 1000) });
    });
  });

  it("replaces a fork whose process died", async () => {
    const fork = (await (sim as any).forks.get("local")) as { node: AnvilNode };
    await fork.node.stop();
    const [r] = await sim.simulate(chainRecord(node.url), [{ from, to: recipient(2), value: 1n }]);
    expect(r!.status).toBe("success");
    expect(await forkUrl()).not.toBe(fork.node.url);
  });

  it("reports a chain it cannot fork as status error", async () => {
    const [r] = await sim.simulate(chainRecord("http://127.0.0.1:9", { name: "nowhere" }), [{ from, to: recipient(3), value: 1n }]);
    expect(r!.status).toBe("error");
    expect(r!.error).toMatch(/^Could not fork nowhere for simulation/);
  });

  it("close() stops the fork processes", async () => {
    const url = await forkUrl();
    await sim.close();
    await expect(fetch(url, { method: "POST", body: "{}" })).rejects.toThrow();
    const [r] = await sim.simulate(chainRecord(node.url), [{ from, to: recipient(4), value: 1n }]);
    expect(r!.status).toBe("error");
  });
});
