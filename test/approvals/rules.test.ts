// Which approval rules a request matches (pure), over random rules and requests: a request waits
// exactly when some rule says so, and each matched rule is named.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ApprovalRulesSchema, matchRules, type GateFacts } from "../../src/approvals/rules.js";

const TOKEN = "0x" + "a".repeat(40);
const OTHER = "0x" + "b".repeat(40);

describe("approval rules", () => {
  it("property: a request waits exactly when a rule says so, and each matched rule is named", () => {
    const rules = fc.record(
      {
        everything: fc.option(fc.boolean(), { nil: undefined }),
        cost_above_wei: fc.option(fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String), { nil: undefined }),
        token_amount_above: fc.option(
          fc.bigInt({ min: 0n, max: 10n ** 12n }).map((v) => ({ [TOKEN]: String(v) })),
          { nil: undefined },
        ),
        typed_data_kinds: fc.option(fc.subarray(["permit", "transfer_with_authorization", "*"]), { nil: undefined }),
        eip7702: fc.option(fc.boolean(), { nil: undefined }),
      },
      { requiredKeys: [] },
    );
    const facts = fc.record({
      costWei: fc.option(fc.bigInt({ min: 0n, max: 10n ** 20n }), { nil: undefined }),
      tokens: fc.array(fc.record({ token: fc.constantFrom(TOKEN, OTHER), amount: fc.bigInt({ min: 0n, max: 10n ** 12n }) }), {
        maxLength: 3,
      }),
      typedDataKind: fc.option(fc.constantFrom("permit", "transfer_with_authorization", "permit2_single"), { nil: undefined }),
      eip7702: fc.boolean(),
      heldAddresses: fc.subarray([OTHER]),
      heldDelegates: fc.constant([] as string[]),
    });
    fc.assert(
      fc.property(rules, facts, (r, f: GateFacts) => {
        const parsed = ApprovalRulesSchema.parse(JSON.parse(JSON.stringify(r)));
        const names = new Set(matchRules(parsed, f).map((m) => m.rule));
        expect(names.has("everything")).toBe(r.everything === true);
        expect(names.has("cost_above_wei")).toBe(
          r.cost_above_wei !== undefined && f.costWei !== undefined && f.costWei > BigInt(r.cost_above_wei),
        );
        const limit = r.token_amount_above?.[TOKEN];
        expect(names.has("token_amount_above")).toBe(
          limit !== undefined && f.tokens.some((t) => t.token === TOKEN && t.amount > BigInt(limit)),
        );
        expect(names.has("typed_data_kinds")).toBe(
          f.typedDataKind !== undefined && (r.typed_data_kinds?.includes("*") || r.typed_data_kinds?.includes(f.typedDataKind)) === true,
        );
        expect(names.has("eip7702")).toBe(f.eip7702 && r.eip7702 === true);
        expect(names.has("allowlist_miss")).toBe(f.heldAddresses.length > 0);
      }),
      { numRuns: 500 },
    );
  });

  it("no rules hold nothing back; bad rules are refused", () => {
    expect(matchRules(null, { costWei: 10n ** 30n, tokens: [], eip7702: true, heldAddresses: [], heldDelegates: [] })).toEqual([]);
    for (const bad of [
      { quorum: 0 },
      { quorum: 21 },
      { expiry_seconds: 0 },
      { cost_above_wei: "1e18" },
      { token_amount_above: { nope: "1" } },
      { other: true },
    ]) {
      expect(ApprovalRulesSchema.safeParse(bad).success).toBe(false);
    }
  });
});
