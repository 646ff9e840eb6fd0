// Admission per signing address: how many submissions of one (chain, address) may be past the
// checks at once in this process. Submits on one address serialise on its nonce row anyway; past a
// bound a queue only grows latency for everyone, so extra requests get 503 + Retry-After at once
// (load shedding) instead of waiting for a database connection.
import { unavailable } from "../errors.js";

export class AddressAdmission {
  private readonly counts = new Map<string, number>();

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

  inFlight(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}
