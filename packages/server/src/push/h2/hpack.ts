/**
 * HPACK (RFC 7541) for a client that sends small requests and reads small responses.
 *
 * The encoder never inserts into the dynamic table: every field is either an indexed static
 * entry or a literal without indexing (never indexed for credentials), and the first block
 * announces a dynamic table of size 0. That is always allowed (RFC 7541 §6.2.2, §6.3), keeps
 * the encoder stateless, and makes the server's SETTINGS_HEADER_TABLE_SIZE irrelevant to us.
 * The decoder implements every representation, the dynamic table with eviction and Huffman.
 *
 * Strings are latin1 both ways, as in node:http2: one byte per char, so lengths are cheap.
 */

import { ErrorCode, Http2Error, Http2ProtocolError } from './frames.js';
import { huffmanDecode, huffmanMaxDecodedLength } from './huffman.js';

export type HeaderField = [name: string, value: string];

/** RFC 7541 Appendix A; index 0 is unused. */
export const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  ['', ''],
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length - 1;

/** RFC 7541 §4.1: an entry's size is its name and value lengths plus 32. */
const ENTRY_OVERHEAD = 32;

interface StaticName {
  index: number;
  /** Full name+value matches, or null when the name has no entry with a value. */
  values: Map<string, number> | null;
}
const STATIC_BY_NAME = new Map<string, StaticName>();
for (let i = 1; i <= STATIC_COUNT; i++) {
  const [name, value] = STATIC_TABLE[i];
  let e = STATIC_BY_NAME.get(name);
  if (e === undefined) STATIC_BY_NAME.set(name, (e = { index: i, values: null }));
  if (value !== '') (e.values ??= new Map()).set(value, i);
}

/** Credentials go out as "never indexed" so no intermediary ever puts them in a table (RFC 7541 §7.1.3). */
const SENSITIVE = new Set(['authorization', 'proxy-authorization', 'cookie']);

/** Writes value with an N-bit prefix whose high bits are `flags` (RFC 7541 §5.1); returns the new offset. */
export function writeInteger(buf: Uint8Array, off: number, prefixBits: number, flags: number, value: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    buf[off++] = flags | value;
    return off;
  }
  buf[off++] = flags | max;
  value -= max;
  while (value >= 128) {
    buf[off++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[off++] = value;
  return off;
}

function writeString(buf: Buffer, off: number, s: string): number {
  const n = s.length;
  off = writeInteger(buf, off, 7, 0, n); // H = 0: raw octets
  if (n > 48) return off + buf.write(s, off, n, 'latin1');
  // A JS loop beats the C++ round trip for the short strings we send.
  for (let i = 0; i < n; i++) buf[off + i] = s.charCodeAt(i);
  return off + n;
}

function isLowerCaseToken(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    // RFC 9113 §8.2.1: no upper case, no controls, no space/DEL/non-ASCII; ':' only to start a pseudo-header.
    if ((c >= 0x41 && c <= 0x5a) || c <= 0x20 || c >= 0x7f || (c === 0x3a && i > 0)) return false;
  }
  return true;
}

/** Stateless request-header encoder (see the file comment). */
export class HpackEncoder {
  /** RFC 7541 §4.2: the first block tells the peer our table size is 0, so later SETTINGS never require an update. */
  private announced = false;

  /** Bytes that encode(headers) may write at most: per field, a type byte plus two 5-byte lengths. */
  static maxLength(headers: ReadonlyArray<readonly [string, string]>): number {
    let n = 1;
    for (let i = 0; i < headers.length; i++) n += headers[i][0].length + headers[i][1].length + 11;
    return n;
  }

  /**
   * Encodes headers at buf[off...] (room for maxLength(headers) required) and returns the end
   * offset. Throws Http2Error H2_ERR_HEADER on a name HTTP/2 forbids (RFC 9113 §8.2.1).
   */
  encode(headers: ReadonlyArray<readonly [string, string]>, buf: Buffer, off: number): number {
    const announce = !this.announced;
    if (announce) buf[off++] = 0x20; // dynamic table size update to 0 (RFC 7541 §6.3)
    for (let i = 0; i < headers.length; i++) {
      const name = headers[i][0];
      const value = headers[i][1];
      const st = STATIC_BY_NAME.get(name);
      if (st !== undefined) {
        const full = st.values === null ? undefined : st.values.get(value);
        if (full !== undefined) {
          off = writeInteger(buf, off, 7, 0x80, full); // indexed field (§6.1)
          continue;
        }
        // Literal with an indexed name: never indexed (§6.2.3) or without indexing (§6.2.2).
        off = writeInteger(buf, off, 4, SENSITIVE.has(name) ? 0x10 : 0x00, st.index);
      } else {
        if (!isLowerCaseToken(name)) {
          throw new Http2Error('H2_ERR_HEADER', `invalid HTTP/2 header name ${JSON.stringify(name)} (must be a lower-case token)`);
        }
        buf[off++] = 0x00; // literal without indexing, new name (§6.2.2)
        off = writeString(buf, off, name);
      }
      off = writeString(buf, off, value);
    }
    if (announce) this.announced = true; // only once the block is complete (encode may throw)
    return off;
  }
}

function compressionError(message: string): Http2ProtocolError {
  return new Http2ProtocolError(ErrorCode.COMPRESSION_ERROR, `HPACK: ${message}`);
}

/**
 * HPACK decoder with its dynamic table (RFC 7541 §2.3.2, §4). One per connection; blocks must
 * be decoded in the order received, whether or not their stream is still wanted.
 */
export class HpackDecoder {
  /** SETTINGS_HEADER_TABLE_SIZE we advertised: the most a size update may ask for (§6.3). */
  readonly maxTableSize: number;
  /** Current limit, lowered or raised by size updates within maxTableSize. */
  private limit: number;
  private size = 0;
  // Ring buffer of entries, oldest at `head`; capacity a power of two.
  private names: string[] = new Array<string>(16).fill('');
  private values: string[] = new Array<string>(16).fill('');
  private head = 0;
  private count = 0;
  /** Cursor during decode (a field, so helpers can return one value without tuples). */
  private pos = 0;
  private scratch = Buffer.allocUnsafe(256);
  /** RFC 9113 §6.5.2 size (names + values + 32 per field) of the last decoded block. */
  headerListSize = 0;

  constructor(maxTableSize = 4096) {
    this.maxTableSize = maxTableSize;
    this.limit = maxTableSize;
  }

  /** Number of entries in the dynamic table (for tests and metrics). */
  get tableLength(): number {
    return this.count;
  }

  /** Size in octets of the dynamic table (RFC 7541 §4.1). */
  get tableSize(): number {
    return this.size;
  }

  /** Dynamic entry i (0 = newest) as [name, value]. */
  entry(i: number): HeaderField {
    const at = (this.head + this.count - 1 - i) & (this.names.length - 1);
    return [this.names[at], this.values[at]];
  }

  /** Decodes one complete header block; throws Http2ProtocolError (COMPRESSION_ERROR) when malformed. */
  decode(buf: Buffer, start: number, end: number): HeaderField[] {
    const out: HeaderField[] = [];
    let listSize = 0;
    let fieldsSeen = false;
    this.pos = start;
    while (this.pos < end) {
      const b = buf[this.pos];
      let name: string;
      let value: string;
      if (b >= 0x80) {
        // §6.1 indexed field
        const index = this.readInteger(buf, end, 7);
        if (index === 0) throw compressionError('index 0');
        name = this.nameAt(index);
        value = this.valueAt(index);
      } else if (b >= 0x40) {
        // §6.2.1 literal with incremental indexing
        const index = this.readInteger(buf, end, 6);
        name = index === 0 ? this.readString(buf, end) : this.nameAt(index);
        value = this.readString(buf, end);
        this.insert(name, value);
      } else if (b >= 0x20) {
        // §6.3 dynamic table size update: only before the first field of a block (§4.2)
        if (fieldsSeen) throw compressionError('table size update after a header field');
        const size = this.readInteger(buf, end, 5);
        if (size > this.maxTableSize) throw compressionError(`table size update ${size} above ${this.maxTableSize}`);
        this.limit = size;
        this.evict(0);
        continue;
      } else {
        // §6.2.2 without indexing (0000) and §6.2.3 never indexed (0001): same decoding for a client
        const index = this.readInteger(buf, end, 4);
        name = index === 0 ? this.readString(buf, end) : this.nameAt(index);
        value = this.readString(buf, end);
      }
      fieldsSeen = true;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      out.push([name, value]);
    }
    this.headerListSize = listSize;
    return out;
  }

  private readInteger(buf: Uint8Array, end: number, prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = buf[this.pos++] & max;
    if (value < max) return value;
    let shift = 1;
    for (;;) {
      if (this.pos >= end) throw compressionError('truncated integer');
      const b = buf[this.pos++];
      value += (b & 0x7f) * shift;
      if ((b & 0x80) === 0) break;
      shift *= 128;
      // Nothing in a header block needs more than 2^32; bounds the loop against endless 0x80 bytes.
      if (shift > 2 ** 28) throw compressionError('integer overflow');
    }
    return value;
  }

  private readString(buf: Buffer, end: number): string {
    if (this.pos >= end) throw compressionError('truncated string');
    const huffman = buf[this.pos] >= 0x80;
    const len = this.readInteger(buf, end, 7);
    const start = this.pos;
    if (len > end - start) throw compressionError('string longer than the block');
    this.pos = start + len;
    if (len === 0) return '';
    if (!huffman) return buf.toString('latin1', start, start + len);
    const need = huffmanMaxDecodedLength(len);
    if (this.scratch.length < need) this.scratch = Buffer.allocUnsafe(Math.max(need, this.scratch.length * 2));
    const n = huffmanDecode(buf, start, start + len, this.scratch, 0);
    if (n < 0) throw compressionError('invalid Huffman string');
    return this.scratch.toString('latin1', 0, n);
  }

  private nameAt(index: number): string {
    if (index <= STATIC_COUNT) return STATIC_TABLE[index][0];
    return this.names[this.dynamicSlot(index)];
  }

  private valueAt(index: number): string {
    if (index <= STATIC_COUNT) return STATIC_TABLE[index][1];
    return this.values[this.dynamicSlot(index)];
  }

  /** Ring slot of index (> 61): 62 is the newest entry (RFC 7541 §2.3.3). */
  private dynamicSlot(index: number): number {
    const i = index - STATIC_COUNT - 1;
    if (i >= this.count) throw compressionError(`index ${index} beyond the table`);
    return (this.head + this.count - 1 - i) & (this.names.length - 1);
  }

  /** §4.4: evict until the new entry fits; an entry larger than the limit empties the table and is not added. */
  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    this.evict(entrySize);
    if (entrySize > this.limit) return;
    if (this.count === this.names.length) this.grow();
    const at = (this.head + this.count) & (this.names.length - 1);
    this.names[at] = name;
    this.values[at] = value;
    this.count++;
    this.size += entrySize;
  }

  private evict(room: number): void {
    while (this.count > 0 && this.size + room > this.limit) {
      const at = this.head;
      this.size -= this.names[at].length + this.values[at].length + ENTRY_OVERHEAD;
      this.names[at] = '';
      this.values[at] = '';
      this.head = (this.head + 1) & (this.names.length - 1);
      this.count--;
    }
  }

  private grow(): void {
    const cap = this.names.length;
    const names = new Array<string>(cap * 2).fill('');
    const values = new Array<string>(cap * 2).fill('');
    for (let i = 0; i < this.count; i++) {
      const at = (this.head + i) & (cap - 1);
      names[i] = this.names[at];
      values[i] = this.values[at];
    }
    this.names = names;
    this.values = values;
    this.head = 0;
  }
}
