// SoftHSM sign rate: Pkcs11Signer.signTransaction calls per second, sequential and with concurrent
// callers. Usage: npx tsx bench/hsm-sign.ts [count=2000] [concurrency=4]
import fs from "node:fs";
import os from "node:os";
import { keccak256, toHex, type TransactionSerializable } from "viem";
import { ensureSoftHsmToken } from "../src/hsm/softhsm.js";
import { Pkcs11Signer } from "../src/signer/pkcs11.js";

const count = Number(process.argv[2] ?? 2000);
const concurrency = Number(process.argv[3] ?? 4);
const KEY = "bench/hot";

function tx(nonce: number): TransactionSerializable {
  return {
    chainId: 8453,
    nonce,
    to: "0x000000000000000000000000000000000000dEaD",
    value: BigInt(nonce),
    gas: 21_000n,
    maxFeePerGas: 2_000_000_000n,
    maxPriorityFeePerGas: 1_000_000n,
  };
}

async function timeIt(label: string, n: number, run: () => Promise<void>) {
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  const rate = (n / ms) * 1000;
  console.log(`${label.padEnd(44)} ${rate.toFixed(0).padStart(6)} /s  (${(ms / n).toFixed(3)} ms each, n=${n})`);
  return rate;
}

const dir = fs.mkdtempSync(os.tmpdir() + "/hsm-bench-");
try {
  const token = await ensureSoftHsmToken({ dir, label: "bench" });
  const signer = await Pkcs11Signer.open({ ...token, poolSize: Math.max(4, concurrency) });
  await signer.createKey(KEY);
  for (let i = 0; i < 200; i++) await signer.signTransaction(KEY, tx(i)); // warm-up (JIT, tables)

  const results: Record<string, number> = {};
  results.signDigestSequential = await timeIt("signDigest, sequential", count, async () => {
    for (let i = 0; i < count; i++) await signer.signDigest(KEY, keccak256(toHex(i)));
  });
  results.signTransactionSequential = await timeIt("signTransaction (eip1559), sequential", count, async () => {
    for (let i = 0; i < count; i++) await signer.signTransaction(KEY, tx(i));
  });
  results.signTransactionConcurrent = await timeIt(`signTransaction (eip1559), ${concurrency} concurrent callers`, count, async () => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) await signer.signTransaction(KEY, tx(next++));
      }),
    );
  });
  await signer.close();
  console.log(
    JSON.stringify({
      count,
      concurrency,
      cpus: os.cpus().length,
      ...Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(v)])),
    }),
  );
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
