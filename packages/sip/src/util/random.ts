import { randomBytes } from 'node:crypto';

// Identifiers drawn from a pooled CSPRNG buffer: tags and branches need to be unguessable
// (RFC 3261 §19.3 asks for at least 32 bits of randomness), and this is on the hot path.
let pool = Buffer.alloc(0);
let offset = 0;

export function randomToken(byteLength = 8): string {
  if (offset + byteLength > pool.length) {
    pool = randomBytes(4096);
    offset = 0;
  }
  // Hex straight from the pool: a subarray per token was one more Buffer object to make.
  const start = offset;
  offset += byteLength;
  return pool.toString('hex', start, offset);
}

/** RFC 3261 §8.1.1.7: branch ids start with the magic cookie. */
export function newBranch(): string {
  return `z9hG4bK${randomToken(10)}`;
}

export function newTag(): string {
  return randomToken(6);
}

export function newCallId(host?: string): string {
  return host ? `${randomToken(12)}@${host}` : randomToken(16);
}
