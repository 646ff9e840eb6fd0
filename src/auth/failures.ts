// Limits on failed authentication that slow the guilty only. Failures are counted in fixed one-minute
// windows twice: per credential (the SHA-256 of exactly what was presented) and per client address.
//
// - A credential that keeps failing (a revoked token retried in a loop, one key guessed at over and
//   over) is refused with 429 before it is looked up again, until its window ends. Counting by the
//   whole credential and never by a part of it (key prefix, agent id, a token's `jti`) matters: those
//   parts are public or forgeable, and failures under them would lock the real owner out.
// - An address past its limit gets 429 instead of 401 for every further failure, but a credential
//   that verifies is still served: behind a proxy, or on a shared NAT, one address is many clients,
//   and sixty bad keys from one of them must not lock out the others' valid tokens and operator keys.
//   Guessing a 256-bit key or forging an EdDSA token is hopeless at any rate; what the address limit
//   buys is a clear "back off" to the guesser while the innocent carry on.
//
// In memory and per replica: a guesser spread over N replicas gets N times the budget.
import { createHash } from "node:crypto";

/** Counts events per key in fixed windows; bounded memory (expired windows are swept). */
export class WindowCounter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {}

  /** Keys with a window (expired ones included until swept or read). */
  get size(): number {
    return this.windows.size;
  }

  /** The live windows: key, start (ms) and count. */
  *live(): Generator<{ key: string; start: number; count: number }> {
    const t = this.now();
    for (const [key, w] of this.windows) if (t - w.start < this.windowMs) yield { key, start: w.start, count: w.count };
  }

  /** This window's count for `key` and the seconds until the window ends. */
  peek(key: string): { count: number; resetSeconds: number } {
    const w = this.windows.get(key);
    if (!w) return { count: 0, resetSeconds: 0 };
    const left = w.start + this.windowMs - this.now();
    if (left <= 0) {
      this.windows.delete(key);
      return { count: 0, resetSeconds: 0 };
    }
    return { count: w.count, resetSeconds: Math.ceil(left / 1000) };
  }

  /** Adds one to `key`'s window (opening a new one if needed); returns the new count and seconds left. */
  hit(key: string): { count: number; resetSeconds: number } {
    const t = this.now();
    let w = this.windows.get(key);
    if (!w || t - w.start >= this.windowMs) {
      if (!w && this.windows.size >= this.maxKeys) this.sweep(t);
      w = { start: t, count: 0 };
      this.windows.set(key, w);
    }
    w.count += 1;
    return { count: w.count, resetSeconds: Math.max(1, Math.ceil((w.start + this.windowMs - t) / 1000)) };
  }

  private sweep(t: number): void {
    for (const [k, w] of this.windows) if (t - w.start >= this.windowMs) this.windows.delete(k);
  }
}

/** The counting key of a presented credential: its SHA-256, never the credential itself. */
export function credentialKey(authorization: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  return m ? createHash("sha256").update(m[1]!, "utf8").digest("base64url") : undefined;
}

export class AuthFailureLimiter {
  private readonly byAddress: WindowCounter;
  private readonly byCredential: WindowCounter;

  /** Limits per minute; 0 turns either off. */
  constructor(
    private readonly perAddress: number,
    private readonly perCredential = 0,
    windowMs = 60_000,
    now: () => number = Date.now,
  ) {
    this.byAddress = new WindowCounter(windowMs, now);
    this.byCredential = new WindowCounter(windowMs, now);
  }

  /** Whether any credential has failed lately: when none has, callers skip hashing the one presented. */
  get anyCredentialFailures(): boolean {
    return this.perCredential > 0 && this.byCredential.size > 0;
  }

  /** Seconds until this credential may be tried again, or 0: checked before it is verified. */
  credentialBlockedFor(credential: string | undefined): number {
    if (this.perCredential === 0 || credential === undefined) return 0;
    const w = this.byCredential.peek(credential);
    return w.count >= this.perCredential ? w.resetSeconds : 0;
  }

  /** Seconds until `ip` stops being answered 429 for its failures, or 0. */
  addressBlockedFor(ip: string): number {
    if (this.perAddress === 0) return 0;
    const w = this.byAddress.peek(ip);
    return w.count >= this.perAddress ? w.resetSeconds : 0;
  }

  /** Counts one failure; returns the seconds to tell the client to wait, or 0 when it is within its limits. */
  recordFailure(ip: string, credential: string | undefined): number {
    let wait = 0;
    if (this.perAddress > 0) {
      const a = this.byAddress.hit(ip);
      if (a.count > this.perAddress) wait = a.resetSeconds;
    }
    if (this.perCredential > 0 && credential !== undefined) {
      const c = this.byCredential.hit(credential);
      if (c.count > this.perCredential) wait = Math.max(wait, c.resetSeconds);
    }
    return wait;
  }
}
