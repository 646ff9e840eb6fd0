// Work per signing address. Submits on one address serialise on its nonce row anyway, so within a
// process they queue here, in order, before taking a database connection, and are committed in
// groups (see `enqueue`): a connection is then held only by the group that owns the row lock, not by a
// crowd waiting for it (which would exhaust the pool and starve every other address). Past a bound, a
// queue only grows latency for everyone, so extra requests get 503 + Retry-After at once instead
// (load shedding).
import { unavailable } from "../errors.js";

export class InflightLimiter {
  private readonly counts = new Map<string, number>();
  private readonly groups = new Map<string, unknown[]>();

  constructor(
    private readonly maxPerKey: number,
    private readonly maxGroup = 64,
  ) {}

  /** Takes a slot for `key`, or throws 503. Returns the function that gives it back (call it once). */
  acquire(key: string): () => void {
    const n = this.counts.get(key) ?? 0;
    if (n >= this.maxPerKey) {
      throw unavailable("Too many transactions in flight for this signing address; retry shortly.", "address_busy", undefined, 1);
    }
    this.counts.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.counts.get(key) ?? 1) - 1;
      if (left <= 0) this.counts.delete(key);
      else this.counts.set(key, left);
    };
  }

  /**
   * Group commit per key. The first item for an idle key runs at once, alone; items that arrive while
   * a group of that key runs wait, and then run together as the next group (at most `maxGroup`, in
   * arrival order). Under load, groups grow by themselves, so the per-group costs (the row lock, the
   * COMMIT, the broadcast round trip) are shared; when idle, nothing waits. An item marked `solo` runs
   * in a group of its own. `run` settles the items it is given; it resolves when the next group may
   * start, and anything it does after that (broadcast, answers) overlaps the next group.
   */
  enqueue<I>(key: string, item: I, solo: boolean, run: (items: I[]) => Promise<void>): void {
    const waiting = this.groups.get(key) as Array<{ item: I; solo: boolean }> | undefined;
    if (waiting) {
      waiting.push({ item, solo });
      return;
    }
    const queue = [{ item, solo }];
    this.groups.set(key, queue);
    void (async () => {
      while (queue.length > 0) {
        let n = 1;
        if (!queue[0].solo) while (n < queue.length && n < this.maxGroup && !queue[n].solo) n++;
        const items = queue.splice(0, n).map((w) => w.item);
        await run(items).catch(() => {}); // `run` settles its items, errors included
      }
      this.groups.delete(key);
    })();
  }

  inFlight(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}
