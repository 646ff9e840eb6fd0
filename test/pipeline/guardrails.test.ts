// Guardrail logic is pure: its boundaries are checked exhaustively with property tests.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkRollingGuardrails, checkStaticGuardrails, type GuardrailPolicy } from "../../src/pipeline/guardrails.js";
import { formatMajor, MAX_UINT256, parseMajor } from "../../src/units.js";

const chain = { name: "base", chain_id: 8453, aliases: ["base-mainnet"] };
const none: GuardrailPolicy = {
  toAllowlist: [],
  maxValueWei: null,
  dailyLimitWei: null,
  maxPerDay: null,
  allowedChains: [],
  maxFeeWei: null,
  dailyFeeBudgetWei: null,
  maxGasLimit: null,
};
const wei = fc.bigInt({ min: 0n, max: 10n ** 30n });
const addr = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => "0x" + Buffer.from(b).toString("hex"));

describe("guardrails", () => {
  it("max value: passes exactly when value ≤ limit", () => {
    fc.assert(
      fc.property(wei, fc.bigInt({ min: -3n, max: 3n }), (limit, delta) => {
        const value = limit + delta < 0n ? 0n : limit + delta;
        const d = checkStaticGuardrails({ ...none, maxValueWei: limit }, { chain, to: "0x" + "1".repeat(40), valueWei: value });
        expect(d === null).toBe(value <= limit);
        if (d) expect(d).toMatchObject({ reason_code: "max_value_exceeded", limit: formatMajor(limit), attempted: formatMajor(value) });
      }),
      { numRuns: 2000 },
    );
  });

  it("daily limit: passes exactly when spent + value ≤ limit", () => {
    fc.assert(
      fc.property(wei, wei, fc.bigInt({ min: -3n, max: 3n }), (limit, spent, delta) => {
        const value = limit - spent + delta < 0n ? 0n : limit - spent + delta;
        const d = checkRollingGuardrails({ ...none, dailyLimitWei: limit }, { valueWei: value }, { spentWei: spent, countToday: 0 });
        expect(d === null).toBe(spent + value <= limit);
      }),
      { numRuns: 2000 },
    );
  });

  it("max per day: the n-th transaction of the day passes exactly when n ≤ limit", () => {
    fc.assert(
      fc.property(fc.nat(1000), fc.nat(1000), (limit, count) => {
        const d = checkRollingGuardrails({ ...none, maxPerDay: limit }, { valueWei: 0n }, { spentWei: 0n, countToday: count });
        expect(d === null).toBe(count + 1 <= limit);
      }),
    );
  });

  it("recipient allowlist is case-insensitive and exact", () => {
    fc.assert(
      fc.property(fc.array(addr, { maxLength: 5 }), addr, fc.boolean(), (list, to, upper) => {
        const policy = { ...none, toAllowlist: list.map((a) => a.toLowerCase()) };
        const d = checkStaticGuardrails(policy, {
          chain,
          to: (upper ? to.toUpperCase().replace("0X", "0x") : to).toLowerCase(),
          valueWei: 0n,
        });
        expect(d === null).toBe(list.length === 0 || list.includes(to));
      }),
    );
  });

  it("allowed chains match name, alias or id", () => {
    for (const allowed of [["base"], ["BASE-MAINNET"], ["8453"], []]) {
      expect(checkStaticGuardrails({ ...none, allowedChains: allowed }, { chain, to: "0x" + "1".repeat(40), valueWei: 0n })).toBeNull();
    }
    expect(
      checkStaticGuardrails({ ...none, allowedChains: ["ethereum", "1"] }, { chain, to: "0x" + "1".repeat(40), valueWei: 0n })?.reason_code,
    ).toBe("chain_not_allowed");
  });
});

describe("amounts", () => {
  it("parseMajor and formatMajor round-trip every wei amount", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_UINT256 }), (w) => {
        expect(parseMajor(formatMajor(w))).toBe(w);
      }),
      { numRuns: 3000 },
    );
  });

  it("rejects more than 18 decimals, signs, exponents and overflow", () => {
    for (const bad of ["0.0000000000000000001", "-1", "+1", "1e3", "", ".", "1.", ".1", "01", " 1", "0x1", (MAX_UINT256 + 1n).toString()]) {
      expect(parseMajor(bad), bad).toBeUndefined();
    }
    expect(parseMajor("0.5")).toBe(5n * 10n ** 17n);
    expect(parseMajor("1.000000000000000001")).toBe(10n ** 18n + 1n);
  });
});
