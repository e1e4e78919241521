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
