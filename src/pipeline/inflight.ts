// Work per signing address. Submits on one address serialise on its nonce row anyway, so within a
// process they queue here, in order, before taking a database connection: a connection is then held
// only by the submit that owns the row lock, not by a crowd waiting for it (which would exhaust the
// pool and starve every other address). Past a bound, a queue only grows latency for everyone, so
// extra requests get 503 + Retry-After at once instead (load shedding).
import { unavailable } from "../errors.js";

export class InflightLimiter {
  private readonly counts = new Map<string, number>();
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly maxPerKey: number) {}

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

  /** Runs `fn` after every earlier `exclusive` call for the same key has settled (FIFO). */
  async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
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

  inFlight(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}
