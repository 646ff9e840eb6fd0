// End to end: transactions signed inside SoftHSM are accepted and mined by a real node (anvil).
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  parseEther,
  parseGwei,
  toHex,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureSoftHsmToken } from "../../src/hsm/softhsm.js";
import { hsmAccount } from "../../src/signer/account.js";
import { Pkcs11Signer } from "../../src/signer/pkcs11.js";
import type { SigningKeyInfo } from "../../src/signer/signer.js";

const CHAIN_ID = 31337;
const RECIPIENT: Address = "0x000000000000000000000000000000000000bEEF";

/** Spawns anvil on an OS-chosen port and resolves once it prints its "Listening on" line. */
async function startAnvilProcess(): Promise<{ url: string; proc: ChildProcess }> {
  const bin = process.env.ANVIL_BIN ?? createRequire(import.meta.url).resolve("@foundry-rs/anvil-linux-amd64/bin/anvil");
  const proc = spawn(bin, ["--port", "0", "--host", "127.0.0.1", "--chain-id", String(CHAIN_ID)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`anvil did not start in 30 s:\n${out}`)), 30_000);
    proc.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /Listening on (127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(`http://${m[1]}`);
      }
    });
    proc.stderr!.on("data", (chunk: Buffer) => (out += chunk.toString()));
    proc.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`anvil exited with ${code}:\n${out}`));
    });
  });
  proc.stdout!.resume(); // keep draining so anvil never blocks on a full pipe
  return { url, proc };
}

let dir: string;
let anvil: { url: string; proc: ChildProcess } | undefined;
let signer: Pkcs11Signer;
let key: SigningKeyInfo;
let client: PublicClient;

beforeAll(async () => {
  dir = fs.mkdtempSync(os.tmpdir() + "/hsm-");
  const token = await ensureSoftHsmToken({ dir, label: "anvil-test" });
  signer = await Pkcs11Signer.open(token);
  key = await signer.createKey("anvil/hot");
  anvil = await startAnvilProcess();
  client = createPublicClient({ transport: http(anvil.url) });
  await client.request({ method: "anvil_setBalance" as never, params: [key.address, toHex(parseEther("100"))] as never });
});

afterAll(async () => {
  await signer?.close();
  if (anvil && anvil.proc.exitCode === null) {
    const exited = new Promise((resolve) => anvil!.proc.once("exit", resolve));
    anvil.proc.kill("SIGTERM");
    await exited;
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function sendRaw(raw: Hex) {
  const hash = await client.request({ method: "eth_sendRawTransaction", params: [raw] });
  return client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
}

describe("HSM-signed transactions on anvil", () => {
  it("funded the HSM address", async () => {
    expect(await client.getBalance({ address: key.address })).toBe(parseEther("100"));
  });

  it("type 0 (legacy, EIP-155), type 1 and type 2 raw transactions are mined with status success", async () => {
    const gasPrice = await client.getGasPrice();
    const block = await client.getBlock();
    const maxFeePerGas = block.baseFeePerGas! * 2n + parseGwei("1");
    const before = await client.getBalance({ address: RECIPIENT });
    let nonce = await client.getTransactionCount({ address: key.address });

    const legacy = await signer.signTransaction("anvil/hot", {
      type: "legacy",
      chainId: CHAIN_ID,
      nonce: nonce++,
      to: RECIPIENT,
      value: 1n,
      gas: 21_000n,
      gasPrice,
    });
    const r0 = await sendRaw(legacy);
    expect(r0.status).toBe("success");
    expect(r0.type).toBe("legacy");
    expect(r0.from).toBe(key.address.toLowerCase());

    const eip2930 = await signer.signTransaction("anvil/hot", {
      type: "eip2930",
      chainId: CHAIN_ID,
      nonce: nonce++,
      to: RECIPIENT,
      value: 2n,
      gas: 30_000n,
      gasPrice,
      accessList: [{ address: RECIPIENT, storageKeys: [] }],
    });
    const r1 = await sendRaw(eip2930);
    expect(r1.status).toBe("success");
    expect(r1.type).toBe("eip2930");

    const eip1559 = await signer.signTransaction("anvil/hot", {
      type: "eip1559",
      chainId: CHAIN_ID,
      nonce: nonce++,
      to: RECIPIENT,
      value: 3n,
      gas: 21_000n,
      maxFeePerGas,
      maxPriorityFeePerGas: parseGwei("1"),
    });
    const r2 = await sendRaw(eip1559);
    expect(r2.status).toBe("success");
    expect(r2.type).toBe("eip1559");

    expect(await client.getBalance({ address: RECIPIENT })).toBe(before + 6n);
  });

  it("many HSM-signed type 2 transactions in a row (both yParity values) are all accepted", async () => {
    let nonce = await client.getTransactionCount({ address: key.address });
    const block = await client.getBlock();
    const parities = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const raw = await signer.signTransaction("anvil/hot", {
        chainId: CHAIN_ID,
        nonce: nonce++,
        to: RECIPIENT,
        value: BigInt(i),
        gas: 21_000n,
        maxFeePerGas: block.baseFeePerGas! * 2n + 1n,
        maxPriorityFeePerGas: 1n,
      });
      const receipt = await sendRaw(raw);
      expect(receipt.status).toBe("success");
      const tx = await client.getTransaction({ hash: receipt.transactionHash });
      parities.add(tx.yParity!);
    }
    expect(parities.size).toBe(2); // P(all 20 equal) ≈ 2e-6
  });

  it("walletClient.sendTransaction with the viem account adapter", async () => {
    const chain = defineChain({
      id: CHAIN_ID,
      name: "anvil",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [anvil!.url] } },
    });
    const account = hsmAccount(signer, key);
    const wallet = createWalletClient({ account, chain, transport: http(anvil!.url) });
    const before = await client.getBalance({ address: RECIPIENT });

    const hash = await wallet.sendTransaction({ to: RECIPIENT, value: 1000n });
    const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    expect(receipt.status).toBe("success");
    expect(receipt.from).toBe(key.address.toLowerCase());

    const legacyHash = await wallet.sendTransaction({ to: RECIPIENT, value: 1n, type: "legacy" });
    expect((await client.waitForTransactionReceipt({ hash: legacyHash, pollingInterval: 50 })).status).toBe("success");

    expect(await client.getBalance({ address: RECIPIENT })).toBe(before + 1001n);
  });
});
