/**
 * Abuse limits for push-triggering requests: a stranger must not be able to ring a phone
 * a hundred times a minute, nor hold thousands of calls open waiting for wakes.
 */

import type { Clock } from '@pushcall/sip';

/** Fixed-window counters per key (one-minute windows), bounded in memory. */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly limit: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Count one event; returns 0 when allowed, else the ms until the window resets. */
  take(key: string): number {
    const now = this.clock.now();
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      w = { start: now, count: 0 };
      this.windows.set(key, w);
      if (this.windows.size > 100_000) this.prune(now);
    }
    if (w.count >= this.limit) return Math.max(1, this.windowMs - (now - w.start));
    w.count++;
    return 0;
  }

  private prune(now: number): void {
    for (const [k, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(k);
  }
}
