import { timingSafeEqual } from 'node:crypto';

/** Constant-time comparison of a secret-derived string (a MAC, a token) with the expected one. */
export function sameSecret(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
