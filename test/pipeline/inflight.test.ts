// The per-chain commit groups (src/pipeline/commit-groups.ts) and the per-address load shedding
// (src/pipeline/admission.ts), without the rest of the pipeline: who runs together, in what order,
// and what is prepared when.
import { describe, expect, it } from "vitest";
import { AddressAdmission } from "../../src/pipeline/admission.js";
import { CommitGroups } from "../../src/pipeline/commit-groups.js";
import { ServiceError } from "../../src/errors.js";

const tick = () => new Promise((r) => setTimeout(r, 5));

function recorder(limiter: CommitGroups, opts: { runMs?: number } = {}) {
  const groups: string[][] = [];
  const prepared: string[] = [];
  const add = (item: string, o: { solo?: boolean; address?: string } = {}) =>
    new Promise<void>((resolve) =>
      limiter.enqueue(
        "chain",
        { item, resolve },
        {
          solo: o.solo ?? false,
          prepareKey: o.address ?? "a",
          prepare: async () => {
            prepared.push(`${o.address ?? "a"}@${groups.length}`);
            return o.address ?? "a";
          },
        },
        async (items, prep) => {
          groups.push(items.map((i) => i.item));
          for (const p of prep.values()) await p;
          await new Promise((r) => setTimeout(r, opts.runMs ?? 20));
          for (const i of items) i.resolve();
        },
      ),
    );
  return { groups, prepared, add };
}

describe("CommitGroups.enqueue (commit groups)", () => {
  it("an idle key runs the first item alone at once; items arriving meanwhile run together next, in arrival order", async () => {
    const r = recorder(new CommitGroups());
    const first = r.add("1");
    await tick();
    expect(r.groups).toEqual([["1"]]);
    const rest = ["2", "3", "4"].map((i) => r.add(i));
    await Promise.all([first, ...rest]);
    expect(r.groups).toEqual([["1"], ["2", "3", "4"]]);
  });

  it("caps a group at maxGroup and keeps the rest for the next one", async () => {
    const r = recorder(new CommitGroups(2));
    const all = ["1", "2", "3", "4", "5"].map((i) => r.add(i));
    await Promise.all(all);
    expect(r.groups).toEqual([["1"], ["2", "3"], ["4", "5"]]);
  });

  it("a solo item runs in a group of its own, in its place in the queue", async () => {
    const r = recorder(new CommitGroups());
    const all = [r.add("1"), r.add("2"), r.add("3", { solo: true }), r.add("4"), r.add("5")];
    await Promise.all(all);
    expect(r.groups).toEqual([["1"], ["2"], ["3"], ["4", "5"]]);
  });

  it("prepares once per key and group, as soon as the group's first item for that key arrives", async () => {
    const r = recorder(new CommitGroups());
    const first = r.add("1", { address: "a" });
    await tick();
    // Group 1 is running; these three form group 2 and their reads start now, not when it starts.
    const next = [r.add("2", { address: "a" }), r.add("3", { address: "b" }), r.add("4", { address: "a" })];
    expect(r.prepared).toEqual(["a@0", "a@1", "b@1"]);
    await Promise.all([first, ...next]);
    expect(r.groups).toEqual([["1"], ["2", "3", "4"]]);
  });

  it("a run that throws does not stop the queue", async () => {
    const limiter = new CommitGroups();
    const seen: string[][] = [];
    const add = (item: string) =>
      new Promise<void>((resolve) =>
        limiter.enqueue("k", { item, resolve }, { solo: false, prepareKey: "x", prepare: async () => 0 }, async (items) => {
          seen.push(items.map((i) => i.item));
          for (const i of items) i.resolve();
          if (items[0].item === "1") throw new Error("boom");
        }),
      );
    await Promise.all([add("1"), add("2")]);
    expect(seen).toEqual([["1"], ["2"]]);
  });
});

describe("CommitGroups.inOrder", () => {
  it("runs calls for one key one after another in call order, even when an earlier one is slower", async () => {
    const limiter = new CommitGroups();
    const log: string[] = [];
    const job = (name: string, ms: number) =>
      limiter.inOrder("k", async () => {
        log.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`end ${name}`);
      });
    await Promise.all([job("slow", 30), job("fast", 1), limiter.inOrder("other", async () => log.push("other key"))]);
    expect(log.filter((l) => l !== "other key")).toEqual(["start slow", "end slow", "start fast", "end fast"]);
    expect(log.indexOf("other key")).toBeLessThan(log.indexOf("end slow")); // other keys do not wait
  });
});

describe("AddressAdmission.acquire (load shedding)", () => {
  it("past the bound per key: 503 with Retry-After; released slots are reusable; keys are independent", () => {
    const limiter = new AddressAdmission(2);
    const a1 = limiter.acquire("a");
    limiter.acquire("a");
    let err: unknown;
    try {
      limiter.acquire("a");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).status).toBe(503);
    expect(() => limiter.acquire("b")).not.toThrow();
    a1();
    a1(); // releasing twice gives back one slot only
    expect(() => limiter.acquire("a")).not.toThrow();
    expect(() => limiter.acquire("a")).toThrow();
  });
});
