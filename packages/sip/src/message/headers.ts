/**
 * Header names and typed header values (RFC 3261 §7.3, §20; RFC 3581; RFC 3326; RFC 6809).
 * Each typed value parses from the raw text and serializes back; the message keeps raw text
 * for every header nobody touched, so forwarding is byte-exact.
 */

import { SipParseError } from '../errors.js';
import { Params, isToken, isTokenChar, quote, splitTopLevel, unquote } from './grammar.js';
import { type Uri, SipUri, isValidHost, parseUri } from './uri.js';

/** RFC 3261 §7.3.3 compact forms (and later RFCs' one-letter names). */
const COMPACT: Record<string, string> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  o: 'event',
  r: 'refer-to',
  b: 'referred-by',
  x: 'session-expires',
  u: 'allow-events',
  a: 'accept-contact',
  j: 'reject-contact',
  d: 'request-disposition',
  y: 'identity',
};

/** Canonical spelling used when pushcall itself writes a header. */
const CANONICAL: Record<string, string> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
  'feature-caps': 'Feature-Caps',
  'mime-version': 'MIME-Version',
};

/** Lower-case full header name for lookups; compact forms expanded. */
export function normalizeHeaderName(name: string): string {
  const lower = name.toLowerCase();
  return lower.length === 1 ? (COMPACT[lower] ?? lower) : lower;
}

export function canonicalHeaderName(lowerName: string): string {
  return CANONICAL[lowerName] ?? lowerName.replace(/(^|-)([a-z])/g, (_, d: string, c: string) => d + c.toUpperCase());
}

/**
 * Headers whose values may be comma-joined lists (RFC 3261 §7.3.1). For these, the message
 * splits a header line into its elements before typed access.
 */
export const LIST_HEADERS = new Set([
  'via',
  'contact',
  'route',
  'record-route',
  'path',
  'service-route',
  'supported',
  'require',
  'proxy-require',
  'unsupported',
  'allow',
  'accept',
  'accept-encoding',
  'accept-language',
  'allow-events',
  'content-encoding',
  'reason',
  'feature-caps',
]);

// ---------------------------------------------------------------------------------------
// Via (RFC 3261 §20.42, RFC 3581 rport)

export class Via {
  constructor(
    public transport: string,
    public host: string,
    public port: number | undefined,
    readonly params: Params,
    /** `SIP/2.0` unless a peer writes something else. */
    public protocol = 'SIP/2.0',
  ) {}

  static parse(text: string): Via {
    let protocol: string;
    let transport: string;
    let rest: string;
    // Fast path for the way everyone writes it: "SIP/2.0/UDP host...".
    let i = 8;
    if (text.startsWith('SIP/2.0/')) while (i < text.length && isTokenChar(text.charCodeAt(i))) i++;
    const c = text.charCodeAt(i);
    if (i > 8 && (c === 32 || c === 9)) {
      protocol = 'SIP/2.0';
      transport = text.slice(8, i).toUpperCase();
      rest = text.slice(i + 1);
    } else {
      const m = /^([A-Za-z0-9\-.!%*_+`'~]+)\s*\/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*\/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(.*)$/s.exec(text);
      if (!m) throw new SipParseError('Malformed Via header', text.slice(0, 80));
      protocol = `${m[1]}/${m[2]}`;
      transport = m[3].toUpperCase();
      rest = m[4];
    }
    const semi = rest.indexOf(';');
    const sentBy = (semi === -1 ? rest : rest.slice(0, semi)).trim();
    const { host, port } = parseHostPort(sentBy, 'Via');
    const params = semi === -1 ? new Params() : Params.parse(rest.slice(semi + 1), ';');
    return new Via(transport, host, port, params, protocol);
  }

  get branch(): string | undefined {
    return this.params.get('branch') ?? undefined;
  }

  /** RFC 3261 §8.1.1.7: branches from RFC 3261 implementations start with this cookie. */
  get hasMagicCookie(): boolean {
    return this.branch?.startsWith('z9hG4bK') ?? false;
  }

  get received(): string | undefined {
    return this.params.get('received') ?? undefined;
  }

  /** RFC 3581: `undefined` (absent), `null` (requested, no value yet) or the port. */
  get rport(): number | null | undefined {
    const v = this.params.get('rport');
    if (v === undefined) return undefined;
    if (v === null || v === '') return null;
    const n = Number(v);
    return Number.isInteger(n) ? n : null;
  }

  clone(): Via {
    return new Via(this.transport, this.host, this.port, this.params.clone(), this.protocol);
  }

  toString(): string {
    return `${this.protocol}/${this.transport} ${this.host}${this.port !== undefined ? `:${this.port}` : ''}${this.params.toString(';')}`;
  }
}

export function parseHostPort(text: string, what: string): { host: string; port: number | undefined } {
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) throw new SipParseError(`Malformed ${what} host`, text.slice(0, 60));
    host = text.slice(0, close + 1);
    const after = text.slice(close + 1);
    if (after.startsWith(':')) portText = after.slice(1);
    else if (after.length > 0) throw new SipParseError(`Malformed ${what} host`, text.slice(0, 60));
  } else {
    const colon = text.indexOf(':');
    host = colon === -1 ? text : text.slice(0, colon);
    if (colon !== -1) portText = text.slice(colon + 1);
  }
  if (!isValidHost(host)) throw new SipParseError(`Malformed ${what} host`, host.slice(0, 60));
  let port: number | undefined;
  if (portText !== undefined) {
    const digits = portText.trim();
    port = 0;
    for (let i = 0; i < digits.length; i++) {
      const c = digits.charCodeAt(i);
      if (c < 48 || c > 57) {
        port = -1;
        break;
      }
      port = port * 10 + (c - 48);
    }
    if (digits.length === 0 || digits.length > 5 || port < 0 || port > 65535) throw new SipParseError(`Malformed ${what} port`, portText.slice(0, 10));
  }
  return { host, port };
}

// ---------------------------------------------------------------------------------------
// name-addr / addr-spec: From, To, Contact, Route, Record-Route, Path (RFC 3261 §20.10)

export class NameAddr {
  constructor(
    public uri: Uri,
    public displayName: string | undefined,
    readonly params: Params,
    /** Whether the URI was (or must be) written inside `<>`. */
    public bracketed = true,
  ) {}

  static parse(text: string, what = 'address'): NameAddr {
    const trimmed = text.trim();
    const lt = findUnquoted(trimmed, '<');
    if (lt !== -1) {
      const gt = trimmed.indexOf('>', lt);
      if (gt === -1) throw new SipParseError(`Malformed ${what}`, 'missing ">"');
      const display = trimmed.slice(0, lt).trim();
      let displayName: string | undefined;
      if (display.length > 0) {
        if (display.charCodeAt(0) === 34 /* " */) {
          if (!isQuotedString(display)) throw new SipParseError(`Malformed ${what} display name`, display.slice(0, 40));
          displayName = unquote(display);
        } else {
          // display-name = *(token LWS) / quoted-string (RFC 3261 §25.1): "Bell, Alexander"
          // unquoted is malformed (RFC 4475 §3.1.2.15).
          if (!DISPLAY_TOKENS.test(display)) throw new SipParseError(`Malformed ${what} display name`, display.slice(0, 40));
          displayName = display;
        }
      }
      const uri = parseUri(trimmed.slice(lt + 1, gt).trim());
      const rest = trimmed.slice(gt + 1).trim();
      if (rest.length > 0 && !rest.startsWith(';')) throw new SipParseError(`Malformed ${what}`, `unexpected "${rest.slice(0, 20)}"`);
      const params = rest.length > 0 ? Params.parse(rest.slice(1), ';') : new Params();
      return new NameAddr(uri, displayName, params, true);
    }
    // addr-spec: header params follow the URI, so URI params are impossible here (§20.10).
    const semi = trimmed.indexOf(';');
    const uriText = semi === -1 ? trimmed : trimmed.slice(0, semi).trimEnd();
    if (uriText.length === 0 || /\s/.test(uriText)) throw new SipParseError(`Malformed ${what}`, trimmed.slice(0, 60));
    // §20.10: a URI containing a comma, question mark or semicolon must be in <>
    // (RFC 4475 §3.1.2.13: a Contact URI with escaped headers outside <>).
    if (uriText.includes('?') || uriText.includes(',')) throw new SipParseError(`Malformed ${what}`, 'URI with "?" or "," must be enclosed in <>');
    const uri = parseUri(uriText);
    const params = semi === -1 ? new Params() : Params.parse(trimmed.slice(semi + 1), ';');
    return new NameAddr(uri, undefined, params, false);
  }

  get tag(): string | undefined {
    return this.params.get('tag') ?? undefined;
  }

  set tag(value: string | undefined) {
    if (value === undefined) this.params.delete('tag');
    else this.params.set('tag', value);
  }

  get sipUri(): SipUri | undefined {
    return this.uri instanceof SipUri ? this.uri : undefined;
  }

  clone(): NameAddr {
    return new NameAddr(this.uri.clone(), this.displayName, this.params.clone(), this.bracketed);
  }

  toString(): string {
    // URIs with params or headers must be bracketed when header params follow (§20.10).
    let s = '';
    if (this.displayName !== undefined) s += `${isPlainDisplayName(this.displayName) ? this.displayName : quote(this.displayName)} `;
    const needsBrackets = this.bracketed || this.displayName !== undefined || /[;,?]/.test(this.uri.toString());
    s += needsBrackets ? `<${this.uri.toString()}>` : this.uri.toString();
    return s + this.params.toString(';');
  }
}

function findUnquoted(text: string, ch: string): number {
  const target = ch.charCodeAt(0);
  // Fast path: no quoted string before the first occurrence.
  const first = text.indexOf(ch);
  const quote = text.indexOf('"');
  if (quote === -1 || (first !== -1 && first < quote)) return first;
  let inQuotes = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inQuotes) {
      if (c === 92 /* \\ */) i++;
      else if (c === 34 /* " */) inQuotes = false;
    } else if (c === 34) inQuotes = true;
    else if (c === target) return i;
  }
  return -1;
}

/** Tokens separated by linear white space (an unquoted display-name). */
const DISPLAY_TOKENS = /^[A-Za-z0-9\-.!%*_+`'~]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`'~]+)*$/;

/** A display name that can be written without quotes and reads back the same. */
function isPlainDisplayName(name: string): boolean {
  return /^[A-Za-z0-9\-.!%*_+`'~]+(?: [A-Za-z0-9\-.!%*_+`'~]+)*$/.test(name);
}

/** `"..."` with every inner quote escaped and the closing quote not escaped. */
function isQuotedString(text: string): boolean {
  if (text.length < 2 || text.charCodeAt(text.length - 1) !== 34) return false;
  for (let i = 1; i < text.length - 1; i++) {
    const c = text.charCodeAt(i);
    if (c === 92) {
      if (i === text.length - 2) return false; // the closing quote is escaped
      i++;
    } else if (c === 34) return false;
  }
  return true;
}

/** A Contact header element: `*` or a name-addr with expires, q, +sip.instance, reg-id. */
export class ContactValue extends NameAddr {
  static readonly STAR = '*';

  static override parse(text: string): ContactValue {
    const na = NameAddr.parse(text, 'Contact header');
    return new ContactValue(na.uri, na.displayName, na.params, na.bracketed);
  }

  /** `expires` param in seconds, undefined when absent; throws on a malformed value. */
  get expires(): number | undefined {
    const v = this.params.get('expires');
    if (v === undefined) return undefined;
    if (v === null || !/^\d{1,10}$/.test(v)) throw new SipParseError('Malformed Contact expires parameter', String(v));
    return Number(v);
  }

  /** `q` param in [0, 1]; default undefined. */
  get q(): number | undefined {
    const v = this.params.get('q');
    if (v === undefined) return undefined;
    if (v === null || !/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v)) throw new SipParseError('Malformed Contact q-value', String(v));
    return Number(v);
  }

  /** RFC 5626 `+sip.instance`, unquoted, e.g. `<urn:uuid:...>`. */
  get instance(): string | undefined {
    const v = this.params.unquoted('+sip.instance');
    return v === undefined ? undefined : v;
  }

  get regId(): number | undefined {
    const v = this.params.get('reg-id');
    if (v === undefined || v === null) return undefined;
    if (!/^\d{1,10}$/.test(v)) throw new SipParseError('Malformed Contact reg-id parameter', v);
    return Number(v);
  }

  override clone(): ContactValue {
    return new ContactValue(this.uri.clone(), this.displayName, this.params.clone(), this.bracketed);
  }
}

// ---------------------------------------------------------------------------------------
// CSeq (RFC 3261 §20.16)

/** What `\s` matches among the characters a header value can hold after unfolding. */
function isWhite(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12 || c === 0xa0;
}

export class CSeq {
  constructor(
    public seq: number,
    public method: string,
  ) {}

  /** `1*10DIGIT LWS token`, surrounding white space allowed. */
  static parse(text: string): CSeq {
    const n = text.length;
    let i = 0;
    while (i < n && isWhite(text.charCodeAt(i))) i++;
    const digitsAt = i;
    let seq = 0;
    while (i < n) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      seq = seq * 10 + d;
      i++;
    }
    const digits = i - digitsAt;
    const wsAt = i;
    while (i < n && isWhite(text.charCodeAt(i))) i++;
    const methodAt = i;
    while (i < n && isTokenChar(text.charCodeAt(i))) i++;
    const methodEnd = i;
    while (i < n && isWhite(text.charCodeAt(i))) i++;
    if (digits === 0 || digits > 10 || methodAt === wsAt || methodEnd === methodAt || i !== n) {
      throw new SipParseError('Malformed CSeq header', text.slice(0, 40));
    }
    // RFC 3261 §20.16: a 32-bit unsigned integer. (§8.1.1.5's "less than 2**31" is for the
    // initial value a UAC picks; later requests in a dialog may go above it.)
    if (seq > 2 ** 32 - 1) throw new SipParseError('CSeq number out of range', text.slice(digitsAt, wsAt));
    return new CSeq(seq, text.slice(methodAt, methodEnd));
  }

  toString(): string {
    return `${this.seq} ${this.method}`;
  }
}

// ---------------------------------------------------------------------------------------
// Authorization, WWW-Authenticate, Proxy-Authenticate, Proxy-Authorization (RFC 3261 §20.7)

export class AuthValue {
  constructor(
    public scheme: string,
    readonly params: Params,
  ) {}

  static parse(text: string, what: string): AuthValue {
    const m = /^\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(.*)$/s.exec(text);
    if (!m) throw new SipParseError(`Malformed ${what} header`, text.slice(0, 40));
    const params = Params.parse(m[2], ',');
    for (const name of params.names()) {
      if (params.count(name) > 1) throw new SipParseError(`Duplicate ${name} in ${what} header`);
    }
    return new AuthValue(m[1], params);
  }

  get(name: string): string | undefined {
    return this.params.unquoted(name);
  }

  toString(): string {
    return `${this.scheme} ${this.params.toString(',').slice(1).replace(/,/g, ', ')}`;
  }
}

// ---------------------------------------------------------------------------------------
// Reason (RFC 3326)

export class ReasonValue {
  constructor(
    public protocol: string,
    public cause: number | undefined,
    public text: string | undefined,
    readonly params: Params = new Params(),
  ) {}

  static parse(text: string): ReasonValue {
    const semi = text.indexOf(';');
    const protocol = (semi === -1 ? text : text.slice(0, semi)).trim();
    if (!isToken(protocol)) throw new SipParseError('Malformed Reason header', text.slice(0, 40));
    const params = semi === -1 ? new Params() : Params.parse(text.slice(semi + 1), ';');
    const causeRaw = params.get('cause');
    const cause = causeRaw == null ? undefined : Number(causeRaw);
    if (cause !== undefined && !Number.isInteger(cause)) throw new SipParseError('Malformed Reason cause', String(causeRaw));
    return new ReasonValue(protocol, cause, params.unquoted('text'), params);
  }

  static sip(cause: number, text?: string): ReasonValue {
    const params = new Params([['cause', String(cause)]]);
    if (text !== undefined) params.set('text', quote(text));
    return new ReasonValue('SIP', cause, text, params);
  }

  toString(): string {
    return `${this.protocol}${this.params.toString(';')}`;
  }
}

// ---------------------------------------------------------------------------------------
// Feature-Caps (RFC 6809 §6): `*;+sip.pns="apns";+sip.pnsreg="121"`

export class FeatureCapsValue {
  constructor(readonly indicators: Params) {}

  static parse(text: string): FeatureCapsValue {
    const trimmed = text.trim();
    if (!trimmed.startsWith('*')) throw new SipParseError('Malformed Feature-Caps header', 'must start with "*"');
    const rest = trimmed.slice(1).trim();
    if (rest.length > 0 && !rest.startsWith(';')) throw new SipParseError('Malformed Feature-Caps header', rest.slice(0, 30));
    return new FeatureCapsValue(rest.length > 0 ? Params.parse(rest.slice(1), ';') : new Params());
  }

  get(name: string): string | null | undefined {
    const v = this.indicators.get(name);
    return v == null ? v : unquote(v);
  }

  toString(): string {
    return `*${this.indicators.toString(';')}`;
  }
}

/** A comma list of tokens (Supported, Require, Allow, ...), lower-cased for comparisons. */
export function parseTokenList(values: string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    const t = v.trim();
    if (t.length === 0) continue;
    if (!isToken(t)) throw new SipParseError('Malformed option tag', t.slice(0, 30));
    out.push(t);
  }
  return out;
}

/** Split comma lists for typed access (list headers only). */
export function splitHeaderValue(lowerName: string, value: string): string[] {
  return LIST_HEADERS.has(lowerName) ? splitTopLevel(value) : [value];
}
