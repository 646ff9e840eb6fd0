// The plain-RPC simulator against a local anvil: with the node's tracers and eth_simulateV1, and
// behind a proxy that refuses them (a node without debug_* or eth_simulateV1).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { encodeErrorResult, encodeFunctionData, getAddress, type Address } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnvil, type AnvilNode } from "../../src/chains/anvil.js";
import { ChainClients } from "../../src/chains/clients.js";
import { createLogger } from "../../src/log.js";
import { RpcSimulator } from "../../src/simulators/rpc.js";
import type { SimCall } from "../../src/simulators/simulator.js";
import { Failures, TestToken } from "../contracts/index.js";
import { chainRecord, devClients } from "./helpers.js";

const DEAD = "0x000000000000000000000000000000000000dead" as Address;
const RECIPIENT = "0x00000000000000000000000000000000000b0b00" as Address;
const SPENDER = "0x5500000000000000000000000000000000000055" as Address;
const data = (abi: typeof Failures.abi, functionName: string, args: unknown[] = []) =>
  encodeFunctionData({ abi, functionName, args } as never);

describe("RPC simulator", () => {
  let node: AnvilNode;
  let dev: ReturnType<typeof devClients>;
  let token: Address;
  let failures: Address;
  let sim: RpcSimulator;
  let proxy: http.Server;
  let proxyUrl: string;
  const log = createLogger("silent");

  beforeAll(async () => {
    node = await startAnvil({ chainId: 31337 });
    dev = devClients(node.url);
    token = await dev.deploy(TestToken, ["Test Dollar", "TUSD"]);
    failures = await dev.deploy(Failures);
    await dev.send(token, TestToken.abi, "mint", [dev.account.address, 50_000_000n]);
    await dev.setBalance(SPENDER, 10n ** 18n);
    sim = new RpcSimulator({ clients: new ChainClients(), log });
    // A node without debug_traceCall and eth_simulateV1.
    proxy = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", async () => {
        // One call or a JSON-RPC batch (the service batches calls made together): refused methods
        // get a per-call error, as a real node answers them; the rest go to anvil.
        const parsed = JSON.parse(body);
        const calls: Array<{ id: unknown; method: string }> = Array.isArray(parsed) ? parsed : [parsed];
        const answers = await Promise.all(
          calls.map(async (msg) => {
            if (["debug_traceCall", "eth_simulateV1"].includes(msg.method)) {
              return { jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "Method not found" } };
            }
            const up = await fetch(node.url, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify(msg),
            });
            return up.json();
          }),
        );
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify(Array.isArray(parsed) ? answers : answers[0]));
      });
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    proxy?.close();
    await node?.stop();
  });

  const from = () => dev.account.address;

  it("an ETH transfer: 21000 gas, sender pays value + fee (prestateTracer), recipient gets the value", async () => {
    const [r] = await sim.simulate(chainRecord(node.url), [{ from: from(), to: DEAD, value: 10n ** 16n }]);
    expect(r).toMatchObject({ status: "success", gasUsed: 21000n });
    const [s, d] = r!.balanceChanges;
    expect(s!.address).toBe(getAddress(from()));
    expect(s!.change.startsWith("-0.01")).toBe(true);
    expect(s!.change).not.toBe("-0.01"); // the fee is in it
    expect(d).toMatchObject({ address: getAddress(DEAD), token: "ETH", change: "0.01" });
  });

  it("an ERC-20 transfer: token changes with symbol and decimals", async () => {
    const [r] = await sim.simulate(chainRecord(node.url), [
      { from: from(), to: token, value: 0n, data: data(TestToken.abi, "transfer", [RECIPIENT, 2_500_000n]) },
    ]);
    expect(r!.status).toBe("success");
    expect(r!.balanceChanges.filter((c) => c.token !== "ETH")).toEqual([
      { address: getAddress(from()), token: getAddress(token), token_symbol: "TUSD", before: "50", after: "47.5", change: "-2.5" },
      { address: getAddress(RECIPIENT), token: getAddress(token), token_symbol: "TUSD", before: "0", after: "2.5", change: "2.5" },
    ]);
  });

  it("reverts: reason string, custom error, panic, out of gas", async () => {
    const custom = encodeErrorResult({ abi: Failures.abi, errorName: "Unauthorized", args: [from(), 3n] } as never).toLowerCase();
    const calls: Array<[SimCall, string]> = [
      [{ from: from(), to: failures, value: 0n, data: data(Failures.abi, "failWithReason") }, "Failures: not allowed"],
      [{ from: from(), to: failures, value: 0n, data: data(Failures.abi, "failWithCustomError", [3n]) }, custom],
      [{ from: from(), to: failures, value: 0n, data: data(Failures.abi, "divide", [1n, 0n]) }, "Panic(0x12): division or modulo by zero"],
      [{ from: from(), to: failures, value: 0n, data: data(Failures.abi, "burnGas"), gas: 100_000n }, "out of gas"],
    ];
    for (const [c, reason] of calls) {
      const [r] = await sim.simulate(chainRecord(node.url), [c]);
      expect(r).toMatchObject({ status: "reverted", revertReason: reason });
    }
  });

  it("a bundle through eth_simulateV1 carries state; the reverse order reverts", async () => {
    const approve: SimCall = { from: from(), to: token, value: 0n, data: data(TestToken.abi, "approve", [SPENDER, 1_000_000n]) };
    const pull: SimCall = {
      from: SPENDER,
      to: token,
      value: 0n,
      data: data(TestToken.abi, "transferFrom", [from(), RECIPIENT, 1_000_000n]),
    };
    const ok = await sim.simulate(chainRecord(node.url), [approve, pull]);
    expect(ok.map((r) => r.status)).toEqual(["success", "success"]);
    expect(ok[1]!.balanceChanges.filter((c) => c.token !== "ETH")).toEqual([
      { address: getAddress(from()), token: getAddress(token), token_symbol: "TUSD", before: "50", after: "49", change: "-1" },
      { address: getAddress(RECIPIENT), token: getAddress(token), token_symbol: "TUSD", before: "0", after: "1", change: "1" },
    ]);
    const reversed = await sim.simulate(chainRecord(node.url), [pull, approve]);
    expect(reversed.map((r) => r.status)).toEqual(["reverted", "success"]);
    expect(reversed[0]!.revertReason).toBe("ERC20: insufficient allowance");
  });

  it("without debug_traceCall: eth_call + eth_estimateGas; without eth_simulateV1 a bundle says why", async () => {
    const chain = chainRecord(proxyUrl, { name: "no-tracer" });
    const [ok] = await sim.simulate(chain, [{ from: from(), to: DEAD, value: 10n ** 15n }]);
    expect(ok).toMatchObject({ status: "success", gasUsed: 21000n });
    expect(ok!.balanceChanges.map((c) => c.address)).toEqual([getAddress(from()), getAddress(DEAD)]);
    expect(ok!.balanceChanges[1]!.change).toBe("0.001");
    const [rev] = await sim.simulate(chain, [{ from: from(), to: failures, value: 0n, data: data(Failures.abi, "failWithReason") }]);
    expect(rev).toMatchObject({ status: "reverted", revertReason: "Failures: not allowed" });
    const b = await sim.simulate(chain, [
      { from: from(), to: DEAD, value: 1n },
      { from: from(), to: DEAD, value: 1n },
    ]);
    expect(b.map((r) => r.status)).toEqual(["success", "error"]);
    expect(b[1]!.error).toMatch(/eth_simulateV1/);
  });

  it("an unreachable node is status error, not an exception", async () => {
    const [r] = await sim.simulate(chainRecord("http://127.0.0.1:9", { name: "down" }), [{ from: from(), to: DEAD, value: 1n }]);
    expect(r!.status).toBe("error");
    expect(r!.error).toMatch(/could not be reached|timed out/);
    expect(r!.error).not.toMatch(/127\.0\.0\.1/);
  });

  it("never changes the chain", async () => {
    const before = [await dev.pub.getBlockNumber(), await dev.pub.getTransactionCount({ address: from() })];
    await sim.simulate(chainRecord(node.url), [
      { from: from(), to: DEAD, value: 1n },
      { from: from(), to: token, value: 0n, data: data(TestToken.abi, "transfer", [RECIPIENT, 1n]) },
    ]);
    expect([await dev.pub.getBlockNumber(), await dev.pub.getTransactionCount({ address: from() })]).toEqual(before);
  });
});
