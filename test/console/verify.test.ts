// The console's in-browser checks (src/console/static: keccak256, RLP, secp256k1 recovery, signed
// transaction reading, calldata decoding) against viem, over random inputs and transactions of every
// type the service signs (legacy with and without EIP-155, 1, 2, 4), and on tampered bytes.
import fc from "fast-check";
import { encodeFunctionData, erc20Abi, keccak256 as viemKeccak, parseTransaction, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
// @ts-expect-error plain ES module shipped to the browser, no types
import { hexToBytes, keccak256 } from "../../src/console/static/keccak.js";
// @ts-expect-error plain ES module shipped to the browser, no types
import { decodeCalldata, inspectSignedTx } from "../../src/console/static/txverify.js";
// @ts-expect-error plain ES module shipped to the browser, no types
import { parsePrometheus } from "../../src/console/static/charts.js";

const addr = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => toHex(b));
const key = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .filter((b) => b.some((x) => x !== 0))
  .map((b) => toHex(b));

describe("console verification code", () => {
  it("keccak256 equals viem's for any input, across the 136-byte block boundary", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), (b) => {
        expect(keccak256(b)).toBe(viemKeccak(b));
      }),
      { numRuns: 300 },
    );
  });

  it("reads a signed transaction of any type: hash, signer, to, value and data as viem signed them", async () => {
    await fc.assert(
      fc.asyncProperty(
        key,
        fc.constantFrom("legacy", "legacy-pre155", "eip2930", "eip1559", "eip7702"),
        addr,
        fc.bigInt({ min: 0n, max: 10n ** 24n }),
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: 1, max: 2 ** 31 }),
        async (pk, type, to, value, data, chainId) => {
          const account = privateKeyToAccount(pk as Hex);
          const common = { to: to as Hex, value, data: toHex(data), nonce: 7, gas: 100_000n };
          let tx: Record<string, unknown>;
          if (type === "legacy") tx = { ...common, type: "legacy", gasPrice: 10n ** 9n, chainId };
          else if (type === "legacy-pre155") tx = { ...common, type: "legacy", gasPrice: 10n ** 9n };
          else if (type === "eip2930")
            tx = { ...common, type: "eip2930", gasPrice: 10n ** 9n, chainId, accessList: [{ address: to as Hex, storageKeys: [] }] };
          else if (type === "eip1559")
            tx = { ...common, type: "eip1559", maxFeePerGas: 3n * 10n ** 9n, maxPriorityFeePerGas: 10n ** 9n, chainId };
          else {
            const authorization = await account.signAuthorization({ address: to as Hex, chainId, nonce: 8 });
            tx = {
              ...common,
              type: "eip7702",
              maxFeePerGas: 3n * 10n ** 9n,
              maxPriorityFeePerGas: 10n ** 9n,
              chainId,
              authorizationList: [authorization],
            };
          }
          const signed = await account.signTransaction(tx as never);
          const got = inspectSignedTx(signed);
          expect(got.hash).toBe(viemKeccak(signed));
          expect(got.signer).toBe(account.address.toLowerCase());
          expect(got.to).toBe(to);
          expect(got.value).toBe(value);
          expect(got.data).toBe(toHex(data));
          expect(got.type).toBe({ legacy: 0, "legacy-pre155": 0, eip2930: 1, eip1559: 2, eip7702: 4 }[type]);
          // One flipped bit in the signed fields: the signer recovered is not the account any more.
          const parsed = parseTransaction(signed);
          expect(parsed.to?.toLowerCase()).toBe(to);
          const b = hexToBytes(signed);
          const at = b.length - 70; // inside the fields, before r and s
          b[at] ^= 0x01;
          let tampered: string | null = null;
          try {
            tampered = inspectSignedTx(toHex(b)).signer;
          } catch {
            tampered = null; // no longer decodes: also not verified
          }
          expect(tampered).not.toBe(account.address.toLowerCase());
        },
      ),
      { numRuns: 40 },
    );
  });

  it("decodes ERC-20 calls and leaves unknown calldata as raw words", () => {
    fc.assert(
      fc.property(addr, fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }), (to, amount) => {
        const d = decodeCalldata(encodeFunctionData({ abi: erc20Abi, functionName: "transfer", args: [to as Hex, amount] }));
        expect(d).toEqual({
          kind: "call",
          selector: "0xa9059cbb",
          name: "transfer",
          args: [
            { name: "to", type: "address", value: to },
            { name: "amount", type: "uint256", value: amount.toString() },
          ],
        });
        const a = decodeCalldata(encodeFunctionData({ abi: erc20Abi, functionName: "approve", args: [to as Hex, amount] }));
        expect(a.name).toBe("approve");
      }),
    );
    expect(decodeCalldata("0x")).toEqual({ kind: "none" });
    expect(decodeCalldata("0xdeadbeef" + "00".repeat(32))).toEqual({
      kind: "raw",
      selector: "0xdeadbeef",
      words: ["0x" + "00".repeat(32)],
    });
    // A known selector with trailing bytes is not shown as that call.
    expect(decodeCalldata("0xa9059cbb" + "00".repeat(65)).kind).toBe("raw");
  });

  it("parses the service's Prometheus text", () => {
    const s = parsePrometheus(
      '# HELP x y\n# TYPE x counter\nintents_guardrail_denials_total{rule="max_value_exceeded"} 3\nintents_submit_stage_duration_seconds_sum{stage="sign"} 0.25\nup 1\n',
    );
    expect(s).toEqual([
      { name: "intents_guardrail_denials_total", labels: { rule: "max_value_exceeded" }, value: 3 },
      { name: "intents_submit_stage_duration_seconds_sum", labels: { stage: "sign" }, value: 0.25 },
      { name: "up", labels: {}, value: 1 },
    ]);
  });
});
