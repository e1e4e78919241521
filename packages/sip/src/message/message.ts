/**
 * SIP requests and responses (RFC 3261 §7). Headers are kept as written, in order, and
 * parsed into typed values only when someone reads them (cached until the header changes).
 * Mutations go through explicit setters so serialization never has to guess what changed.
 */

import { SipParseError } from '../errors.js';
import {
  AuthValue,
  CSeq,
  ContactValue,
  FeatureCapsValue,
  NameAddr,
  ReasonValue,
  Via,
  canonicalHeaderName,
  normalizeHeaderName,
  parseTokenList,
  splitHeaderValue,
} from './headers.js';
import { type Uri, parseUri } from './uri.js';

export interface HeaderField {
  /** As written on the wire (or canonical when pushcall wrote it). */
  name: string;
  /** Lower-case full name (compact forms expanded). */
  key: string;
  value: string;
}

const EMPTY_BODY = Buffer.alloc(0);
/** Cached "parsed, and absent" (e.g. no Max-Forwards header). */
const NONE = Symbol('none');

/**
 * Where a parsed message's header block came from (set by parseMessage for clean CRLF
 * input without folding). While the start line, every header field and the body length
 * are unchanged, toBuffer() copies these bytes instead of re-encoding the headers.
 */
export interface HeaderSource {
  data: Buffer;
  /** First byte of the start line. */
  start: number;
  /** One past the CRLFCRLF that ends the header block. */
  end: number;
  startLine: string;
  /** The header names and values as parsed, interleaved. */
  texts: string[];
  /** The single Content-Length header's value. */
  contentLength: number;
}

export abstract class SipMessage {
  readonly headers: HeaderField[];
  body: Buffer;
  /** Parsed typed values by header key (a plain object: cheaper than a Map here). */
  private cache: Record<string, unknown> | null = null;
  private source: HeaderSource | null = null;

  protected constructor(headers: HeaderField[], body: Buffer) {
    this.headers = headers;
    this.body = body;
  }

  abstract get isRequest(): boolean;
  abstract startLine(): string;

  // ----- raw access ---------------------------------------------------------------------

  has(name: string): boolean {
    const key = normalizeHeaderName(name);
    for (const h of this.headers) if (h.key === key) return true;
    return false;
  }

  /** First header line's raw value. */
  get(name: string): string | undefined {
    const key = normalizeHeaderName(name);
    for (const h of this.headers) if (h.key === key) return h.value;
    return undefined;
  }

  /** Every header line's raw value, in order. */
  getAll(name: string): string[] {
    const key = normalizeHeaderName(name);
    const out: string[] = [];
    for (const h of this.headers) if (h.key === key) out.push(h.value);
    return out;
  }

  /** All list elements across lines (RFC 3261 §7.3.1 comma-joined values split). */
  values(name: string): string[] {
    const key = normalizeHeaderName(name);
    const out: string[] = [];
    for (const h of this.headers) if (h.key === key) out.push(...splitHeaderValue(key, h.value));
    return out;
  }

  /** Replace every line of `name` with one line (or remove when value is undefined). */
  set(name: string, value: string | undefined): this {
    const key = normalizeHeaderName(name);
    const first = this.headers.findIndex((h) => h.key === key);
    this.removeKey(key);
    if (value !== undefined) {
      const field = { name: name.length === 1 ? canonicalHeaderName(key) : name, key, value };
      if (first === -1) this.headers.push(field);
      else this.headers.splice(first, 0, field);
    }
    this.invalidate(key);
    return this;
  }

  append(name: string, value: string): this {
    const key = normalizeHeaderName(name);
    this.headers.push({ name, key, value });
    this.invalidate(key);
    return this;
  }

  /** Insert above every existing line of the same header (Via, Record-Route), or first. */
  prepend(name: string, value: string): this {
    const key = normalizeHeaderName(name);
    const first = this.headers.findIndex((h) => h.key === key);
    const field = { name, key, value };
    if (first === -1) this.headers.splice(this.isRequest ? 0 : 0, 0, field);
    else this.headers.splice(first, 0, field);
    this.invalidate(key);
    return this;
  }

  remove(name: string): this {
    const key = normalizeHeaderName(name);
    this.removeKey(key);
    this.invalidate(key);
    return this;
  }

  /**
   * Remove the first list element of a header (the top Via, the top Route), splitting a
   * comma-joined line when needed and leaving the rest of it byte-exact.
   */
  removeFirstValue(name: string): string | undefined {
    const key = normalizeHeaderName(name);
    const index = this.headers.findIndex((h) => h.key === key);
    if (index === -1) return undefined;
    const parts = splitHeaderValue(key, this.headers[index].value);
    const removed = parts.shift();
    if (parts.length === 0) this.headers.splice(index, 1);
    else this.headers[index] = { ...this.headers[index], value: parts.join(', ') };
    this.invalidate(key);
    return removed;
  }

  private removeKey(key: string): void {
    for (let i = this.headers.length - 1; i >= 0; i--) if (this.headers[i].key === key) this.headers.splice(i, 1);
  }

  private invalidate(key: string): void {
    const cache = this.cache;
    if (cache === null) return;
    if (key in cache) cache[key] = undefined;
    if (key === 'via' && 'via:top' in cache) cache['via:top'] = undefined;
  }

  protected cached<T>(key: string, parse: () => T): T {
    let cache = this.cache;
    if (cache === null) cache = this.cache = {};
    else {
      const hit = cache[key];
      if (hit !== undefined) return (hit === NONE ? undefined : hit) as T;
    }
    const value = parse();
    cache[key] = value === undefined ? NONE : value;
    return value;
  }

  // ----- typed access (read-only values; use setters to change) -------------------------

  get vias(): Via[] {
    return this.cached('via', () => this.values('via').map((v) => Via.parse(v)));
  }

  /**
   * Top Via; throws SipParseError when missing. Only the top value is parsed (the
   * transaction layer reads it for every message); `vias` parses them all.
   */
  get via(): Via {
    const all = this.cache?.via as Via[] | undefined;
    if (all !== undefined) {
      if (all.length === 0) throw new SipParseError('Missing Via header');
      return all[0];
    }
    return this.cached('via:top', () => {
      for (const h of this.headers) {
        if (h.key !== 'via') continue;
        const values = splitHeaderValue('via', h.value);
        if (values.length > 0) return Via.parse(values[0]);
      }
      throw new SipParseError('Missing Via header');
    });
  }

  get from(): NameAddr {
    return this.cached('from', () => this.requiredNameAddr('from', 'From'));
  }

  get to(): NameAddr {
    return this.cached('to', () => this.requiredNameAddr('to', 'To'));
  }

  get callId(): string {
    return this.cached('call-id', () => {
      const v = this.single('call-id', 'Call-ID').trim();
      if (v.length === 0) throw new SipParseError('Missing Call-ID header');
      return v;
    });
  }

  get cseq(): CSeq {
    return this.cached('cseq', () => {
      const v = this.single('cseq', 'CSeq');
      return CSeq.parse(v);
    });
  }

  /** Max-Forwards, or undefined when absent; throws on a malformed value. */
  get maxForwards(): number | undefined {
    return this.cached('max-forwards', () => {
      const all = this.getAll('max-forwards');
      if (all.length === 0) return undefined;
      if (all.length > 1) throw new SipParseError('Duplicate Max-Forwards header');
      // 1*DIGIT, leading zeros allowed (RFC 4475 §3.1.1.1 "0068"), at most 255.
      const v = all[0].trim();
      if (!/^\d{1,10}$/.test(v) || Number(v) > 255) throw new SipParseError('Malformed Max-Forwards header', v.slice(0, 20));
      return Number(v);
    });
  }

  /** Contact elements; `'*'` for the wildcard (valid only in REGISTER). */
  get contacts(): ContactValue[] | '*' {
    return this.cached('contact', () => {
      const values = this.values('contact');
      if (values.length === 1 && values[0] === '*') return '*' as const;
      if (values.includes('*')) throw new SipParseError('Contact "*" mixed with other contacts');
      return values.map((v) => ContactValue.parse(v));
    });
  }

  get routes(): NameAddr[] {
    return this.cached('route', () => this.values('route').map((v) => NameAddr.parse(v, 'Route header')));
  }

  get recordRoutes(): NameAddr[] {
    return this.cached('record-route', () => this.values('record-route').map((v) => NameAddr.parse(v, 'Record-Route header')));
  }

  get paths(): NameAddr[] {
    return this.cached('path', () => this.values('path').map((v) => NameAddr.parse(v, 'Path header')));
  }

  /** Expires header (RFC 3261 §20.19) in seconds, or undefined. */
  get expires(): number | undefined {
    return this.cached('expires', () => this.optionalSeconds('expires', 'Expires'));
  }

  get minExpires(): number | undefined {
    return this.cached('min-expires', () => this.optionalSeconds('min-expires', 'Min-Expires'));
  }

  authHeaders(name: 'authorization' | 'proxy-authorization' | 'www-authenticate' | 'proxy-authenticate'): AuthValue[] {
    return this.cached(name, () => this.getAll(name).map((v) => AuthValue.parse(v, canonicalHeaderName(name))));
  }

  get supported(): string[] {
    return this.cached('supported', () => parseTokenList(this.values('supported')));
  }

  get require(): string[] {
    return this.cached('require', () => parseTokenList(this.values('require')));
  }

  get proxyRequire(): string[] {
    return this.cached('proxy-require', () => parseTokenList(this.values('proxy-require')));
  }

  get allow(): string[] {
    return this.cached('allow', () => parseTokenList(this.values('allow')));
  }

  get featureCaps(): FeatureCapsValue[] {
    return this.cached('feature-caps', () => this.getAll('feature-caps').map((v) => FeatureCapsValue.parse(v)));
  }

  get reasons(): ReasonValue[] {
    return this.cached('reason', () => this.values('reason').map((v) => ReasonValue.parse(v)));
  }

  get userAgent(): string | undefined {
    return this.get('user-agent');
  }

  get contentType(): string | undefined {
    return this.get('content-type')?.trim();
  }

  // ----- helpers ---------------------------------------------------------------------------

  private single(key: string, display: string): string {
    let found: string | undefined;
    for (const h of this.headers) {
      if (h.key !== key) continue;
      if (found !== undefined) throw new SipParseError(`Duplicate ${display} header`);
      found = h.value;
    }
    if (found === undefined) throw new SipParseError(`Missing ${display} header`);
    return found;
  }

  private requiredNameAddr(key: string, display: string): NameAddr {
    return NameAddr.parse(this.single(key, display), `${display} header`);
  }

  private optionalSeconds(key: string, display: string): number | undefined {
    const all = this.getAll(key);
    if (all.length === 0) return undefined;
    if (all.length > 1) throw new SipParseError(`Duplicate ${display} header`);
    const v = all[0].trim();
    if (!/^\d{1,10}$/.test(v)) throw new SipParseError(`Malformed ${display} header`, v.slice(0, 20));
    return Number(v);
  }

  /** Serialize with a Content-Length that matches the body (RFC 3261 §20.14). */
  /** @internal Called by parseMessage; see HeaderSource. */
  setSource(source: HeaderSource): void {
    this.source = source;
  }

  private sourceIntact(src: HeaderSource): boolean {
    if (this.body.length !== src.contentLength) return false;
    // Same names and values in the same order give the same bytes, whichever objects hold them.
    const headers = this.headers;
    const texts = src.texts;
    if (headers.length * 2 !== texts.length) return false;
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i];
      if (h.name !== texts[2 * i] || h.value !== texts[2 * i + 1]) return false;
    }
    return this.startLine() === src.startLine;
  }

  toBuffer(): Buffer {
    const src = this.source;
    if (src !== null) {
      if (this.sourceIntact(src)) {
        const headLength = src.end - src.start;
        const out = Buffer.allocUnsafe(headLength + this.body.length);
        src.data.copy(out, 0, src.start, src.end);
        if (this.body.length > 0) this.body.copy(out, headLength);
        return out;
      }
      this.source = null; // changed: re-encode from now on, and let go of the bytes
    }
    let head = `${this.startLine()}\r\n`;
    let wroteLength = false;
    for (const h of this.headers) {
      if (h.key === 'content-length') {
        if (wroteLength) continue;
        head += `${h.name}: ${this.body.length}\r\n`;
        wroteLength = true;
      } else head += `${h.name}: ${h.value}\r\n`;
    }
    if (!wroteLength) head += `Content-Length: ${this.body.length}\r\n`;
    head += '\r\n';
    // One allocation: headers and body written into the same buffer.
    const headLength = Buffer.byteLength(head, 'utf8');
    const out = Buffer.allocUnsafe(headLength + this.body.length);
    out.write(head, 0, headLength, headLength === head.length ? 'latin1' : 'utf8');
    if (this.body.length > 0) this.body.copy(out, headLength);
    return out;
  }

  toString(): string {
    return this.toBuffer().toString('utf8');
  }

  protected cloneHeaders(): HeaderField[] {
    return this.headers.map((h) => ({ ...h }));
  }
}

export class SipRequest extends SipMessage {
  method: string;
  private uriRaw: string;
  private uriParsed: Uri | undefined;
  version: string;

  constructor(method: string, uri: string | Uri, headers: HeaderField[] = [], body: Buffer = EMPTY_BODY, version = 'SIP/2.0') {
    super(headers, body);
    this.method = method;
    if (typeof uri === 'string') {
      this.uriRaw = uri;
      this.uriParsed = undefined;
    } else {
      this.uriRaw = uri.toString();
      this.uriParsed = uri;
    }
    this.version = version;
  }

  get isRequest(): true {
    return true;
  }

  /** The Request-URI (parsed on first access). */
  get uri(): Uri {
    if (this.uriParsed === undefined) this.uriParsed = parseUri(this.uriRaw);
    return this.uriParsed;
  }

  set uri(value: Uri) {
    this.uriParsed = value;
    this.uriRaw = value.toString();
  }

  get uriText(): string {
    return this.uriParsed ? this.uriParsed.toString() : this.uriRaw;
  }

  startLine(): string {
    return `${this.method} ${this.uriText} ${this.version}`;
  }

  clone(): SipRequest {
    return new SipRequest(this.method, this.uriParsed ? this.uriParsed.clone() : this.uriRaw, this.cloneHeaders(), this.body, this.version);
  }
}

export class SipResponse extends SipMessage {
  status: number;
  reason: string;
  version: string;

  constructor(status: number, reason: string, headers: HeaderField[] = [], body: Buffer = EMPTY_BODY, version = 'SIP/2.0') {
    super(headers, body);
    this.status = status;
    this.reason = reason;
    this.version = version;
  }

  get isRequest(): false {
    return false;
  }

  startLine(): string {
    return `${this.version} ${this.status} ${this.reason}`;
  }

  clone(): SipResponse {
    return new SipResponse(this.status, this.reason, this.cloneHeaders(), this.body, this.version);
  }
}

export function isRequest(message: SipMessage): message is SipRequest {
  return message.isRequest;
}

export function header(name: string, value: string): HeaderField {
  return { name, key: normalizeHeaderName(name), value };
}
