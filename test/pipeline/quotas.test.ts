// The counting rules without I/O, on an injected clock: fixed one-minute windows, Retry-After that
// counts down to the window's end, per-agent budgets with the server default, and the failed-
// authentication limiter's two counters (per address, per credential hash).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AuthFailureLimiter, credentialKey, WindowCounter } from "../../src/auth/failures.js";
import { ServiceError } from "../../src/errors.js";
import { checkDataSize, RequestBudget } from "../../src/quotas.js";

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("WindowCounter", () => {
  it("counts per key in fixed windows and tells the seconds left", () => {
    const c = clock();
    const w = new WindowCounter(60_000, c.now);
    expect(w.hit("a")).toEqual({ count: 1, resetSeconds: 60 });
    c.advance(45_500);
    expect(w.hit("a")).toEqual({ count: 2, resetSeconds: 15 });
    expect(w.peek("b")).toEqual({ count: 0, resetSeconds: 0 });
    c.advance(14_500);
    expect(w.peek("a")).toEqual({ count: 0, resetSeconds: 0 });
    expect(w.hit("a")).toEqual({ count: 1, resetSeconds: 60 });
  });
});

describe("RequestBudget", () => {
  const agent = (id: string, requests_per_minute: number | null = null) => ({ id, requests_per_minute });

  it("property: within a window exactly the budget passes, the rest are 429 with a Retry-After inside the window", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 120 }),
        fc.integer({ min: 0, max: 59_000 }),
        (budget, requests, offset) => {
          const c = clock();
          const b = new RequestBudget({ defaultPerMinute: 1000, windowMs: 60_000, now: c.now });
          let passed = 0;
          for (let i = 0; i < requests; i++) {
            if (i === 1) c.advance(offset);
            try {
              b.spend(agent("x", budget));
              passed += 1;
            } catch (err) {
              expect(err).toBeInstanceOf(ServiceError);
              const e = err as ServiceError;
              expect(e.status).toBe(429);
              expect(e.opts.retryAfterSeconds).toBeGreaterThanOrEqual(1);
              expect(e.opts.retryAfterSeconds).toBeLessThanOrEqual(Math.ceil((60_000 - offset) / 1000));
            }
          }
          expect(passed).toBe(Math.min(budget, requests));
        },
      ),
    );
  });

  it("uses the server default when the agent has none, 0 is no limit, agents are counted apart, and a new window starts afresh", () => {
    const c = clock();
    const b = new RequestBudget({ defaultPerMinute: 2, windowMs: 60_000, now: c.now });
    b.spend(agent("a"));
    b.spend(agent("a"));
    expect(() => b.spend(agent("a"))).toThrow(ServiceError);
    b.spend(agent("b"));
    for (let i = 0; i < 100; i++) b.spend(agent("c", 0));
    c.advance(60_000);
    b.spend(agent("a"));
  });
});

describe("checkDataSize", () => {
  it("counts bytes of 0x-hex and leaves malformed values to the schema", () => {
    expect(() => checkDataSize("0x" + "00".repeat(10), 10)).not.toThrow();
    expect(() => checkDataSize("0x" + "00".repeat(11), 10)).toThrow(expect.objectContaining({ status: 413, code: "data_too_large" }));
    for (const v of [undefined, null, 7, "abc", "0x"]) expect(() => checkDataSize(v, 0)).not.toThrow();
  });
});

describe("AuthFailureLimiter", () => {
  it("blocks a credential after its own failures only, and an address answers 429 past its limit", () => {
    const c = clock();
    const l = new AuthFailureLimiter(3, 2, 60_000, c.now);
    const bad = credentialKey("Bearer ocv_bad")!;
    expect(credentialKey("Bearer ocv_bad")).toBe(bad);
    expect(credentialKey("Bearer ocv_ba")).not.toBe(bad);
    expect(credentialKey(undefined)).toBeUndefined();
    expect(l.recordFailure("1.1.1.1", bad)).toBe(0);
    expect(l.credentialBlockedFor(bad)).toBe(0);
    expect(l.recordFailure("2.2.2.2", bad)).toBe(0);
    expect(l.credentialBlockedFor(bad)).toBe(60);
    expect(l.credentialBlockedFor(credentialKey("Bearer ocv_other"))).toBe(0);
    // Address 1.1.1.1: 3 failures allowed, the 4th and later are told to wait.
    expect(l.recordFailure("1.1.1.1", credentialKey("Bearer x1"))).toBe(0);
    expect(l.recordFailure("1.1.1.1", credentialKey("Bearer x2"))).toBe(0);
    expect(l.addressBlockedFor("1.1.1.1")).toBe(60);
    expect(l.recordFailure("1.1.1.1", credentialKey("Bearer x3"))).toBe(60);
    c.advance(60_000);
    expect(l.addressBlockedFor("1.1.1.1")).toBe(0);
    expect(l.credentialBlockedFor(bad)).toBe(0);
  });
});
