// The simulation queue's rules without I/O: bounds answered at once with 503 + Retry-After, agents
// served in turn, and (fast-check over random arrival patterns) no agent waiting behind more than one
// job of each other agent.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ServiceError } from "../../src/errors.js";
import { FairQueue } from "../../src/simulators/fair-queue.js";

/** A job that finishes when the test says so. */
function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

const flush = () => new Promise((r) => setImmediate(r));

describe("FairQueue", () => {
  it("refuses past the per-agent and the global bound with 503 + Retry-After, before running anything", async () => {
    const q = new FairQueue({ concurrency: 1, perAgent: 2, max: 3 });
    const g = gate();
    let ran = 0;
    const job = () => {
      ran += 1;
      return g.p;
    };
    const a1 = q.run("a", job);
    const a2 = q.run("a", job);
    const a3 = q.run("a", job).catch((e) => e);
    const b1 = q.run("b", job);
    const c1 = q.run("c", job).catch((e) => e);
    for (const refused of [await a3, await c1]) {
      expect(refused).toBeInstanceOf(ServiceError);
      expect(refused).toMatchObject({ status: 503, code: "simulation_queue_full", opts: { retryAfterSeconds: 1 } });
    }
    expect(q.size()).toBe(3);
    expect(q.size("a")).toBe(2);
    await flush();
    expect(ran).toBe(1);
    g.open();
    await Promise.all([a1, a2, b1]);
    expect(ran).toBe(3);
    expect(q.size()).toBe(0);
    // Slots are given back: the bounds apply to what is queued now, not to what ever was.
    await expect(q.run("a", async () => 7)).resolves.toBe(7);
  });

  it("a job that throws frees its slot and rejects only its own caller", async () => {
    const q = new FairQueue({ concurrency: 1, perAgent: 1, max: 10 });
    await expect(q.run("a", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    await expect(q.run("a", async () => "ok")).resolves.toBe("ok");
  });

  it("serves agents in turn: B's one job starts after the running one and at most one more of A's", async () => {
    const q = new FairQueue({ concurrency: 1, perAgent: 100, max: 1000 });
    const gates = Array.from({ length: 40 }, gate);
    const a = gates.map((g) => q.run("A", () => g.p));
    await flush();
    const b = q.run("B", async () => "b");
    for (const g of gates) g.open();
    await Promise.all([...a, b]);
    const posB = q.started.indexOf("B");
    expect(posB).toBeGreaterThan(0);
    expect(posB).toBeLessThanOrEqual(2);
  });

  it("property: a waiting agent is never passed over by the same other agent twice", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ agent: fc.constantFrom("a", "b", "c", "d"), finishFirst: fc.boolean() }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 3 }),
        async (events, concurrency) => {
          const q = new FairQueue({ concurrency, perAgent: 1000, max: 1000 });
          const running: Array<() => void> = [];
          // Per job: its agent and the jobs that started while it waited.
          const jobs: Array<{ agent: string; enqueuedAt: number; startedAt?: number }> = [];
          const all: Promise<unknown>[] = [];
          for (const e of events) {
            if (e.finishFirst && running.length > 0) {
              running.shift()!();
              await flush();
            }
            const rec: { agent: string; enqueuedAt: number; startedAt?: number } = { agent: e.agent, enqueuedAt: q.started.length };
            jobs.push(rec);
            all.push(
              q.run(e.agent, () => {
                rec.startedAt = q.started.length - 1;
                const g = gate();
                running.push(g.open);
                return g.p;
              }),
            );
            await flush();
          }
          while (running.length > 0 || q.size() > 0) {
            running.shift()?.();
            await flush();
          }
          await Promise.all(all);
          for (const j of jobs) {
            // While j waited, each other agent started at most one job per turn j's agent had: one for
            // each of its own jobs still ahead of j, and one for j's.
            const between = q.started.slice(j.enqueuedAt, j.startedAt);
            const ahead = jobs.slice(0, jobs.indexOf(j)).filter((k) => k.agent === j.agent && k.startedAt! >= j.enqueuedAt).length;
            const counts = new Map<string, number>();
            for (const x of between) if (x !== j.agent) counts.set(x, (counts.get(x) ?? 0) + 1);
            for (const [, n] of counts) expect(n).toBeLessThanOrEqual(ahead + 1);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
