/**
 * HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760): SHA-256 and MD5,
 * qop=auth, stateless nonces that expire, and nonce-count replay protection.
 *
 * Nonces are `<issued-at base36>.<random>.<mac>`: the MAC (HMAC-SHA-256 with a per-server
 * secret) makes them unforgeable without server state; only the highest nonce-count seen
 * per nonce is remembered, and only until the nonce expires.
 */

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type AuthValue, type Clock, quote } from '@pushcall/sip';

export type DigestAlgorithm = 'SHA-256' | 'MD5';

export interface DigestUser {
  username: string;
  password?: string;
  ha1?: string;
  ha1Sha256?: string;
}

export interface DigestOptions {
  realm: string;
  users: DigestUser[];
  algorithms: DigestAlgorithm[];
  nonceTtlSeconds: number;
  secret?: string;
  clock: Clock;
}

export type DigestResult =
  | { outcome: 'ok'; username: string }
  /** No usable credentials: challenge (stale=true when the nonce merely expired). */
  | { outcome: 'challenge'; stale: boolean; reason: string }
  /** Credentials present but wrong: 403 with this reason. */
  | { outcome: 'forbidden'; reason: string };

function hash(algorithm: DigestAlgorithm, text: string): string {
  return createHash(algorithm === 'MD5' ? 'md5' : 'sha256').update(text).digest('hex');
}

export class DigestAuthenticator {
  readonly realm: string;
  private readonly secret: Buffer;
  private readonly users = new Map<string, Map<DigestAlgorithm, string>>();
  private readonly algorithms: DigestAlgorithm[];
  private readonly ttlMs: number;
  private readonly clock: Clock;
  /** nonce -> highest nonce-count accepted, with the nonce's expiry for cleanup. */
  private readonly nonceCounts = new Map<string, { nc: number; expiresAt: number }>();

  constructor(options: DigestOptions) {
    this.realm = options.realm;
    this.secret = options.secret ? Buffer.from(options.secret) : randomBytes(32);
    this.algorithms = options.algorithms;
    this.ttlMs = options.nonceTtlSeconds * 1000;
    this.clock = options.clock;
    for (const u of options.users) {
      const ha1s = new Map<DigestAlgorithm, string>();
      if (u.password !== undefined) {
        ha1s.set('MD5', hash('MD5', `${u.username}:${this.realm}:${u.password}`));
        ha1s.set('SHA-256', hash('SHA-256', `${u.username}:${this.realm}:${u.password}`));
      }
      if (u.ha1) ha1s.set('MD5', u.ha1.toLowerCase());
      if (u.ha1Sha256) ha1s.set('SHA-256', u.ha1Sha256.toLowerCase());
      this.users.set(u.username, ha1s);
    }
  }

  hasUser(username: string): boolean {
    return this.users.has(username);
  }

  /**
   * One challenge header value per algorithm, strongest first (RFC 8760 §2.4). With the
   * `username` being challenged (the AOR's user), only the algorithms that user has an HA1
   * for are offered: a UA picks the first algorithm it supports, and a user stored with an
   * MD5 `ha1` only could otherwise never pass a SHA-256 challenge. Unknown users get every
   * algorithm, so a challenge does not reveal which users exist.
   */
  challenges(stale = false, username?: string): string[] {
    const nonce = this.newNonce();
    const ha1s = username === undefined ? undefined : this.users.get(username);
    const usable = ha1s ? this.algorithms.filter((a) => ha1s.has(a)) : [];
    return (usable.length > 0 ? usable : this.algorithms).map(
      (algorithm) =>
        `Digest realm=${quote(this.realm)}, nonce=${quote(nonce)}, algorithm=${algorithm}, qop="auth"${stale ? ', stale=true' : ''}`,
    );
  }

  private newNonce(): string {
    const issued = Math.floor(this.clock.now()).toString(36);
    const random = randomBytes(9).toString('base64url');
    return `${issued}.${random}.${this.mac(`${issued}.${random}`)}`;
  }

  private mac(text: string): string {
    return createHmac('sha256', this.secret).update(text).digest('base64url').slice(0, 22);
  }

  /** Returns the nonce's expiry (ms) when it is ours and unexpired, `expired`, or `invalid`. */
  private checkNonce(nonce: string): number | 'expired' | 'invalid' {
    const parts = nonce.split('.');
    if (parts.length !== 3) return 'invalid';
    const expected = Buffer.from(this.mac(`${parts[0]}.${parts[1]}`));
    const given = Buffer.from(parts[2]);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'invalid';
    const issued = parseInt(parts[0], 36);
    if (!Number.isFinite(issued)) return 'invalid';
    const expiresAt = issued + this.ttlMs;
    return this.clock.now() > expiresAt ? 'expired' : expiresAt;
  }

  /**
   * Verify the credentials of `method` `requestUri` (RFC 3261 §22.4). `credentials` are the
   * Authorization (or Proxy-Authorization) values; the one for our realm is used.
   */
  verify(credentials: AuthValue[], method: string): DigestResult {
    const mine = credentials.find((c) => c.scheme.toLowerCase() === 'digest' && c.get('realm') === this.realm);
    if (!mine) return { outcome: 'challenge', stale: false, reason: 'no credentials for this realm' };
    const username = mine.get('username');
    const nonce = mine.get('nonce');
    const uri = mine.get('uri');
    const response = mine.get('response');
    if (!username || !nonce || !uri || !response) return { outcome: 'forbidden', reason: 'Incomplete credentials' };
    const algorithm = (mine.get('algorithm') ?? 'MD5').toUpperCase() as DigestAlgorithm;
    if (algorithm !== 'MD5' && algorithm !== 'SHA-256') return { outcome: 'forbidden', reason: 'Unsupported digest algorithm' };
    if (!this.algorithms.includes(algorithm)) return { outcome: 'forbidden', reason: 'Digest algorithm not allowed' };

    const nonceState = this.checkNonce(nonce);
    if (nonceState === 'invalid') return { outcome: 'challenge', stale: false, reason: 'unknown nonce' };

    const ha1 = this.users.get(username)?.get(algorithm);
    if (!ha1) return { outcome: 'forbidden', reason: 'Invalid credentials' };

    const qop = mine.get('qop');
    const ha2 = hash(algorithm, `${method}:${uri}`);
    let expected: string;
    let nc = 0;
    if (qop !== undefined) {
      if (qop !== 'auth') return { outcome: 'forbidden', reason: 'Unsupported qop' };
      const ncText = mine.get('nc');
      const cnonce = mine.get('cnonce');
      if (!ncText || !cnonce || !/^[0-9a-fA-F]{8}$/.test(ncText)) return { outcome: 'forbidden', reason: 'Incomplete credentials' };
      nc = parseInt(ncText, 16);
      expected = hash(algorithm, `${ha1}:${nonce}:${ncText}:${cnonce}:${qop}:${ha2}`);
    } else {
      expected = hash(algorithm, `${ha1}:${nonce}:${ha2}`);
    }
    const a = Buffer.from(expected);
    const b = Buffer.from(response.toLowerCase());
    if (a.length !== b.length || !timingSafeEqual(a, b)) return { outcome: 'forbidden', reason: 'Invalid credentials' };
    // RFC 7616 §3.3: stale=true only when the digest was valid for the expired nonce, so the
    // UA retries with the same credentials instead of re-prompting the user.
    if (nonceState === 'expired') return { outcome: 'challenge', stale: true, reason: 'nonce expired' };

    // RFC 7616 §3.3 / §5.4: nonce-count must increase; a repeat is a replay. Without qop
    // (RFC 2069 style) a nonce may be used once.
    const seen = this.nonceCounts.get(nonce);
    if (seen && nc <= seen.nc) return { outcome: 'challenge', stale: false, reason: 'nonce-count replay' };
    this.nonceCounts.set(nonce, { nc, expiresAt: nonceState });
    if (this.nonceCounts.size > 100_000) this.prune();
    return { outcome: 'ok', username };
  }

  /** Forget nonce counts of expired nonces. */
  prune(): void {
    const now = this.clock.now();
    for (const [nonce, state] of this.nonceCounts) if (state.expiresAt < now) this.nonceCounts.delete(nonce);
  }
}
