/**
 * Low-level scanners shared by the URI and header parsers (RFC 3261 §25). They work on
 * strings, respect quoted strings (with backslash escapes) and angle brackets, and never
 * allocate more than the pieces they return.
 */

import { SipParseError } from '../errors.js';

const TOKEN_CHARS = /^[A-Za-z0-9\-.!%*_+`'~]+$/;

/** RFC 3261 §25.1 token. */
/** A lookup table for ASCII character classes: 1 for each character of `chars`. */
export function charTable(chars: string): Uint8Array {
  const table = new Uint8Array(128);
  for (const ch of chars) table[ch.charCodeAt(0)] = 1;
  return table;
}

const TOKEN_TABLE = charTable("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~");

/** Whether a UTF-16 code unit is a token character (RFC 3261 §25.1). */
export function isTokenChar(c: number): boolean {
  return c < 128 && TOKEN_TABLE[c] === 1;
}

export function isToken(value: string): boolean {
  return TOKEN_CHARS.test(value);
}

/**
 * Split a header value on commas that are not inside a quoted string or `<...>`
 * (RFC 3261 §7.3.1: a header with a comma-separated list is equivalent to several headers).
 */
export function splitTopLevel(value: string, separator = ','): string[] {
  // Fast path: nothing to split and no quoted string to check.
  if (value.indexOf(separator) === -1 && value.indexOf('"') === -1) {
    const t = value.trim();
    return t.length > 0 ? [t] : [];
  }
  const parts: string[] = [];
  let depthAngle = 0;
  let inQuotes = false;
  let start = 0;
  const sep = separator.charCodeAt(0);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuotes) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inQuotes = false;
    } else if (c === 34) inQuotes = true;
    else if (c === 60 /* < */) depthAngle++;
    else if (c === 62 /* > */) depthAngle = Math.max(0, depthAngle - 1);
    else if (c === sep && depthAngle === 0) {
      parts.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (inQuotes) throw new SipParseError('Unterminated quoted string', value.slice(0, 60));
  parts.push(value.slice(start).trim());
  return parts.filter((p) => p.length > 0);
}

/**
 * Strip SIP linear white space (SP, HTAB, CR, LF) from both ends. Unlike String#trim it
 * keeps U+FEFF, U+00A0 and other Unicode spaces, which are header content (RFC 4475 §3.1.1.2).
 */
export function trimLws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isLws(value.charCodeAt(start))) start++;
  while (end > start && isLws(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

function isLws(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}

/** Remove surrounding quotes and backslash escapes (RFC 3261 §25.1 quoted-pair). */
export function unquote(value: string): string {
  if (value.length < 2 || value.charCodeAt(0) !== 34 || value.charCodeAt(value.length - 1) !== 34) return value;
  const inner = value.slice(1, -1);
  if (!inner.includes('\\')) return inner;
  return inner.replace(/\\(.)/g, '$1');
}

/**
 * Write a quoted-string. CR and LF cannot be carried in one (quoted-pair excludes them,
 * §25.1), so they become spaces rather than ending the header line early (header injection).
 */
export function quote(value: string): string {
  return `"${value.replace(/[\r\n]/g, ' ').replace(/(["\\])/g, '\\$1')}"`;
}

/**
 * An ordered, case-insensitive parameter list (`;name=value` or `;name`). Values are kept
 * exactly as written (including quotes and %-escapes) so a forwarded message is byte-exact;
 * use `get` for the raw value and `unquoted` when the value may be a quoted-string.
 */
export class Params {
  /**
   * Name and value of each parameter, flat: [name0, value0, name1, value1, ...]. One array
   * instead of one pair per parameter: a REGISTER carries a dozen parameters in its Via,
   * From, URIs and Contact, and each pair was two more objects for the young generation.
   */
  private readonly items: Array<string | null>;
  /** Bumped by every change (lets an owner tell whether its text is still current). */
  revision = 0;

  /** `items` is for this class's own use: an already flat list, taken as it is. */
  constructor(entries?: ReadonlyArray<readonly [string, string | null]>, items?: Array<string | null>) {
    if (items !== undefined) this.items = items;
    else {
      this.items = [];
      if (entries !== undefined) for (const [name, value] of entries) this.items.push(name, value);
    }
  }

  private static fromItems(items: Array<string | null>): Params {
    return new Params(undefined, items);
  }

  static parse(text: string, separator = ';'): Params {
    const n = text.length;
    if (n === 0) return Params.fromItems([]);
    // Sized for the separators present and trimmed at the end: pushing into [] grows a
    // backing store for 17 elements at once, the bulk of what parsing a header allocated.
    let slots = 2;
    for (let i = text.indexOf(separator); i !== -1; i = text.indexOf(separator, i + 1)) slots += 2;
    const items: Array<string | null> = new Array(slots);
    let k = 0;
    // One pass: split on separators outside quoted strings and <...> (as splitTopLevel),
    // and on the first '=' of each part; empty parts are skipped.
    // Fast path: no quoted strings or angle brackets, so every separator counts.
    if (text.indexOf('"') === -1 && text.indexOf('<') === -1) {
      let start = 0;
      let nextEq = -1; // first '=' at or after start (n when none): each '=' is found once
      while (start <= n) {
        let end = text.indexOf(separator, start);
        if (end === -1) end = n;
        if (nextEq < start) {
          nextEq = text.indexOf('=', start);
          if (nextEq === -1) nextEq = n;
        }
        const eq = nextEq < end ? nextEq : -1;
        if (eq === -1) {
          const name = text.slice(start, end).trim();
          if (name.length > 0) {
            items[k++] = name;
            items[k++] = null;
          }
        } else {
          const name = text.slice(start, eq).trim();
          if (name.length === 0) throw new SipParseError('Malformed parameter', text.slice(start, end).slice(0, 60));
          items[k++] = name;
          items[k++] = text.slice(eq + 1, end).trim();
        }
        start = end + 1;
      }
      items.length = k;
      return Params.fromItems(items);
    }
    const sep = separator.charCodeAt(0);
    let start = 0;
    let eq = -1;
    let depthAngle = 0;
    let inQuotes = false;
    for (let i = 0; i <= n; i++) {
      const c = i < n ? text.charCodeAt(i) : sep;
      if (inQuotes && i < n) {
        if (c === 92 /* \\ */) i++;
        else if (c === 34 /* " */) inQuotes = false;
        continue;
      }
      if (c === 34 && i < n) inQuotes = true;
      else if (c === 60 /* < */) depthAngle++;
      else if (c === 62 /* > */) depthAngle = depthAngle > 0 ? depthAngle - 1 : 0;
      else if (c === 61 /* = */ && eq === -1 && depthAngle === 0) eq = i;
      else if (c === sep && (depthAngle === 0 || i === n)) {
        if (eq === -1) {
          const name = text.slice(start, i).trim();
          if (name.length > 0) {
            items[k++] = name;
            items[k++] = null;
          }
        } else {
          const name = text.slice(start, eq).trim();
          if (name.length === 0) throw new SipParseError('Malformed parameter', text.slice(start, i).slice(0, 60));
          items[k++] = name;
          items[k++] = text.slice(eq + 1, i).trim();
        }
        start = i + 1;
        eq = -1;
      }
    }
    if (inQuotes) throw new SipParseError('Unterminated quoted string', text.slice(0, 60));
    items.length = k;
    return Params.fromItems(items);
  }

  /** Position of the name in `items` (even), or -1. */
  private index(name: string): number {
    const lname = name.toLowerCase();
    const items = this.items;
    for (let i = 0; i < items.length; i += 2) {
      if ((items[i] as string).toLowerCase() === lname) return i;
    }
    return -1;
  }

  has(name: string): boolean {
    return this.index(name) !== -1;
  }

  /** Raw value; `null` for a flag parameter (`;lr`), `undefined` when absent. */
  get(name: string): string | null | undefined {
    const i = this.index(name);
    return i === -1 ? undefined : this.items[i + 1];
  }

  unquoted(name: string): string | undefined {
    const value = this.get(name);
    return value == null ? undefined : unquote(value);
  }

  /** Number of times `name` occurs (duplicate params are an error in some headers). */
  count(name: string): number {
    const lname = name.toLowerCase();
    let n = 0;
    for (let i = 0; i < this.items.length; i += 2) if ((this.items[i] as string).toLowerCase() === lname) n++;
    return n;
  }

  /** The first of `lowerNames` that occurs more than once, in one pass (names lower-case). */
  firstRepeated(lowerNames: readonly string[]): string | undefined {
    let seen: string[] | undefined;
    for (let i = 0; i < this.items.length; i += 2) {
      const name = (this.items[i] as string).toLowerCase();
      if (!lowerNames.includes(name)) continue;
      if (seen?.includes(name)) return name;
      (seen ??= []).push(name);
    }
    return undefined;
  }

  set(name: string, value: string | null): this {
    const i = this.index(name);
    if (i === -1) this.items.push(name, value);
    else this.items[i + 1] = value;
    this.revision++;
    return this;
  }

  delete(name: string): boolean {
    const i = this.index(name);
    if (i === -1) return false;
    this.items.splice(i, 2);
    this.revision++;
    return true;
  }

  /** Remove every parameter whose lower-cased name satisfies `predicate`. */
  deleteWhere(predicate: (lowerName: string) => boolean): number {
    let removed = 0;
    for (let i = this.items.length - 2; i >= 0; i -= 2) {
      if (predicate((this.items[i] as string).toLowerCase())) {
        this.items.splice(i, 2);
        removed++;
      }
    }
    if (removed > 0) this.revision++;
    return removed;
  }

  names(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.items.length; i += 2) out.push(this.items[i] as string);
    return out;
  }

  get size(): number {
    return this.items.length / 2;
  }

  clone(): Params {
    return Params.fromItems(this.items.slice());
  }

  /** `;a=1;b` (leading separator included when non-empty). */
  toString(separator = ';'): string {
    let out = '';
    const items = this.items;
    for (let i = 0; i < items.length; i += 2) {
      const v = items[i + 1];
      out += v === null ? `${separator}${items[i]}` : `${separator}${items[i]}=${v}`;
    }
    return out;
  }

  *[Symbol.iterator](): IterableIterator<[string, string | null]> {
    for (let i = 0; i < this.items.length; i += 2) yield [this.items[i] as string, this.items[i + 1]];
  }
}

/** Decode RFC 3261 %HH escapes; malformed escapes are a parse error. */
export function unescapePercent(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    // decodeURIComponent rejects escapes that are not UTF-8; fall back to byte-wise latin1.
    if (/%(?![0-9A-Fa-f]{2})/.test(value)) throw new SipParseError('Malformed %-escape', value.slice(0, 60));
    return value.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

/** Escape everything outside RFC 3261 `unreserved` plus the given extra allowed characters. */
export function escapePercent(value: string, allowed: string): string {
  let out = '';
  for (const ch of value) {
    if (/[A-Za-z0-9\-_.!~*'()]/.test(ch) || allowed.includes(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
