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
  readonly name: string;
  /** Lower-case full name (compact forms expanded). */
  readonly key: string;
  readonly value: string;
}

const EMPTY_BODY = Buffer.alloc(0);
/** Cached "parsed, and absent" (e.g. no Max-Forwards header). */
const NONE = Symbol('none');

/**
 * Where a parsed message's header block came from (set by parseMessage for clean CRLF
 * input without folding, whose start line re-encodes to the same text). While the start
 * line, the header list and the body are unchanged, toBuffer() returns these bytes instead
 * of re-encoding the headers. Header fields are immutable and every change to the list goes
 * through a setter that bumps `revision`, so "unchanged" is two compares, not a scan.
 */
export interface HeaderSource {
  data: Buffer;
  /** First byte of the start line. */
  start: number;
  /** One past the CRLFCRLF that ends the header block. */
  end: number;
  /** The start line's parts as parsed: method, Request-URI text, version (or version, status, reason). */
  line: readonly [unknown, unknown, unknown];
  body: Buffer;
}

export abstract class SipMessage {
  /** In order, as written. Change them through set/append/prepend/remove only. */
  readonly headers: readonly HeaderField[];
  body: Buffer;
  /** Bumped by every change to the header list (see HeaderSource). */
  private revision = 0;
  private source: HeaderSource | null = null;
  // Typed values of the headers every message has read (by the parser, the transaction
  // layer and the core): own fields, so the hot path does no keyed lookups.
  private viaTop: Via | undefined = undefined;
  private fromValue: NameAddr | undefined = undefined;
  private toValue: NameAddr | undefined = undefined;
  private callIdValue: string | undefined = undefined;
  private cseqValue: CSeq | undefined = undefined;
  private maxForwardsValue: number | typeof NONE | undefined = undefined;
  /** The other typed values, by header key. */
  private cache: Map<string, unknown> | null = null;

  protected constructor(headers: HeaderField[], body: Buffer) {
    this.headers = headers;
    this.body = body;
  }

  abstract get isRequest(): boolean;
  abstract startLine(): string;
  /** The start line's parts, compared with HeaderSource.line. */
  protected abstract startLineParts(): readonly [unknown, unknown, unknown];

  /** The header list, for this class's mutators. */
  private get list(): HeaderField[] {
    return this.headers as HeaderField[];
  }

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
    // Usually one line: its split array (always a new one) is the answer as it is.
    let out: string[] | undefined;
    for (const h of this.headers) {
      if (h.key !== key) continue;
      const parts = splitHeaderValue(key, h.value);
      if (out === undefined) out = parts;
      else for (const part of parts) out.push(part);
    }
    return out ?? [];
  }

  /** Replace every line of `name` with one line (or remove when value is undefined). */
  set(name: string, value: string | undefined): this {
    const key = normalizeHeaderName(name);
    const first = this.headers.findIndex((h) => h.key === key);
    this.removeKey(key);
    if (value !== undefined) {
      const field = { name: name.length === 1 ? canonicalHeaderName(key) : name, key, value };
      if (first === -1) this.list.push(field);
      else this.list.splice(first, 0, field);
    }
    this.invalidate(key);
    return this;
  }

  append(name: string, value: string): this {
    const key = normalizeHeaderName(name);
    this.list.push({ name, key, value });
    this.invalidate(key);
    return this;
  }

  /** Insert above every existing line of the same header (Via, Record-Route), or first. */
  prepend(name: string, value: string): this {
    const key = normalizeHeaderName(name);
    const first = this.headers.findIndex((h) => h.key === key);
    const field = { name, key, value };
    this.list.splice(first === -1 ? 0 : first, 0, field);
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
    if (parts.length === 0) this.list.splice(index, 1);
    else this.list[index] = { ...this.headers[index], value: parts.join(', ') };
    this.invalidate(key);
    return removed;
  }

  /**
   * Replace the top Via with `via` (§18.2.1 `received`/`rport` stamping), in place and
   * keeping `via` as the parsed top Via, so reading it back does not parse what was just
   * written. The rest of a comma-joined Via line stays byte-exact on its own line.
   */
  replaceTopVia(via: Via): void {
    const list = this.list;
    let index = 0;
    while (index < list.length && list[index].key !== 'via') index++;
    const value = via.toString();
    if (index === list.length) list.unshift({ name: 'Via', key: 'via', value });
    else {
      const line = list[index];
      const rest = line.value.indexOf(',') === -1 ? [] : splitHeaderValue('via', line.value).slice(1);
      const field = { name: line.name, key: 'via', value };
      if (rest.length === 0) list[index] = field;
      else list.splice(index, 1, field, { ...line, value: rest.join(', ') });
    }
    this.invalidate('via');
    this.viaTop = via;
  }

  private removeKey(key: string): void {
    const list = this.list;
    for (let i = list.length - 1; i >= 0; i--) if (list[i].key === key) list.splice(i, 1);
  }

  /** A header changed: forget its typed value, and that the header block is as parsed. */
  private invalidate(key: string): void {
    this.revision++;
    switch (key) {
      case 'via': this.viaTop = undefined; break;
      case 'from': this.fromValue = undefined; break;
      case 'to': this.toValue = undefined; break;
      case 'call-id': this.callIdValue = undefined; break;
      case 'cseq': this.cseqValue = undefined; break;
      case 'max-forwards': this.maxForwardsValue = undefined; break;
    }
    this.cache?.delete(key);
  }

  protected cached<T>(key: string, parse: () => T): T {
    let cache = this.cache;
    if (cache === null) cache = this.cache = new Map();
    else {
      const hit = cache.get(key);
      if (hit !== undefined) return (hit === NONE ? undefined : hit) as T;
    }
    const value = parse();
    cache.set(key, value === undefined ? NONE : value);
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
    if (this.viaTop !== undefined) return this.viaTop;
    const all = this.cache?.get('via') as Via[] | undefined;
    if (all !== undefined) {
      if (all.length === 0) throw new SipParseError('Missing Via header');
      return (this.viaTop = all[0]);
    }
    for (const h of this.headers) {
      if (h.key !== 'via') continue;
      // One Via per line is the usual case: no list split needed.
      const value = h.value.indexOf(',') === -1 ? h.value : splitHeaderValue('via', h.value)[0];
      if (value !== undefined && value.length > 0) return (this.viaTop = Via.parse(value));
    }
    throw new SipParseError('Missing Via header');
  }

  get from(): NameAddr {
    return (this.fromValue ??= this.requiredNameAddr('from', 'From'));
  }

  get to(): NameAddr {
    return (this.toValue ??= this.requiredNameAddr('to', 'To'));
  }

  get callId(): string {
    if (this.callIdValue !== undefined) return this.callIdValue;
    const v = this.single('call-id', 'Call-ID').trim();
    if (v.length === 0) throw new SipParseError('Missing Call-ID header');
    return (this.callIdValue = v);
  }

  get cseq(): CSeq {
    return (this.cseqValue ??= CSeq.parse(this.single('cseq', 'CSeq')));
  }

  /** Max-Forwards, or undefined when absent; throws on a malformed value. */
  get maxForwards(): number | undefined {
    let value = this.maxForwardsValue;
    if (value === undefined) value = this.maxForwardsValue = this.parseMaxForwards() ?? NONE;
    return value === NONE ? undefined : value;
  }

  private parseMaxForwards(): number | undefined {
    let text: string | undefined;
    for (const h of this.headers) {
      if (h.key !== 'max-forwards') continue;
      if (text !== undefined) throw new SipParseError('Duplicate Max-Forwards header');
      text = h.value;
    }
    if (text === undefined) return undefined;
    // 1*DIGIT, leading zeros allowed (RFC 4475 §3.1.1.1 "0068"), at most 255.
    const v = text.trim();
    const n = parseDigits(v);
    if (n === undefined || n > 255) throw new SipParseError('Malformed Max-Forwards header', v.slice(0, 20));
    return n;
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
    const n = parseDigits(v);
    if (n === undefined) throw new SipParseError(`Malformed ${display} header`, v.slice(0, 20));
    return n;
  }

  /** @internal Called by parseMessage; see HeaderSource. */
  setSource(source: HeaderSource): void {
    this.source = source;
    this.revision = 0;
  }

  private sourceIntact(src: HeaderSource): boolean {
    if (this.revision !== 0 || this.body !== src.body) return false;
    const now = this.startLineParts();
    const then = src.line;
    return now[0] === then[0] && now[1] === then[1] && now[2] === then[2];
  }

  /** Serialize with a Content-Length that matches the body (RFC 3261 §20.14). */
  toBuffer(): Buffer {
    const src = this.source;
    if (src !== null) {
      if (this.sourceIntact(src)) {
        const body = this.body;
        // The body was cut from the same bytes right after the header block: hand out that
        // span as is (the transports copy what they receive, so nothing else writes to it).
        if (body.length === 0 || (body.buffer === src.data.buffer && body.byteOffset === src.data.byteOffset + src.end)) {
          return src.data.subarray(src.start, src.end + body.length);
        }
        const headLength = src.end - src.start;
        const out = Buffer.allocUnsafe(headLength + body.length);
        src.data.copy(out, 0, src.start, src.end);
        body.copy(out, headLength);
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
    return this.headers.slice(); // fields are immutable: the clone can share them
  }
}

export class SipRequest extends SipMessage {
  method: string;
  private uriRaw: string;
  private uriParsed: Uri | undefined;
  /** `uriParsed.revision` when `uriRaw` was last taken from it. */
  private uriRevision = 0;
  version: string;
  /**
   * The To-tag this element puts in its responses to this request when the request has none
   * (§8.2.6.2), when it must be known in advance; set by the transaction layer for requests
   * answered statelessly (§8.2.7). Otherwise createResponse draws a random one.
   */
  localTag: string | undefined = undefined;

  constructor(method: string, uri: string | Uri, headers: HeaderField[] = [], body: Buffer = EMPTY_BODY, version = 'SIP/2.0') {
    super(headers, body);
    this.method = method;
    if (typeof uri === 'string') {
      this.uriRaw = uri;
      this.uriParsed = undefined;
    } else {
      this.uriRaw = uri.toString();
      this.uriParsed = uri;
      this.uriRevision = uri.revision;
    }
    this.version = version;
  }

  get isRequest(): true {
    return true;
  }

  /** The Request-URI (parsed on first access). Edits to it show in the start line. */
  get uri(): Uri {
    if (this.uriParsed === undefined) {
      this.uriParsed = parseUri(this.uriRaw);
      this.uriRevision = this.uriParsed.revision;
    }
    return this.uriParsed;
  }

  set uri(value: Uri) {
    this.uriParsed = value;
    this.uriRaw = value.toString();
    this.uriRevision = value.revision;
  }

  get uriText(): string {
    const parsed = this.uriParsed;
    // Edited in place since its text was taken: take it again.
    if (parsed !== undefined && parsed.revision !== this.uriRevision) {
      this.uriRaw = parsed.toString();
      this.uriRevision = parsed.revision;
    }
    return this.uriRaw;
  }

  startLine(): string {
    return `${this.method} ${this.uriText} ${this.version}`;
  }

  protected startLineParts(): readonly [unknown, unknown, unknown] {
    return [this.method, this.uriText, this.version];
  }

  clone(): SipRequest {
    return new SipRequest(this.method, this.uriText, this.cloneHeaders(), this.body, this.version);
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

  protected startLineParts(): readonly [unknown, unknown, unknown] {
    return [this.version, this.status, this.reason];
  }

  clone(): SipResponse {
    return new SipResponse(this.status, this.reason, this.cloneHeaders(), this.body, this.version);
  }
}

/** 1–10 decimal digits (leading zeros allowed), else undefined. */
export function parseDigits(text: string): number | undefined {
  const n = text.length;
  if (n === 0 || n > 10) return undefined;
  let value = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    value = value * 10 + c;
  }
  return value;
}

export function isRequest(message: SipMessage): message is SipRequest {
  return message.isRequest;
}

export function header(name: string, value: string): HeaderField {
  return { name, key: normalizeHeaderName(name), value };
}
