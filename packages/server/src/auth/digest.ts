/**
 * HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760): SHA-256 and MD5,
 * qop=auth, stateless nonces that expire, and nonce-count replay protection.
 *
 * Nonces are `<issued-at base36>.<epoch>.<random>.<mac>`: the MAC (HMAC-SHA-256 with a
 * per-server secret) makes them unforgeable without server state; only the highest
 * nonce-count seen per nonce is remembered, and only until the nonce expires. That memory is
 * this process's alone, so a nonce is accepted only by the process that issued it: `epoch`
 * is drawn at random when the authenticator is built, and a nonce of another epoch (before a
 * restart, or from another node sharing the secret) is answered stale, never accepted, else a
 * captured Authorization could be replayed there within the nonce's lifetime.
 */

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type AuthValue, type Clock, SipParseError, SipUri, parseUri, quote, sipUriEquals } from '@pushcall/sip';

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
  /** No usable credentials: challenge (stale=true when the nonce merely expired or is another process's). */
  | { outcome: 'challenge'; stale: boolean; reason: string }
  /** Credentials present but wrong or malformed: 403 with this reason. */
  | { outcome: 'forbidden'; reason: string };

function hash(algorithm: DigestAlgorithm, text: string): string {
  return createHash(algorithm === 'MD5' ? 'md5' : 'sha256').update(text).digest('hex');
}

/**
 * RFC 7616 §3.4.6 (RFC 2617 §3.2.2.5): the `uri` directive must designate the Request-URI's
 * resource, else a response captured for one request could authorize another. UAs copy the
 * Request-URI, so the exact text is the common case; otherwise both are compared as SIP URIs
 * (RFC 3261 §19.1.4: scheme and host case-insensitive, escaping normalised), which tolerates
 * a UA that re-serialises the URI. A port on one side only is tolerated too: SIPp, for one,
 * puts the address and port it sent to (`sip:127.0.0.1:5060`) against a port-less
 * Request-URI; the user and host, which is what the registrar and proxy act on, still must
 * match, and two different ports do not. Anything unparsable or non-SIP must match exactly.
 */
function sameRequestUri(digestUri: string, requestUri: string): boolean {
  if (digestUri === requestUri) return true;
  try {
    const a = parseUri(digestUri);
    const b = parseUri(requestUri);
    if (!(a instanceof SipUri) || !(b instanceof SipUri)) return false;
    if (a.port === undefined || b.port === undefined) a.port = b.port;
    return sipUriEquals(a, b);
  } catch (err) {
    if (err instanceof SipParseError) return false;
    throw err;
  }
}

export class DigestAuthenticator {
  readonly realm: string;
  private readonly secret: Buffer;
  /** This process's nonce epoch (8 random bytes): see the file comment. */
  private readonly epoch = randomBytes(8).toString('base64url');
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
    this.setUsers(options.users);
  }

  /** Replace the users (a configuration reload); nonces already issued stay valid. */
  setUsers(users: readonly DigestUser[]): void {
    this.users.clear();
    for (const u of users) {
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
    return `${issued}.${this.epoch}.${random}.${this.mac(`${issued}.${this.epoch}.${random}`)}`;
  }

  private mac(text: string): string {
    return createHmac('sha256', this.secret).update(text).digest('base64url').slice(0, 22);
  }

  /**
   * Returns the nonce's expiry (ms) when this process issued it and it is unexpired;
   * `foreign` when it is authentic (our secret) but of another epoch: another process or node
   * issued it, and only that one knows which nonce-counts were used; `expired`; or `invalid`.
   */
  private checkNonce(nonce: string): number | 'foreign' | 'expired' | 'invalid' {
    const parts = nonce.split('.');
    if (parts.length !== 4) return 'invalid';
    const expected = Buffer.from(this.mac(`${parts[0]}.${parts[1]}.${parts[2]}`));
    const given = Buffer.from(parts[3]);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'invalid';
    if (parts[1] !== this.epoch) return 'foreign';
    const issued = parseInt(parts[0], 36);
    if (!Number.isFinite(issued)) return 'invalid';
    const expiresAt = issued + this.ttlMs;
    return this.clock.now() > expiresAt ? 'expired' : expiresAt;
  }

  /**
   * Verify the credentials of `method` `requestUri` (RFC 3261 §22.4). `credentials` are the
   * Authorization (or Proxy-Authorization) values; the one for our realm is used.
   * `requestUri` is the Request-URI as received (`SipRequest.uriText`).
   */
  verify(credentials: AuthValue[], method: string, requestUri: string): DigestResult {
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
    // RFC 7616 §3.4.6 / RFC 2617 §3.2.2.5 answer a mismatch with 400; as for the other
    // malformed credentials, that is a 403 with this reason here.
    if (!sameRequestUri(uri, requestUri)) return { outcome: 'forbidden', reason: 'Digest uri does not match the Request-URI' };

    const nonceState = this.checkNonce(nonce);
    if (nonceState === 'invalid') return { outcome: 'challenge', stale: false, reason: 'unknown nonce' };

    const ha1 = this.users.get(username)?.get(algorithm);
    if (!ha1) return { outcome: 'forbidden', reason: 'Invalid credentials' };

    // Every challenge offers qop="auth", and RFC 7616 §3.4.1 defines the response only with
    // a qop: the RFC 2069 form without one has no cnonce or nonce-count, so accepting it
    // would let a man in the middle strip the qop and downgrade the replay protection.
    const qop = mine.get('qop');
    if (qop === undefined) return { outcome: 'forbidden', reason: 'Digest response without qop' };
    if (qop !== 'auth') return { outcome: 'forbidden', reason: 'Unsupported qop' };
    const ncText = mine.get('nc');
    const cnonce = mine.get('cnonce');
    if (!ncText || !cnonce || !/^[0-9a-fA-F]{8}$/.test(ncText)) return { outcome: 'forbidden', reason: 'Incomplete credentials' };
    const nc = parseInt(ncText, 16);
    const ha2 = hash(algorithm, `${method}:${uri}`);
    const expected = hash(algorithm, `${ha1}:${nonce}:${ncText}:${cnonce}:${qop}:${ha2}`);
    const a = Buffer.from(expected);
    const b = Buffer.from(response.toLowerCase());
    if (a.length !== b.length || !timingSafeEqual(a, b)) return { outcome: 'forbidden', reason: 'Invalid credentials' };
    // RFC 7616 §3.3: stale=true only when the digest was valid for the expired nonce, so the
    // UA retries with the same credentials instead of re-prompting the user.
    if (nonceState === 'expired') return { outcome: 'challenge', stale: true, reason: 'nonce expired' };
    // Another process's nonce: its nonce-counts are unknown here, so it may be a replay; stale
    // makes an honest UA (moved to this node, or talking to us after a restart) retry with a
    // fresh nonce of ours without prompting its user, and a replayer cannot answer that one.
    if (nonceState === 'foreign') return { outcome: 'challenge', stale: true, reason: 'nonce of another process or node' };

    // RFC 7616 §3.3 / §5.4: nonce-count must increase; a repeat is a replay.
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
