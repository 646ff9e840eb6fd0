// The testing kit (src/testing.ts, `intents-signer/testing`): the README shows the example file that runs
// in this folder; two kits started at once in one process share no port, folder, token or chain; a
// test that fails leaves, after stop(), no process and no folder; ERC-20 balances are set by probing
// the balance mapping's slot in the Solidity and the Vyper layout.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createPublicClient, createWalletClient, defineChain, http, parseEther, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { createRequire } from "node:module";
import { createAnvil } from "@viem/anvil";
import { verifyMessage } from "viem";
import { startSigner } from "intents-signer/testing";
import { createClient } from "../../../shared/vendor/1claw-sdk/dist/index.js";
import { freePort } from "../../src/db/embedded.js";
import { TestToken } from "../contracts/index.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const DEAD = "0x000000000000000000000000000000000000dEaD";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("README example", () => {
  it("the README's vitest example is test/testing/readme-example.test.ts, verbatim", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const block = /<!-- testing-kit-example -->\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    const file = fs.readFileSync(path.join(ROOT, "test/testing/readme-example.test.ts"), "utf8");
    expect(block).toBeDefined();
    // The file's first line says what it is; the README shows the rest.
    expect(block).toBe(file.slice(file.indexOf("\n") + 1));
  });
});

describe("two kits in one process", () => {
  it("start together and keep ports, folders, tokens and chains apart; stop() removes each", async () => {
    const [a, b] = await Promise.all([startSigner(), startSigner()]);
    try {
      expect(a.url).not.toBe(b.url);
      expect(a.dir).not.toBe(b.dir);
      expect(a.pid).not.toBe(b.pid);
      expect(a.chains[0]!.rpcUrl).not.toBe(b.chains[0]!.rpcUrl);
      expect(a.operatorKey).not.toBe(b.operatorKey);
      // Each service has its own SoftHSM token folder and configuration.
      const confA = fs.readFileSync(path.join(a.dir, "data/softhsm/softhsm2.conf"), "utf8");
      expect(confA).toContain(a.dir);
      expect(fs.readFileSync(path.join(b.dir, "data/softhsm/softhsm2.conf"), "utf8")).toContain(b.dir);
      // One kit's operator key means nothing to the other.
      await expect(b.request("GET", "/v1/agents", undefined, a.operatorKey)).rejects.toThrow(/401/);

      // Both sign and send at the same time, each on its own chain, each with its own key.
      const sends = await Promise.all(
        [a, b].map(async (kit) => {
          const agent = await kit.createAgent({ name: "parallel" });
          const key = await kit.createSigningKey({ chain: "local", agentId: agent.id, fund: parseEther("1") });
          const tx = await kit.request(
            "POST",
            `/v1/agents/${agent.id}/transactions`,
            { to: DEAD, value: "0.001", chain: "local" },
            agent.token,
          );
          const receipt = await createPublicClient({ transport: http(kit.chains[0]!.rpcUrl) }).waitForTransactionReceipt({
            hash: tx.tx_hash,
          });
          return { key, receipt };
        }),
      );
      for (const s of sends) expect(s.receipt.from).toBe(s.key.address.toLowerCase());
      expect(sends[0]!.key.address).not.toBe(sends[1]!.key.address);
      // Keys live in the token of the kit that made them.
      const keysB = await b.request<{ keys: Array<{ address: string }> }>("GET", "/v1/signing-keys");
      expect(keysB.keys.map((k) => k.address)).not.toContain(sends[0]!.key.address);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    for (const kit of [a, b]) {
      expect(alive(kit.pid)).toBe(false);
      expect(fs.existsSync(kit.dir)).toBe(false);
    }
  });
});

describe("stop() after a failing test", () => {
  it("leaves no process and no folder", async () => {
    const record = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "kit-record-")), "record.json");
    const run = await promisify(execFile)(
      process.execPath,
      [path.join(ROOT, "node_modules/vitest/vitest.mjs"), "run", "--root", ROOT, "--config", "test/testing/fixtures/vitest.config.ts"],
      { cwd: ROOT, env: { ...process.env, KIT_RECORD: record }, timeout: 180_000 },
    ).then(
      () => ({ code: 0, out: "" }),
      (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, out: err.stdout + err.stderr }),
    );
    // The inner test failed, on purpose, after the kit was up.
    expect(run.code).toBe(1);
    expect(run.out).toContain("this assertion fails on purpose");
    const seen = JSON.parse(fs.readFileSync(record, "utf8")) as { pid: number; pids: number[]; dir: string };
    fs.rmSync(path.dirname(record), { recursive: true, force: true });
    // The service, its PostgreSQL and its anvil were running while the test failed ...
    expect(seen.pids.length).toBeGreaterThanOrEqual(2);
    // ... and none of them, nor the kit's folder, is left.
    for (const pid of [seen.pid, ...seen.pids]) expect(alive(pid), `process ${pid}`).toBe(false);
    expect(fs.existsSync(seen.dir)).toBe(false);
  });
});

describe("funding helpers", () => {
  it("set native and ERC-20 balances (Solidity and Vyper mapping layouts) on the kit's chain", async () => {
    const kit = await startSigner();
    try {
      const rpcUrl = kit.chains[0]!.rpcUrl;
      const chain = createPublicClient({ transport: http(rpcUrl) });
      const deployer = privateKeyToAccount(generatePrivateKey());
      await kit.fund(deployer.address, parseEther("5"));
      expect(await chain.getBalance({ address: deployer.address })).toBe(parseEther("5"));

      const kitChain = defineChain({
        id: kit.chains[0]!.chainId,
        name: "kit",
        nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
        rpcUrls: { default: { http: [rpcUrl] } },
      });
      const wallet = createWalletClient({ account: deployer, chain: kitChain, transport: http(rpcUrl) });
      const hash = await wallet.deployContract({ abi: TestToken.abi, bytecode: TestToken.bytecode, args: ["Kit", "KIT"] });
      const token = (await chain.waitForTransactionReceipt({ hash })).contractAddress!;
      const holder = privateKeyToAccount(generatePrivateKey()).address;
      // TestToken: name 0, symbol 1, totalSupply 2, balanceOf 3.
      expect(await kit.fundToken(holder, token, 123_456n)).toEqual({ slot: 3, layout: "solidity" });
      const balanceOf = (t: Hex, who: Hex) =>
        chain.readContract({ address: t, abi: TestToken.abi, functionName: "balanceOf", args: [who] });
      expect(await balanceOf(token, holder)).toBe(123_456n);
      expect(await balanceOf(token, deployer.address)).toBe(0n); // the probe restored every slot it tried

      // A Vyper-layout token: balanceOf(a) = sload(keccak256(slot 5 . a)) (hand-written runtime code).
      const vyper = "0x00000000000000000000000000000000000000b5" as Hex;
      await chain.request({
        method: "anvil_setCode" as never,
        params: [vyper, "0x600560005260043560205260406000205460005260206000f3"] as never,
      });
      expect(await kit.fundToken(holder, vyper, 7n)).toEqual({ slot: 5, layout: "vyper" });
      expect(await balanceOf(vyper, holder)).toBe(7n);

      // Not a token: a clear error, after every probe was restored.
      await expect(kit.fundToken(holder, DEAD, 1n)).rejects.toThrow(/no balance mapping/);
    } finally {
      await kit.stop();
    }
    expect(fs.existsSync(kit.dir)).toBe(false);
  });
});

describe("a named chain keeps its id", () => {
  it("signs messages and OP-mainnet (id 10) transactions through the official SDK", async () => {
    const port = await freePort();
    const anvil = createAnvil({
      port,
      chainId: 10,
      anvilBinary: createRequire(import.meta.url).resolve("@foundry-rs/anvil-linux-amd64/bin/anvil"),
    });
    await anvil.start();
    const rpcUrl = `http://127.0.0.1:${port}`;
    const kit = await startSigner({ chains: [{ name: "optimism", chainId: 10, rpcUrl }] });
    try {
      const agent = await kit.createAgent({ tx_allowed_chains: ["optimism"] });
      const key = await kit.createSigningKey({ chain: "optimism", agentId: agent.id, fund: parseEther("1") });
      const sdk = createClient({ baseUrl: kit.url, apiKey: agent.apiKey, agentId: agent.id });
      const signed = await sdk.agents.sign(agent.id, {
        chain: "optimism",
        intent_type: "personal_sign",
        message: "gm from the kit",
      } as never);
      expect(signed.error).toBeNull();
      expect(
        await verifyMessage({ address: key.address, message: "gm from the kit", signature: (signed.data as { signature: Hex }).signature }),
      ).toBe(true);
      // Chains are named by id as well; the signed transaction carries chain id 10.
      const sent = await sdk.agents.submitTransaction(agent.id, { to: DEAD, value: "0.001", chain: "10" });
      expect(sent.error).toBeNull();
      const chain = createPublicClient({ transport: http(rpcUrl) });
      const receipt = await chain.waitForTransactionReceipt({ hash: sent.data!.tx_hash as Hex });
      expect(receipt.status).toBe("success");
      expect((await chain.getTransaction({ hash: receipt.transactionHash })).chainId).toBe(10);
      // The chain the agent may not use is refused, not silently mapped elsewhere.
      const other = await sdk.agents.submitTransaction(agent.id, { to: DEAD, value: "0.001", chain: "local" });
      expect(other.error).not.toBeNull();
    } finally {
      await kit.stop();
      await anvil.stop();
    }
  });
});
