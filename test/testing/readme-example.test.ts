// The testing kit's README example, verbatim (kit.test.ts checks that the README shows this file).
import { createRequire } from "node:module";
import net from "node:net";
import { createAnvil } from "@viem/anvil";
import { createPublicClient, http, parseEther } from "viem";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startSigner, type Signer } from "intents-signer/testing";
import { createClient } from "../../../shared/vendor/1claw-sdk/dist/index.js";

// Your fork of a real chain, e.g. Base: createAnvil({ forkUrl: process.env.BASE_RPC_URL, chainId: 8453 }).
// (No public RPC is reachable where this file runs, so a fresh anvil with Base's chain id stands in.)
const port = await new Promise<number>((resolve) => {
  const srv = net.createServer().listen(0, "127.0.0.1", () => {
    const { port } = srv.address() as net.AddressInfo;
    srv.close(() => resolve(port));
  });
});
const anvil = createAnvil({
  port,
  chainId: 8453,
  // With Foundry installed, "anvil" is enough; here the npm package's binary is used.
  anvilBinary: createRequire(import.meta.url).resolve("@foundry-rs/anvil-linux-amd64/bin/anvil"),
});
const rpcUrl = `http://127.0.0.1:${port}`;
let signer: Signer;

beforeAll(async () => {
  await anvil.start();
  signer = await startSigner({ chains: [{ name: "base", chainId: 8453, rpcUrl }] });
});
afterAll(async () => {
  await signer?.stop();
  await anvil.stop();
});

it("an agent pays 0.01 ETH on the fork through the official SDK", async () => {
  // An agent with guardrails, and its own signing key on the fork, funded with 1 ETH.
  const agent = await signer.createAgent({ name: "payer", tx_max_value: "0.05", tx_allowed_chains: ["base"] });
  const key = await signer.createSigningKey({ chain: "base", agentId: agent.id, fund: parseEther("1") });

  const sdk = createClient({ baseUrl: signer.url, apiKey: agent.apiKey, agentId: agent.id });
  const to = "0x000000000000000000000000000000000000dEaD";
  const res = await sdk.agents.submitTransaction(agent.id, { to, value: "0.01", chain: "base" });
  expect(res.error).toBeNull();

  const chain = createPublicClient({ transport: http(rpcUrl) });
  const receipt = await chain.waitForTransactionReceipt({ hash: res.data!.tx_hash as `0x${string}` });
  expect(receipt.status).toBe("success");
  expect(receipt.from).toBe(key.address.toLowerCase()); // signed in the HSM with the agent's key
  expect(await chain.getBalance({ address: to })).toBe(parseEther("0.01"));

  // A transfer above the agent's tx_max_value is refused and nothing is sent.
  const refused = await sdk.agents.submitTransaction(agent.id, { to, value: "0.5", chain: "base" });
  expect(refused.meta?.status).toBe(403);
});
