// Calldata decoding and token guardrails are pure: boundaries are checked with property tests.
import fc from "fast-check";
import { toEventSelector, type Hex } from "viem";
import { describe, expect, it } from "vitest";
import { decodeCall, PERMIT2, type DecodedCall } from "../../src/pipeline/calldata.js";
import { MAX_UINT256 } from "../../src/units.js";
import {
  checkCalldata,
  checkSimulatedLogs,
  checkTokenOutflows,
  toBaseUnits,
  UNLIMITED_APPROVAL,
  unknownCalldataOf,
  type CalldataFacts,
  type CalldataPolicy,
} from "../../src/pipeline/token-guardrails.js";
import { formatMajor } from "../../src/units.js";
import { encodeCall, PERMIT2_CALLS, TOKEN_CALLS } from "../helpers/token-calls.js";

const TOKEN = "0x" + "aa".repeat(20);
const ALICE = ("0x" + "11".repeat(20)) as `0x${string}`;
const BOB = ("0x" + "22".repeat(20)) as `0x${string}`;
const SELF = ("0x" + "33".repeat(20)) as `0x${string}`;
const none: CalldataPolicy = {
  toAllowlist: [],
  tokenAllowlist: [],
  unknownCalldata: "allow",
  tokenLimits: {},
  unlimitedApprovalAllowlist: [],
};
const facts = (decimals?: number, allowance = 0n): CalldataFacts => ({ decimals: () => decimals, allowance: () => allowance });
const addr = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => ("0x" + Buffer.from(b).toString("hex")) as `0x${string}`);
const amount = fc.bigInt({ min: 0n, max: MAX_UINT256 });
const bytes = fc.uint8Array({ maxLength: 80 }).map((b) => ("0x" + Buffer.from(b).toString("hex")) as Hex);
const enc = (functionName: string, args: unknown[], abi: typeof TOKEN_CALLS | typeof PERMIT2_CALLS = TOKEN_CALLS) =>
  encodeCall(abi, functionName, args);
const code = (d: unknown) => (d as { reason_code: string } | null)?.reason_code ?? null;
const effects = (c: DecodedCall) => (c.kind === "token" ? c.effects : []);

/** Canonical calls of every family the decoder knows, with what a guardrail must see in them. */
const families = fc.tuple(addr, addr, amount, bytes, fc.bigInt({ min: 0n, max: (1n << 160n) - 1n })).chain(([a, b, n, data, n160]) =>
  fc.constantFrom(
    { to: TOKEN, data: enc("transfer", [a, n]), effect: { type: "transfer", recipient: a, amount: n } },
    { to: TOKEN, data: enc("transferFrom", [a, b, n]), effect: { type: "transfer", from: a, recipient: b, amount: n } },
    { to: TOKEN, data: enc("transferAndCall", [a, n]), effect: { type: "transfer", recipient: a, amount: n } },
    { to: TOKEN, data: enc("transferAndCall", [a, n, data]), effect: { type: "transfer", recipient: a, amount: n } },
    { to: TOKEN, data: enc("transferFromAndCall", [a, b, n, data]), effect: { type: "transfer", from: a, recipient: b, amount: n } },
    { to: TOKEN, data: enc("send", [a, n, data]), effect: { type: "transfer", recipient: a, amount: n } },
    { to: TOKEN, data: enc("operatorSend", [a, b, n, data, "0x"]), effect: { type: "transfer", from: a, recipient: b, amount: n } },
    { to: TOKEN, data: enc("safeTransferFrom", [a, b, 1n, n, data]), effect: { type: "transfer", from: a, recipient: b, amount: n } },
    { to: TOKEN, data: enc("approve", [a, n]), effect: { type: "approve", spender: a, amount: n, mode: "set" } },
    { to: TOKEN, data: enc("approveAndCall", [a, n, data]), effect: { type: "approve", spender: a, amount: n, mode: "set" } },
    { to: TOKEN, data: enc("increaseAllowance", [a, n]), effect: { type: "approve", spender: a, amount: n, mode: "increase" } },
    { to: TOKEN, data: enc("increaseApproval", [a, n]), effect: { type: "approve", spender: a, amount: n, mode: "increase" } },
    { to: TOKEN, data: enc("decreaseAllowance", [a, n]), effect: { type: "approve", spender: a, amount: n, mode: "decrease" } },
    {
      to: TOKEN,
      data: enc("setApprovalForAll", [a, true]),
      effect: { type: "approve", spender: a, amount: MAX_UINT256, mode: "operator" },
    },
    { to: TOKEN, data: enc("authorizeOperator", [a]), effect: { type: "approve", spender: a, amount: MAX_UINT256, mode: "operator" } },
    { to: TOKEN, data: enc("revokeOperator", [a]), effect: { type: "approve", spender: a, amount: 0n, mode: "set" } },
    {
      to: TOKEN,
      data: enc("permit", [a, b, n, 1n, 27, "0x" + "01".repeat(32), "0x" + "02".repeat(32)]),
      effect: { type: "approve", owner: a, spender: b, amount: n, mode: "set" },
    },
    {
      to: PERMIT2,
      data: enc("approve", [a, b, n160, 5], PERMIT2_CALLS),
      effect: { type: "approve", token: a, spender: b, amount: n160, mode: "set" },
    },
    {
      to: PERMIT2,
      data: enc(
        "permit",
        [SELF, { details: { token: a, amount: n160, expiration: 1, nonce: 0 }, spender: b, sigDeadline: 9n }, data],
        PERMIT2_CALLS,
      ),
      effect: { type: "approve", token: a, spender: b, amount: n160, mode: "set" },
    },
    {
      to: PERMIT2,
      data: enc(
        "permit",
        [SELF, { details: [{ token: a, amount: n160, expiration: 1, nonce: 0 }], spender: b, sigDeadline: 9n }, data],
        PERMIT2_CALLS,
      ),
      effect: { type: "approve", token: a, spender: b, amount: n160, mode: "set" },
    },
    {
      to: PERMIT2,
      data: enc("transferFrom", [SELF, b, n160, a], PERMIT2_CALLS),
      effect: { type: "transfer", token: a, from: SELF, recipient: b, amount: n160 },
    },
    {
      to: PERMIT2,
      data: enc("transferFrom", [[{ from: SELF, to: b, amount: n160, token: a }]], PERMIT2_CALLS),
      effect: { type: "transfer", token: a, from: SELF, recipient: b, amount: n160 },
    },
  ),
);

describe("decodeCall", () => {
  it("decodes every known family (ERC-20/677/1363/777/721/1155, permit, Permit2) to the effect a guardrail must see", () => {
    fc.assert(
      fc.property(families, ({ to, data, effect }) => {
        const c = decodeCall(to, data);
        expect(c.kind).toBe("token");
        const e = effects(c)[0]!;
        const want = { token: TOKEN, ...effect } as Record<string, unknown>;
        for (const [k, v] of Object.entries(want))
          expect((e as Record<string, unknown>)[k], k).toEqual(typeof v === "string" ? v.toLowerCase() : v);
      }),
      { numRuns: 600 },
    );
    expect(decodeCall(TOKEN, undefined)).toEqual({ kind: "none" });
    expect(decodeCall(TOKEN, "0xdeadbeef00")).toEqual({ kind: "unknown", selector: "0xdeadbeef" });
    // Permit2's selectors mean nothing on another contract, and ERC-20's nothing on Permit2.
    expect(decodeCall(TOKEN, enc("approve", [ALICE, BOB, 1n, 1], PERMIT2_CALLS)).kind).toBe("unknown");
    expect(decodeCall(PERMIT2, enc("transfer", [ALICE, 1n])).kind).toBe("unknown");
  });

  it("random calldata after a known selector never throws: it is unknown, malformed or a decoded token call", () => {
    const selectors = [
      "0xa9059cbb",
      "0x23b872dd",
      "0x095ea7b3",
      "0xa22cb465",
      "0x4000aea0",
      "0x9bd9bbc6",
      "0x62ad1b83",
      "0x2a2d80d1",
      "0x2b67b570",
      "0x0d58b1db",
      "0xd505accf",
    ];
    fc.assert(
      fc.property(fc.constantFrom(...selectors, "0x12345678"), fc.uint8Array({ maxLength: 400 }), fc.boolean(), (sel, body, p2) => {
        const data = sel + Buffer.from(body).toString("hex");
        const c = decodeCall(p2 ? PERMIT2 : TOKEN, data);
        expect(["unknown", "malformed", "token"]).toContain(c.kind);
      }),
      { numRuns: 3000 },
    );
  });

  it("non-canonical encodings of known calls are malformed: high address bits, bools other than 0/1, wide integers, trailing bytes", () => {
    fc.assert(
      fc.property(
        families,
        fc.integer({ min: 1, max: 255 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        ({ to, data }, junk, tail) => {
          // Trailing garbage, whole words or not.
          const long = decodeCall(to, data + Buffer.from(tail).toString("hex"));
          expect(long.kind).toBe("malformed");
          // A byte in the zero padding of the first argument's word (every family starts with an address).
          const dirty = decodeCall(to, data.slice(0, 10) + junk.toString(16).padStart(2, "0") + data.slice(12));
          expect(dirty.kind).toBe("malformed");
          // Denied whatever the policy, even one that allows anything it cannot decode.
          for (const unknownCalldata of ["allow", "simulate"] as const) {
            expect(code(checkCalldata({ ...none, unknownCalldata }, long, facts()))).toBe("malformed_calldata");
            expect(code(checkCalldata({ ...none, unknownCalldata }, dirty, facts()))).toBe("malformed_calldata");
          }
        },
      ),
      { numRuns: 600 },
    );
    fc.assert(
      fc.property(addr, fc.integer({ min: 2, max: 255 }), (a, b) => {
        const data = enc("setApprovalForAll", [a, true]);
        expect(decodeCall(TOKEN, data.slice(0, -2) + b.toString(16).padStart(2, "0"))).toMatchObject({
          kind: "malformed",
          fn: "setApprovalForAll",
        });
      }),
    );
    // uint160 with bit 160 set in Permit2's approve.
    const p2 = enc("approve", [ALICE, BOB, 1n, 1], PERMIT2_CALLS);
    const word = 10 + 64 * 2;
    expect(decodeCall(PERMIT2, p2.slice(0, word + 23) + "1" + p2.slice(word + 24)).kind).toBe("malformed");
  });
});

describe("token guardrails", () => {
  it("malformed calldata is denied whatever the unknown-calldata policy", () => {
    const c = decodeCall(TOKEN, enc("setApprovalForAll", [ALICE, true]).slice(0, -2) + "02");
    for (const unknownCalldata of ["allow", "simulate", "deny"] as const)
      expect(code(checkCalldata({ ...none, unknownCalldata }, c, facts()))).toBe("malformed_calldata");
  });

  it("every family is held to the recipient and spender allowlist", () => {
    fc.assert(
      fc.property(families, ({ data, to }) => {
        const c = decodeCall(to, data);
        const e = effects(c)[0]!;
        const party = e.type === "transfer" ? e.recipient : e.spender;
        const giving = e.type === "transfer" || (e.amount > 0n && e.mode !== "decrease");
        const d = checkCalldata({ ...none, toAllowlist: ["0x" + "99".repeat(20)], unlimitedApprovalAllowlist: [party] }, c, facts());
        expect(d === null).toBe(!giving);
        expect(checkCalldata({ ...none, toAllowlist: [party], unlimitedApprovalAllowlist: [party] }, c, facts())).toBeNull();
      }),
      { numRuns: 600 },
    );
  });

  it("a token transfer to a recipient outside tx_to_allowlist is denied even though the token itself is allowed", () => {
    const policy = { ...none, toAllowlist: [TOKEN, ALICE] };
    expect(code(checkCalldata(policy, decodeCall(TOKEN, enc("transfer", [BOB, 10n ** 12n])), facts(6)))).toBe(
      "token_recipient_not_allowlisted",
    );
    expect(checkCalldata(policy, decodeCall(TOKEN, enc("transfer", [ALICE, 10n ** 12n])), facts(6))).toBeNull();
  });

  it("per-transaction token limit: passes exactly when amount ≤ limit (any decimals)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 24 }),
        fc.bigInt({ min: 0n, max: 10n ** 30n }),
        fc.bigInt({ min: -2n, max: 2n }),
        (decimals, limitBase, delta) => {
          // A limit expressible in the token's units (at most 18 decimals of configuration).
          const limitStr = formatMajor(limitBase, Math.min(decimals, 18));
          const limit = toBaseUnits(limitStr, decimals)!;
          const n = limit + delta < 0n ? 0n : limit + delta;
          const policy = { ...none, tokenLimits: { [TOKEN]: { max_per_tx: limitStr } } };
          expect(checkCalldata(policy, decodeCall(TOKEN, enc("transfer", [ALICE, n])), facts(decimals)) === null).toBe(n <= limit);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("rolling token limit: passes exactly when spent + amount ≤ daily limit", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 24n }),
        fc.bigInt({ min: 0n, max: 10n ** 24n }),
        fc.bigInt({ min: -2n, max: 2n }),
        (limit, spent, delta) => {
          const n = limit - spent + delta < 0n ? 0n : limit - spent + delta;
          const policy = { ...none, tokenLimits: { [TOKEN]: { daily_limit: formatMajor(limit, 6) } } };
          const d = checkTokenOutflows(policy, [{ token: TOKEN, amount: n, decimals: 6 }], () => spent);
          expect(d === null).toBe(spent + n <= limit);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("unlimited approvals are denied unless the spender is allowed; bounded approvals within the cap pass", () => {
    const policy = { ...none, tokenLimits: { [TOKEN]: { approval_cap: "1000" } } };
    const approve = (n: bigint, spender = ALICE) => decodeCall(TOKEN, enc("approve", [spender, n]));
    expect(code(checkCalldata(policy, approve(MAX_UINT256), facts(6)))).toBe("unlimited_approval");
    expect(code(checkCalldata(none, approve(MAX_UINT256), facts(6)))).toBe("unlimited_approval");
    // 2^255−1 is as unlimited as 2^256−1, and so is anything above 2^128 when there is no cap.
    expect(code(checkCalldata(none, approve((1n << 255n) - 1n), facts(6)))).toBe("unlimited_approval");
    expect(code(checkCalldata(none, approve(UNLIMITED_APPROVAL + 1n), facts(6)))).toBe("unlimited_approval");
    expect(checkCalldata(none, approve(UNLIMITED_APPROVAL), facts(6))).toBeNull();
    expect(checkCalldata(policy, approve(1000n * 10n ** 6n), facts(6))).toBeNull();
    expect(code(checkCalldata(policy, approve(1000n * 10n ** 6n + 1n), facts(6)))).toBe("approval_cap_exceeded");
    expect(checkCalldata({ ...policy, unlimitedApprovalAllowlist: [ALICE] }, approve(MAX_UINT256), facts(6))).toBeNull();
    expect(checkCalldata(policy, approve(0n), facts(6))).toBeNull();
  });

  it("an allowance increase is checked with the current allowance added: passes exactly when current + added ≤ cap", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 30n }),
        fc.bigInt({ min: 0n, max: 10n ** 30n }),
        fc.constantFrom("increaseAllowance", "increaseApproval"),
        (current, added, fn) => {
          const cap = 10n ** 27n;
          const policy = { ...none, tokenLimits: { [TOKEN]: { approval_cap: formatMajor(cap, 6) } } };
          const d = checkCalldata(policy, decodeCall(TOKEN, enc(fn, [ALICE, added])), facts(6, current));
          expect(d === null).toBe(added === 0n || current + added <= cap);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("unknown calldata follows the agent's policy; the default is deny where recipient or token rules exist", () => {
    const call = decodeCall(TOKEN, "0x12345678");
    expect(checkCalldata(none, call, facts())).toBeNull();
    expect(checkCalldata({ ...none, unknownCalldata: "simulate" }, call, facts())).toBe("simulate");
    expect(code(checkCalldata({ ...none, unknownCalldata: "deny" }, call, facts()))).toBe("unknown_calldata");
    const base = { tx_unknown_calldata: null, tx_to_allowlist: [], tx_token_allowlist: [], tx_token_limits: {} };
    expect(unknownCalldataOf(base)).toBe("allow");
    expect(unknownCalldataOf({ ...base, tx_to_allowlist: [ALICE] })).toBe("deny");
    expect(unknownCalldataOf({ ...base, tx_token_allowlist: [TOKEN] })).toBe("deny");
    expect(unknownCalldataOf({ ...base, tx_token_limits: { [TOKEN]: {} } })).toBe("deny");
    expect(unknownCalldataOf({ ...base, tx_to_allowlist: [ALICE], tx_unknown_calldata: "allow" })).toBe("allow");
    expect(unknownCalldataOf({ ...base, tx_unknown_calldata: "simulate" })).toBe("simulate");
  });
});

describe("simulated logs", () => {
  const word = (a: string) => "0x" + a.slice(2).padStart(64, "0");
  const TRANSFER = toEventSelector("Transfer(address,address,uint256)");
  const APPROVAL = toEventSelector("Approval(address,address,uint256)");
  const FOR_ALL = toEventSelector("ApprovalForAll(address,address,bool)");
  const log = (topic0: string, a: string, b: string, data = word("0x01")) => ({ address: TOKEN, topics: [topic0, word(a), word(b)], data });

  it("every Transfer recipient, Approval spender and operator must be allowlisted; the sender and revocations pass", () => {
    const policy = { toAllowlist: [ALICE] };
    expect(checkSimulatedLogs({ toAllowlist: [] }, SELF, [log(TRANSFER, SELF, BOB)])).toBeNull();
    expect(code(checkSimulatedLogs(policy, SELF, [log(TRANSFER, SELF, ALICE), log(TRANSFER, ALICE, BOB)]))).toBe(
      "simulated_recipient_not_allowlisted",
    );
    expect(checkSimulatedLogs(policy, SELF, [log(TRANSFER, BOB, SELF), log(TRANSFER, SELF, ALICE)])).toBeNull();
    expect(code(checkSimulatedLogs(policy, SELF, [log(APPROVAL, SELF, BOB)]))).toBe("simulated_spender_not_allowlisted");
    expect(checkSimulatedLogs(policy, SELF, [log(APPROVAL, SELF, BOB, word("0x0"))])).toBeNull();
    expect(code(checkSimulatedLogs(policy, SELF, [log(FOR_ALL, SELF, BOB)]))).toBe("simulated_spender_not_allowlisted");
    expect(checkSimulatedLogs(policy, SELF, [log(FOR_ALL, SELF, BOB, word("0x0"))])).toBeNull();
  });
});
