/** Client side of HTTP Digest for SIP (RFC 3261 §22, RFC 7616, RFC 8760): MD5 and SHA-256. */

import { createHash, randomBytes } from 'node:crypto';
import type { AuthValue } from '@pushcall/sip';

const counts = new Map<string, number>();

function h(algorithm: string, text: string): string {
  return createHash(algorithm.toUpperCase().startsWith('SHA-256') ? 'sha256' : 'md5').update(text).digest('hex');
}

/** Pick the strongest challenge we support (SHA-256 before MD5, RFC 8760 §2.4). */
export function pickChallenge(challenges: AuthValue[]): AuthValue | undefined {
  const digest = challenges.filter((c) => c.scheme.toLowerCase() === 'digest');
  return digest.find((c) => (c.get('algorithm') ?? 'MD5').toUpperCase() === 'SHA-256') ?? digest.find((c) => (c.get('algorithm') ?? 'MD5').toUpperCase() === 'MD5');
}

export function digestAuthorization(challenge: AuthValue, user: string, password: string, method: string, uri: string): string {
  const realm = challenge.get('realm') ?? '';
  const nonce = challenge.get('nonce') ?? '';
  const algorithm = (challenge.get('algorithm') ?? 'MD5').toUpperCase();
  const qopOffered = (challenge.get('qop') ?? '').split(',').map((q) => q.trim());
  const ha1 = h(algorithm, `${user}:${realm}:${password}`);
  const ha2 = h(algorithm, `${method}:${uri}`);
  let value = `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", algorithm=${algorithm}`;
  if (qopOffered.includes('auth')) {
    const n = (counts.get(nonce) ?? 0) + 1;
    counts.set(nonce, n);
    const nc = n.toString(16).padStart(8, '0');
    const cnonce = randomBytes(8).toString('hex');
    const response = h(algorithm, `${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
    value += `, qop=auth, nc=${nc}, cnonce="${cnonce}", response="${response}"`;
  } else {
    value += `, response="${h(algorithm, `${ha1}:${nonce}:${ha2}`)}"`;
  }
  const opaque = challenge.get('opaque');
  if (opaque !== undefined) value += `, opaque="${opaque}"`;
  return value;
}
