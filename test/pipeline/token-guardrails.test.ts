// Calldata decoding and token guardrails are pure: boundaries are checked with property tests.
import fc from "fast-check";
import { encodeFunctionData, parseAbi } from "viem";
import { describe, expect, it } from "vitest";
import { decodeCall, MAX_UINT256 } from "../../src/pipeline/calldata.js";
import { checkCalldata, checkTokenOutflows, toBaseUnits, type CalldataPolicy } from "../../src/pipeline/token-guardrails.js";
import { formatMajor } from "../../src/units.js";

const ABI = parseAbi([
  "function transfer(address to, uint256 amount)",
  "function transferFrom(address from, address to, uint256 amount)",
  "function approve(address spender, uint256 amount)",
  "function increaseAllowance(address spender, uint256 addedValue)",
  "function setApprovalForAll(address operator, bool approved)",
  "function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes data)",
]);
const TOKEN = "0x" + "aa".repeat(20);
const ALICE = "0x" + "11".repeat(20);
const BOB = "0x" + "22".repeat(20);
const none: CalldataPolicy = { toAllowlist: [], tokenAllowlist: [], unknownCalldata: "allow", tokenLimits: {}, unlimitedApprovalAllowlist: [] };
const addr = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => ("0x" + Buffer.from(b).toString("hex")) as `0x${string}`);
const amount = fc.bigInt({ min: 0n, max: MAX_UINT256 });

describe("decodeCall", () => {
  it("decodes transfer, transferFrom, approve, increaseAllowance, setApprovalForAll and ERC-1155 transfers", () => {
    fc.assert(
      fc.property(addr, addr, amount, (a, b, n) => {
        expect(decodeCall(encodeFunctionData({ abi: ABI, functionName: "transfer", args: [a, n] }))).toMatchObject({ kind: "transfer", recipient: a, amount: n });
        expect(decodeCall(encodeFunctionData({ abi: ABI, functionName: "transferFrom", args: [a, b, n] }))).toMatchObject({ kind: "transfer", from: a, recipient: b, amount: n });
        expect(decodeCall(encodeFunctionData({ abi: ABI, functionName: "approve", args: [a, n] }))).toMatchObject({ kind: "approve", spender: a, amount: n });
        expect(decodeCall(encodeFunctionData({ abi: ABI, functionName: "increaseAllowance", args: [a, n] }))).toMatchObject({ kind: "approve", spender: a, amount: n, increase: true });
        expect(decodeCall(encodeFunctionData({ abi: ABI, functionName: "safeTransferFrom", args: [a, b, 1n, n, "0x"] }))).toMatchObject({ kind: "transfer", standard: "erc1155", recipient: b, amount: n });
      }),
      { numRuns: 300 },
    );
    expect(decodeCall(encodeFunctionData({ abi: ABI, functionName: "setApprovalForAll", args: [ALICE as `0x${string}`, true] }))).toMatchObject({ kind: "approve", amount: MAX_UINT256 });
    expect(decodeCall(undefined)).toEqual({ kind: "none" });
    expect(decodeCall("0xdeadbeef00")).toEqual({ kind: "unknown", selector: "0xdeadbeef" });
    // A known selector with truncated arguments is not trusted as that call.
    expect(decodeCall("0xa9059cbb" + "00".repeat(10)).kind).toBe("unknown");
  });
});

describe("token guardrails", () => {
  it("a token transfer to a recipient outside tx_to_allowlist is denied even though the token itself is allowed", () => {
    const policy = { ...none, toAllowlist: [TOKEN, ALICE] };
    const toBob = decodeCall(encodeFunctionData({ abi: ABI, functionName: "transfer", args: [BOB as `0x${string}`, 10n ** 12n] }));
    expect((checkCalldata(policy, TOKEN, toBob, 6) as { reason_code: string }).reason_code).toBe("token_recipient_not_allowlisted");
    const toAlice = decodeCall(encodeFunctionData({ abi: ABI, functionName: "transfer", args: [ALICE as `0x${string}`, 10n ** 12n] }));
    expect(checkCalldata(policy, TOKEN, toAlice, 6)).toBeNull();
  });

  it("per-transaction token limit: passes exactly when amount ≤ limit (any decimals)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 24 }), fc.bigInt({ min: 0n, max: 10n ** 30n }), fc.bigInt({ min: -2n, max: 2n }), (decimals, limitBase, delta) => {
        // A limit expressible in the token's units (at most 18 decimals of configuration).
        const limitStr = formatMajor(limitBase, Math.min(decimals, 18));
        const limit = toBaseUnits(limitStr, decimals)!;
        const n = limit + delta < 0n ? 0n : limit + delta;
        const policy = { ...none, tokenLimits: { [TOKEN]: { max_per_tx: limitStr } } };
        const call = decodeCall(encodeFunctionData({ abi: ABI, functionName: "transfer", args: [ALICE as `0x${string}`, n] }));
        expect(checkCalldata(policy, TOKEN, call, decimals) === null).toBe(n <= limit);
      }),
      { numRuns: 1500 },
    );
  });

  it("rolling token limit: passes exactly when spent + amount ≤ daily limit", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 24n }), fc.bigInt({ min: 0n, max: 10n ** 24n }), fc.bigInt({ min: -2n, max: 2n }), (limit, spent, delta) => {
        const n = limit - spent + delta < 0n ? 0n : limit - spent + delta;
        const policy = { ...none, tokenLimits: { [TOKEN]: { daily_limit: formatMajor(limit, 6) } } };
        const d = checkTokenOutflows(policy, [{ token: TOKEN, amount: n, decimals: 6 }], () => spent);
        expect(d === null).toBe(spent + n <= limit);
      }),
      { numRuns: 1500 },
    );
  });

  it("unlimited approvals are denied unless the spender is allowed; bounded approvals within the cap pass", () => {
    const policy = { ...none, tokenLimits: { [TOKEN]: { approval_cap: "1000" } } };
    const approve = (n: bigint, spender = ALICE) => decodeCall(encodeFunctionData({ abi: ABI, functionName: "approve", args: [spender as `0x${string}`, n] }));
    expect((checkCalldata(policy, TOKEN, approve(MAX_UINT256), 6) as { reason_code: string }).reason_code).toBe("unlimited_approval");
    expect((checkCalldata(none, TOKEN, approve(MAX_UINT256), 6) as { reason_code: string }).reason_code).toBe("unlimited_approval");
    expect(checkCalldata(policy, TOKEN, approve(1000n * 10n ** 6n), 6)).toBeNull();
    expect((checkCalldata(policy, TOKEN, approve(1000n * 10n ** 6n + 1n), 6) as { reason_code: string }).reason_code).toBe("approval_cap_exceeded");
    expect(checkCalldata({ ...policy, unlimitedApprovalAllowlist: [ALICE] }, TOKEN, approve(MAX_UINT256), 6)).toBeNull();
    expect(checkCalldata(policy, TOKEN, approve(0n), 6)).toBeNull();
  });

  it("unknown calldata follows the agent's policy", () => {
    const call = decodeCall("0x12345678");
    expect(checkCalldata(none, TOKEN, call, undefined)).toBeNull();
    expect(checkCalldata({ ...none, unknownCalldata: "simulate" }, TOKEN, call, undefined)).toBe("simulate");
    expect((checkCalldata({ ...none, unknownCalldata: "deny" }, TOKEN, call, undefined) as { reason_code: string }).reason_code).toBe("unknown_calldata");
  });
});
