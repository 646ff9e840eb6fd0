// Pure parts of simulation: revert-reason decoding, the choice of simulator per chain, the switches.
import { encodeAbiParameters, encodeErrorResult } from "viem";
import { describe, expect, it } from "vitest";
import { ChainClients } from "../../src/chains/clients.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { isLocalChain, SimulatorRegistry } from "../../src/simulators/index.js";
import { balanceChange, decodeRevertReason, erc20Transfers, TRANSFER_TOPIC } from "../../src/simulators/simulator.js";
import { chainRecord } from "./helpers.js";

describe("decodeRevertReason", () => {
  it("Error(string) gives the string", () => {
    const data = "0x08c379a0" + encodeAbiParameters([{ type: "string" }], ["too late"]).slice(2);
    expect(decodeRevertReason(data, "execution reverted")).toBe("too late");
  });
  it("Panic(uint256) gives the code and its meaning", () => {
    const panic = (code: number) => "0x4e487b71" + code.toString(16).padStart(64, "0");
    expect(decodeRevertReason(panic(0x12))).toBe("Panic(0x12): division or modulo by zero");
    expect(decodeRevertReason(panic(0x11))).toBe("Panic(0x11): arithmetic overflow or underflow");
    expect(decodeRevertReason(panic(0x01))).toBe("Panic(0x01): assertion failed");
    expect(decodeRevertReason(panic(0x99))).toBe("Panic(0x99): unknown panic code");
  });
  it("a custom error stays raw hex (selector + arguments)", () => {
    const abi = [{ type: "error", name: "Denied", inputs: [{ type: "uint256" }] }] as const;
    const data = encodeErrorResult({ abi, errorName: "Denied", args: [5n] });
    expect(decodeRevertReason(data)).toBe(data.toLowerCase());
  });
  it("no data: out of gas, a bare revert, or the tracer's text made safe", () => {
    expect(decodeRevertReason("0x", "out of gas: not enough gas for reentrancy sentry")).toBe("out of gas");
    expect(decodeRevertReason(undefined, "Out of gas: gas required exceeds allowance: 30000000")).toBe("out of gas");
    expect(decodeRevertReason("0x", "execution reverted")).toBe("execution reverted");
    expect(decodeRevertReason(undefined, undefined)).toBe("execution reverted");
    expect(decodeRevertReason(undefined, "invalid opcode at https://user:pw@rpc.example/key123")).not.toContain("pw@");
  });
  it("a malformed Error(string) falls back to the raw data", () => {
    const bad = "0x08c379a0" + "ff".repeat(64);
    expect(decodeRevertReason(bad)).toBe(bad);
  });
});

describe("balance changes and Transfer logs", () => {
  it("formats in major units with a signed change, checksummed addresses", () => {
    expect(
      balanceChange("0x000000000000000000000000000000000000dead", { token: "ETH", symbol: "ETH", decimals: 18 }, 10n ** 18n, 10n ** 17n),
    ).toEqual({
      address: "0x000000000000000000000000000000000000dEaD",
      token: "ETH",
      token_symbol: "ETH",
      before: "1",
      after: "0.1",
      change: "-0.9",
    });
    expect(
      balanceChange("0x000000000000000000000000000000000000dead", { token: "ETH", symbol: "ETH", decimals: 18 }, 5n, 5n),
    ).toBeUndefined();
  });
  it("reads ERC-20 Transfers and skips ERC-721 (four topics)", () => {
    const t = (a: string) => "0x" + a.slice(2).padStart(64, "0");
    const logs = [
      { address: "0xA0b86991c6218b36c1d19d4a2e9eb0ce3606eB48", topics: [TRANSFER_TOPIC, t("0x01"), t("0x02")], data: t("0x0f") },
      { address: "0xBC4CA0EdA7647A8aB7C2061c2E118A18a936f13D", topics: [TRANSFER_TOPIC, t("0x01"), t("0x02"), t("0x07")], data: "0x" },
    ];
    expect(erc20Transfers(logs)).toEqual([
      {
        token: "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
        from: "0x0000000000000000000000000000000000000001",
        to: "0x0000000000000000000000000000000000000002",
        amount: 15n,
      },
    ]);
  });
});

describe("simulator choice", () => {
  const log = createLogger("silent");
  const local = chainRecord("http://127.0.0.1:8545");
  const remote = chainRecord("https://ethereum-rpc.publicnode.com", { name: "ethereum", chain_id: 1 });
  const tenderly = { account: "a", project: "p", accessKey: "k", apiUrl: "https://api.tenderly.co" };
  const reg = (
    config: { simulator?: "anvil" | "tenderly" | "rpc"; tenderly?: typeof tenderly },
    perChain?: Record<string, "anvil" | "tenderly" | "rpc">,
  ) => new SimulatorRegistry({ config, clients: new ChainClients(), log, perChain });

  it("anvil by default; Tenderly, when configured, for chains it can see; SIMULATOR wins; perChain wins over all", () => {
    expect(reg({}).kindFor(remote)).toBe("anvil");
    expect(reg({ tenderly }).kindFor(remote)).toBe("tenderly");
    expect(reg({ tenderly }).kindFor(local)).toBe("anvil");
    expect(reg({ simulator: "rpc", tenderly }).kindFor(remote)).toBe("rpc");
    expect(reg({ simulator: "tenderly", tenderly }).kindFor(local)).toBe("tenderly");
    expect(reg({ simulator: "anvil" }, { ethereum: "rpc" }).kindFor(remote)).toBe("rpc");
    expect(reg({}).forChain(remote).kind).toBe("anvil");
    expect(reg({ tenderly }).forChain(remote).kind).toBe("tenderly");
  });

  it("knows a local chain by its RPC host", () => {
    expect(isLocalChain(local)).toBe(true);
    expect(isLocalChain(chainRecord("http://localhost:1"))).toBe(true);
    expect(isLocalChain(remote)).toBe(false);
    expect(isLocalChain(chainRecord("http://127.0.0.1:1", { rpc_urls: ["http://127.0.0.1:1", "https://x.example"] }))).toBe(false);
  });

  it("SIMULATE_ALL is a boolean switch, false by default; a bad value names the variable", () => {
    expect(loadConfig({}).simulateAll).toBe(false);
    expect(loadConfig({ SIMULATE_ALL: "true" }).simulateAll).toBe(true);
    expect(loadConfig({ SIMULATE_ALL: "0" }).simulateAll).toBe(false);
    try {
      loadConfig({ SIMULATE_ALL: "sometimes" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.join()).toMatch(/^SIMULATE_ALL: /);
    }
  });
});
