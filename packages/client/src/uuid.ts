/**
 * CallKit UUIDs derived from SIP Call-IDs: RFC 9562 (ex-4122) name-based UUID version 5,
 * i.e. SHA-1 over namespace bytes || UTF-8 name, with the version and variant bits set.
 *
 * Why synchronous plain TypeScript: iOS requires the incoming call to be reported to
 * CallKit before the PushKit handler returns, and the UUID is needed for that report.
 * WebCrypto's digest is asynchronous and `node:crypto` does not exist in React Native, so
 * SHA-1 is implemented here (≈60 lines, tested against FIPS 180 and RFC vectors).
 *
 * The namespace is fixed forever: native code that reports calls before JavaScript runs
 * (AppDelegate, FirebaseMessagingService) must derive the very same UUID. See
 * docs/react-native.md for the Swift and Kotlin versions.
 */

/** The pushcall namespace for Call-ID → UUID. Never change it. */
export const PUSHCALL_CALL_ID_NAMESPACE = '9bab9046-1483-4e3c-aa85-1348e0b64f65';

/** RFC 9562 Appendix A namespace IDs (for tests and for callers who want them). */
export const NAMESPACE_DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
export const NAMESPACE_URL = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

/**
 * The name used when a push carries no usable Call-ID (malformed payload). Such a call is
 * reported as "Unknown caller" and ended at once, so one fixed UUID is enough, and native
 * code can derive it too.
 */
export const INVALID_PUSH_NAME = 'pushcall:invalid-push';

/** UTF-8 encoding without TextEncoder (not guaranteed on every JS engine an app embeds). */
export function utf8Encode(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate → U+FFFD, like TextEncoder
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return Uint8Array.from(out);
}

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

/** SHA-1 (FIPS 180-4). Used only for UUID v5, where its weakness does not matter. */
export function sha1(message: Uint8Array): Uint8Array {
  const ml = message.length;
  const total = (((ml + 8) >> 6) + 1) << 6; // padded length, a multiple of 64
  const block = new Uint8Array(total);
  block.set(message);
  block[ml] = 0x80;
  const bitsHi = Math.floor((ml * 8) / 0x100000000);
  const bitsLo = (ml * 8) >>> 0;
  const view = new DataView(block.buffer);
  view.setUint32(total - 8, bitsHi);
  view.setUint32(total - 4, bitsLo);

  let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
  const w = new Int32Array(80);
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getInt32(off + i * 4);
    for (let i = 16; i < 80; i++) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    for (let i = 0; i < 80; i++) {
      let f: number, k: number;
      if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
      else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
      else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
      else { f = b ^ c ^ d; k = 0xca62c1d6; }
      const t = (rotl(a, 5) + f + e + k + w[i]) | 0;
      e = d; d = c; c = rotl(b, 30); b = a; a = t;
    }
    h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0; h4 = (h4 + e) | 0;
  }
  const out = new Uint8Array(20);
  const ov = new DataView(out.buffer);
  [h0, h1, h2, h3, h4].forEach((h, i) => ov.setInt32(i * 4, h));
  return out;
}

const HEX = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return HEX.test(value);
}

/** Parse a textual UUID (any letter case) into its 16 bytes. Throws on bad input. */
export function uuidToBytes(uuid: string): Uint8Array {
  if (!isUuid(uuid)) throw new TypeError(`not a UUID: ${uuid}`);
  const hex = uuid.replace(/-/g, '');
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Format 16 bytes as a lowercase textual UUID. */
export function bytesToUuid(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < 16; i++) {
    s += bytes[i].toString(16).padStart(2, '0');
    if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
  }
  return s;
}

/** RFC 9562 §5.5 UUID version 5 of `name` (UTF-8) in `namespace`. Lowercase. */
export function uuidV5(name: string, namespace: string): string {
  const ns = uuidToBytes(namespace);
  const nm = utf8Encode(name);
  const input = new Uint8Array(ns.length + nm.length);
  input.set(ns);
  input.set(nm, ns.length);
  const hash = sha1(input).subarray(0, 16);
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  return bytesToUuid(hash);
}

/**
 * The CallKit / ConnectionService UUID of a SIP call: v5 of the Call-ID exactly as it
 * appears in the INVITE (Call-IDs are case-sensitive, RFC 3261 §8.1.1.4), lowercase.
 * Compare UUIDs case-insensitively: Swift's `UUID.uuidString` is uppercase.
 */
export function callUuid(callId: string): string {
  return uuidV5(callId, PUSHCALL_CALL_ID_NAMESPACE);
}

/** The UUID used for a push whose payload has no usable Call-ID. */
export const INVALID_PUSH_UUID: string = uuidV5(INVALID_PUSH_NAME, PUSHCALL_CALL_ID_NAMESPACE);

/** Normalise a UUID received from a platform (uppercase from Swift) for map lookups. */
export function normalizeUuid(uuid: string): string {
  return uuid.toLowerCase();
}

/**
 * A random (v4) UUID for outgoing calls started by the app. Uses `crypto.getRandomValues`
 * when the runtime has it, Math.random otherwise (uniqueness, not secrecy, is what matters).
 */
export function randomUuid(): string {
  const bytes = new Uint8Array(16);
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  return bytesToUuid(bytes);
}
