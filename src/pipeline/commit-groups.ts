// Commit ordering: the submit pipeline's commit groups and the FIFO that keeps their broadcasts in
// order. Submissions on one chain queue here before taking a database connection and are committed in
// groups, whatever their signing address (see `enqueue`): a connection is then held only by the group
// that takes the nonce row locks, not by a crowd waiting for them (which would exhaust the pool and
// starve every other chain). Admission per signing address (load shedding) is ./admission.ts.

interface Group<I, P> {
  queue: Array<{ item: I; solo: boolean; prepareKey: string }>;
  /** What `prepare` started for the next group to run, per prepare key. */
  prepared: Map<string, Promise<P>>;
}

export class CommitGroups {
  private readonly groups = new Map<string, Group<unknown, unknown>>();
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly maxGroup = 64) {}

  /**
   * Group commit per key (the submit pipeline's key is the chain id). The first item for an idle key
   * runs at once, alone; items that arrive while a group of that key runs wait, and then run together as the next group (at most `maxGroup`, in
   * arrival order). Under load, groups grow by themselves, so the per-group costs (locks, the COMMIT,
   * the broadcast round trip) are shared; when idle, nothing waits. An item marked `solo` runs in a
   * group of its own.
   *
   * `prepare` starts work the group will need for the item's `prepareKey` (a chain read per signing
   * address): it is called once per key and group, when the first such item arrives, so it overlaps
   * the group running before. `run` gets the items and what was prepared, settles the items itself,
   * and resolves when the next group may start; whatever it does after that overlaps the next group.
   */
  enqueue<I, P>(
    key: string,
    item: I,
    o: { solo: boolean; prepareKey: string; prepare: () => Promise<P> },
    run: (items: I[], prepared: Map<string, Promise<P>>) => Promise<void>,
  ): void {
    const prepareInto = (into: Map<string, Promise<P>>) => {
      if (into.has(o.prepareKey)) return;
      const p = o.prepare();
      p.catch(() => {}); // observed by `run`; never an unhandled rejection while it waits
      into.set(o.prepareKey, p);
    };
    const entry = { item, solo: o.solo, prepareKey: o.prepareKey };
    const pending = this.groups.get(key) as Group<I, P> | undefined;
    if (pending) {
      pending.queue.push(entry);
      prepareInto(pending.prepared);
      return;
    }
    const group: Group<I, P> = { queue: [entry], prepared: new Map() };
    prepareInto(group.prepared);
    this.groups.set(key, group as Group<unknown, unknown>);
    void (async () => {
      while (group.queue.length > 0) {
        let n = 1;
        if (!group.queue[0].solo) while (n < group.queue.length && n < this.maxGroup && !group.queue[n].solo) n++;
        const taken = group.queue.splice(0, n);
        const prepared = group.prepared;
        // Items left over (past maxGroup, or after a solo one) keep what was started for them.
        group.prepared = new Map(
          group.queue.flatMap((w) => (prepared.has(w.prepareKey) ? [[w.prepareKey, prepared.get(w.prepareKey)!] as const] : [])),
        );
        await run(
          taken.map((w) => w.item),
          prepared,
        ).catch(() => {}); // `run` settles its items, errors included
      }
      this.groups.delete(key);
    })();
  }

  /**
   * Runs `fn` after every earlier `inOrder` call for the same key has settled (FIFO). Calls made in
   * order run in that order even when they are asynchronous, e.g. one group's broadcast never
   * overtakes the group committed before it.
   */
  async inOrder<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      done();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
