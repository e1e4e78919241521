/**
 * A copy of `text` that shares no memory with the string it was cut from. V8 represents a
 * substring of 13 or more characters as a slice that keeps its whole parent alive, so a
 * branch or Call-ID kept for 64*T1 (a transaction key, a call timeline) would otherwise keep
 * the entire text of the message it was parsed from. Slicing a concatenation makes V8 flatten
 * it into a fresh string first, which is the copy.
 */
export function detachString(text: string): string {
  return (' ' + text).slice(1);
}

/**
 * 40 bits of two FNV-1a lanes as 10 hex digits, for values that only we compare with our own
 * earlier ones: the proxy's loop-detection hash (RFC 3261 §16.6 step 8) and the To-tags of
 * stateless responses (§8.2.7). A fast non-cryptographic hash serves (SHA-1 with its Hash
 * object was 3–4 % of the CPU of a proxied call).
 */
export function hash40(text: string): string {
  return hash40Joined([text]);
}

/**
 * `hash40(parts.join('\n'))` without building the joined string: the callers hash a few
 * header values per request, and the join was a string to concatenate and flatten each time.
 */
export function hash40Joined(parts: readonly string[]): string {
  let length = parts.length - 1;
  for (const part of parts) length += part.length;
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ length;
  for (let p = 0; p < parts.length; p++) {
    if (p > 0) {
      a = Math.imul(a ^ 10, 0x01000193);
      b = Math.imul(b ^ 10, 0x01000193) ^ (b >>> 15);
    }
    const text = parts[p];
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
    }
  }
  return (a >>> 12).toString(16).padStart(5, '0') + (b >>> 12).toString(16).padStart(5, '0');
}
