// Brute-force protection for credentials: failed authentications are counted per client address in
// fixed one-minute windows; past the limit, that address gets 429 + Retry-After on every
// authenticated route until its window ends, valid credentials or not (otherwise guessing would go
// on, only answered differently). In memory and per replica: a guesser spread over N replicas gets N
// times the budget, which is still far from enough to guess a 256-bit key.
export class AuthFailureLimiter {
  private readonly windows = new Map<string, { start: number; failures: number }>();

  /** `maxPerWindow` 0 turns the limit off. */
  constructor(
    private readonly maxPerWindow: number,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `ip` may try again, or 0 when it is not blocked. */
  blockedFor(ip: string): number {
    if (this.maxPerWindow === 0) return 0;
    const w = this.windows.get(ip);
    if (!w) return 0;
    const left = w.start + this.windowMs - this.now();
    if (left <= 0) {
      this.windows.delete(ip);
      return 0;
    }
    return w.failures >= this.maxPerWindow ? Math.ceil(left / 1000) : 0;
  }

  recordFailure(ip: string): void {
    if (this.maxPerWindow === 0) return;
    const t = this.now();
    const w = this.windows.get(ip);
    if (w && t - w.start < this.windowMs) {
      w.failures += 1;
      return;
    }
    if (this.windows.size >= 100_000) this.sweep(t);
    this.windows.set(ip, { start: t, failures: 1 });
  }

  private sweep(t: number): void {
    for (const [ip, w] of this.windows) if (t - w.start >= this.windowMs) this.windows.delete(ip);
  }
}
