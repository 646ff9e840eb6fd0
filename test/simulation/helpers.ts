// Shared by the simulation tests: deploy the test contracts on a local anvil with its first dev
// account, and a Chain record for simulators used directly (without the service).
import { createPublicClient, createWalletClient, defineChain, http, type Abi, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { Chain } from "../../src/chains/registry.js";
import type { CompiledContract } from "../contracts/index.js";

/** anvil's first development key (public knowledge; test chains only). */
export const DEV_KEY: Hex = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

export function devClients(url: string) {
  const chain = defineChain({
    id: 31337,
    name: "local",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } },
  });
  const account = privateKeyToAccount(DEV_KEY);
  const pub = createPublicClient({ chain, transport: http(url) });
  const wallet = createWalletClient({ account, chain, transport: http(url) });
  return {
    pub,
    wallet,
    account,
    async deploy(c: CompiledContract, args: unknown[] = []): Promise<Address> {
      const hash = await wallet.deployContract({ abi: c.abi, bytecode: c.bytecode, args } as never);
      const r = await pub.waitForTransactionReceipt({ hash });
      if (!r.contractAddress) throw new Error("deploy failed");
      return r.contractAddress;
    },
    async send(to: Address, abi: Abi, functionName: string, args: unknown[] = []): Promise<void> {
      const hash = await wallet.writeContract({ address: to, abi, functionName, args } as never);
      const r = await pub.waitForTransactionReceipt({ hash });
      if (r.status !== "success") throw new Error(`${functionName} reverted`);
    },
    async setBalance(address: Address, wei: bigint): Promise<void> {
      await pub.request({ method: "anvil_setBalance" as never, params: [address, `0x${wei.toString(16)}`] as never });
    },
  };
}

export function chainRecord(url: string, over: Partial<Chain> = {}): Chain {
  return {
    id: "00000000-0000-4000-8000-000000000001",
    name: "local",
    display_name: "Local",
    chain_id: 31337,
    native_currency: "ETH",
    is_testnet: true,
    is_enabled: true,
    rpc_urls: [url],
    ws_url: null,
    explorer_url: null,
    eip1559: true,
    confirmations: 1,
    aliases: [],
    managed_by: "file",
    created_at: new Date(),
    updated_at: new Date(),
    ...over,
  };
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
