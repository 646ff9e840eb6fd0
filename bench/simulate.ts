// Simulation latency: the anvil-fork simulator cold (a new fork per simulation, i.e. the first one of
// a chain) vs warm (the kept fork), with the chain's head still or moving (moving = anvil_reset per
// simulation), and the plain-RPC simulator for comparison. The chain is a local anvil with the test
// token deployed. Prints JSON. Usage: npx tsx bench/simulate.ts [warm=60] [cold=10]
import os from "node:os";
import { encodeFunctionData, type Address } from "viem";
import { startAnvil } from "../src/chains/anvil.js";
import { ChainClients } from "../src/chains/clients.js";
import { createLogger } from "../src/log.js";
import { AnvilForkSimulator } from "../src/simulators/anvil-fork.js";
import { RpcSimulator } from "../src/simulators/rpc.js";
import type { SimCall, Simulator } from "../src/simulators/simulator.js";
import { TestToken } from "../test/contracts/index.js";
import { chainRecord, devClients } from "../test/simulation/helpers.js";

const warmN = Number(process.argv[2] ?? 60);
const coldN = Number(process.argv[3] ?? 10);
const log = createLogger("silent");

const node = await startAnvil({ chainId: 31337 });
try {
  const dev = devClients(node.url);
  const token = await dev.deploy(TestToken, ["Test Dollar", "TUSD"]);
  await dev.send(token, TestToken.abi, "mint", [dev.account.address, 10n ** 12n]);
  const chain = chainRecord(node.url);
  const from = dev.account.address;
  const eth: SimCall = { from, to: "0x000000000000000000000000000000000000dEaD", value: 10n ** 16n };
  const erc20: SimCall = {
    from,
    to: token,
    value: 0n,
    data: encodeFunctionData({
      abi: TestToken.abi,
      functionName: "transfer",
      args: ["0x00000000000000000000000000000000000b0b00" as Address, 1_000_000n],
    } as never),
  };
  const clients = new ChainClients();

  async function series(sim: Simulator, call: SimCall, n: number, between?: () => Promise<void>): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      if (between) await between();
      const t = performance.now();
      const [r] = await sim.simulate(chain, [call]);
      out.push(performance.now() - t);
      if (r!.status !== "success") throw new Error(`simulation failed: ${JSON.stringify(r)}`);
    }
    return out;
  }

  const cold: number[] = [];
  for (let i = 0; i < coldN; i++) {
    const sim = new AnvilForkSimulator({ clients, log });
    const t = performance.now();
    const [r] = await sim.simulate(chain, [eth]);
    cold.push(performance.now() - t);
    if (r!.status !== "success") throw new Error("cold simulation failed");
    await sim.close();
  }

  const warm = new AnvilForkSimulator({ clients, log });
  await series(warm, eth, 3); // warm-up
  const warmEth = await series(warm, eth, warmN);
  const warmErc20 = await series(warm, erc20, warmN);
  // A block mined on the chain before each simulation: the fork is reset to the new head each time.
  const mine = () => dev.pub.request({ method: "evm_mine" as never, params: [] as never }).then(() => undefined);
  const warmMoving = await series(warm, eth, Math.min(warmN, 30), mine);
  const bundleT: number[] = [];
  for (let i = 0; i < Math.min(warmN, 30); i++) {
    const t = performance.now();
    await warm.simulate(chain, [erc20, eth, erc20]);
    bundleT.push(performance.now() - t);
  }
  await warm.close();

  const rpc = new RpcSimulator({ clients, log });
  const rpcEth = await series(rpc, eth, warmN);
  const rpcErc20 = await series(rpc, erc20, warmN);

  const stats = (xs: number[]) => ({
    n: xs.length,
    p50_ms: round(pct(xs, 50)),
    p95_ms: round(pct(xs, 95)),
    max_ms: round(Math.max(...xs)),
  });
  console.log(
    JSON.stringify(
      {
        machine: { cpus: os.cpus().length, node: process.version },
        anvil_fork: {
          cold_first_simulation_eth: stats(cold),
          warm_eth_transfer: stats(warmEth),
          warm_erc20_transfer: stats(warmErc20),
          warm_eth_head_moved_each_time: stats(warmMoving),
          warm_bundle_of_3: stats(bundleT),
        },
        rpc: { eth_transfer: stats(rpcEth), erc20_transfer: stats(rpcErc20) },
      },
      null,
      2,
    ),
  );
} finally {
  await node.stop();
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
function round(x: number): number {
  return Math.round(x * 10) / 10;
}
