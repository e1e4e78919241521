/**
 * Failed authentications per source address, and a block for addresses that fail too often:
 * what fail2ban or Kamailio's pike + htable recipes do in front of a public registrar, where
 * SIP scanners try passwords around the clock. Only wrong credentials count (a 403), not the
 * 401/407 challenge every phone gets first. A blocked address gets 403 without its
 * credentials being checked, until the block ends. Trusted peers never reach this.
 */

import type { Clock } from '@pushcall/sip';

/** The reason phrase of the 403 to a blocked address. */
export const TOO_MANY_FAILURES = 'Too many failed authentications';

export interface AuthFailureLimitOptions {
  /** Failures within `windowSeconds` that block the address; 0 turns the limit off. */
  maxFailures: number;
  windowSeconds: number;
  blockSeconds: number;
  clock: Clock;
  /** Addresses tracked at most; beyond it, entries whose window and block are over are dropped first. */
  maxTracked?: number;
  /** An address was just blocked (logs, metrics). */
  onBlock?: (address: string) => void;
}

interface Entry {
  windowStart: number;
  failures: number;
  blockedUntil: number;
}

export class AuthFailureLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly maxTracked: number;

  constructor(private readonly options: AuthFailureLimitOptions) {
    this.maxTracked = options.maxTracked ?? 100_000;
  }

  /** Seconds left of the address's block, or 0 when it is not blocked. */
  blockedFor(address: string): number {
    const entry = this.entries.get(address);
    if (entry === undefined) return 0;
    const left = entry.blockedUntil - this.options.clock.now();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  /** Count a failed authentication; true when it blocks the address (from now on). */
  recordFailure(address: string): boolean {
    const { maxFailures, windowSeconds, blockSeconds, clock } = this.options;
    if (maxFailures <= 0) return false;
    const now = clock.now();
    let entry = this.entries.get(address);
    if (entry === undefined || now - entry.windowStart >= windowSeconds * 1000) {
      if (entry === undefined && this.entries.size >= this.maxTracked) this.prune(now);
      entry = { windowStart: now, failures: 0, blockedUntil: entry?.blockedUntil ?? 0 };
      this.entries.set(address, entry);
    }
    entry.failures++;
    if (entry.failures < maxFailures || entry.blockedUntil > now) return false;
    entry.blockedUntil = now + blockSeconds * 1000;
    this.options.onBlock?.(address);
    return true;
  }

  /** Addresses tracked now (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }

  private prune(now: number): void {
    const windowMs = this.options.windowSeconds * 1000;
    for (const [address, e] of this.entries) if (e.blockedUntil <= now && now - e.windowStart >= windowMs) this.entries.delete(address);
    // Still full (a flood of new addresses): forget the oldest, as a bounded table must.
    for (const address of this.entries.keys()) {
      if (this.entries.size < this.maxTracked) break;
      this.entries.delete(address);
    }
  }
}
