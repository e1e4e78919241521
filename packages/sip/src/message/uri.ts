/**
 * SIP, SIPS and tel URIs (RFC 3261 §19.1, §25; RFC 3966), with RFC 8599 push parameters
 * easy to read and to strip. Parameter values and the user part keep their %-escapes as
 * written so a forwarded URI is byte-exact; accessors unescape on demand.
 */

import { SipParseError } from '../errors.js';
import { Params, charTable, unescapePercent } from './grammar.js';

/** RFC 8599 §8.7 URI parameters. */
export const PN_PARAMS = ['pn-provider', 'pn-prid', 'pn-param', 'pn-purr'] as const;

export interface PushParams {
  /** `pn-provider`; empty string for a capability query without a value. */
  provider: string;
  prid?: string;
  param?: string;
  purr?: string;
}

/** `;name[=value]` repeated: names are paramchars (§25.1); values are not checked beyond %-escapes (leniency). */
const URI_PARAMS = /^(?:;[A-Za-z0-9\-_.!~*'()[\]/:&+$%]*(?:=[^;]*)?)+$/;
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;
const IPV6_REF = /^\[[0-9A-Fa-f:.]+\]$/;

export class SipUri {
  readonly scheme: 'sip' | 'sips';
  private userPart: string | undefined;
  private passwordPart: string | undefined;
  private hostPart: string;
  private portNumber: number | undefined;
  private ownRevision = 0;
  readonly params: Params;
  readonly headers: Params;

  /** User part as written (may contain %-escapes). */
  get user(): string | undefined {
    return this.userPart;
  }
  set user(value: string | undefined) {
    this.userPart = value;
    this.ownRevision++;
  }

  get password(): string | undefined {
    return this.passwordPart;
  }
  set password(value: string | undefined) {
    this.passwordPart = value;
    this.ownRevision++;
  }

  /** Host as written; IPv6 references keep their brackets. */
  get host(): string {
    return this.hostPart;
  }
  set host(value: string) {
    this.hostPart = value;
    this.ownRevision++;
  }

  get port(): number | undefined {
    return this.portNumber;
  }
  set port(value: number | undefined) {
    this.portNumber = value;
    this.ownRevision++;
  }

  /** Changes with every edit of this URI (parts and parameters): its text is then stale. */
  get revision(): number {
    return this.ownRevision + this.params.revision + this.headers.revision;
  }

  constructor(init: {
    scheme?: 'sip' | 'sips';
    user?: string;
    password?: string;
    host: string;
    port?: number;
    params?: Params;
    headers?: Params;
  }) {
    this.scheme = init.scheme ?? 'sip';
    this.userPart = init.user;
    this.passwordPart = init.password;
    this.hostPart = init.host;
    this.portNumber = init.port;
    this.params = init.params ?? new Params();
    this.headers = init.headers ?? new Params();
  }

  get isSecure(): boolean {
    return this.scheme === 'sips';
  }

  /** The user part with %-escapes decoded (RFC 3261 §19.1.4 compares unescaped). */
  get userUnescaped(): string | undefined {
    return this.user === undefined ? undefined : unescapePercent(this.user);
  }

  /** Host without IPv6 brackets, lower-cased, for socket APIs and comparisons. */
  get hostname(): string {
    const h = this.host.startsWith('[') ? this.host.slice(1, -1) : this.host;
    return h.toLowerCase();
  }

  /** `transport` param lower-cased, if any. */
  get transport(): string | undefined {
    const t = this.params.get('transport');
    return t ? t.toLowerCase() : undefined;
  }

  param(name: string): string | undefined {
    const v = this.params.get(name);
    return v == null ? undefined : unescapePercent(v);
  }

  /** RFC 8599 push parameters, or undefined when `pn-provider` is absent. */
  get push(): PushParams | undefined {
    if (!this.params.has('pn-provider')) return undefined;
    const result: PushParams = { provider: this.param('pn-provider') ?? '' };
    const prid = this.param('pn-prid');
    const param = this.param('pn-param');
    const purr = this.param('pn-purr');
    if (prid !== undefined) result.prid = prid;
    if (param !== undefined) result.param = param;
    if (purr !== undefined) result.purr = purr;
    return result;
  }

  /** Remove every `pn-*` parameter (RFC 8599 params, and vendor ones like pn-type/pn-tok). */
  stripPushParams(): this {
    this.params.deleteWhere((n) => n.startsWith('pn-'));
    return this;
  }

  /** `host:port` with the default port of the scheme when none is given (RFC 3263 aside). */
  get portOrDefault(): number {
    return this.port ?? (this.scheme === 'sips' || this.transport === 'tls' ? 5061 : 5060);
  }

  /** The address-of-record form: scheme, user and host only (RFC 3261 §10.3 step 5). */
  toAor(): string {
    const user = this.user === undefined ? '' : `${this.userUnescaped}@`;
    return `${this.scheme}:${user}${this.host.toLowerCase()}`;
  }

  clone(): SipUri {
    return new SipUri({
      scheme: this.scheme,
      user: this.user,
      password: this.password,
      host: this.host,
      port: this.port,
      params: this.params.clone(),
      headers: this.headers.clone(),
    });
  }

  toString(): string {
    let s = `${this.scheme}:`;
    if (this.user !== undefined) {
      s += this.user;
      if (this.password !== undefined) s += `:${this.password}`;
      s += '@';
    }
    s += this.host;
    if (this.port !== undefined) s += `:${this.port}`;
    s += this.params.toString(';');
    if (this.headers.size > 0) s += `?${this.headers.toString('&').slice(1)}`;
    return s;
  }
}

export class TelUri {
  readonly scheme = 'tel' as const;
  private digits: string;
  private ownRevision = 0;
  constructor(
    number: string,
    readonly params: Params = new Params(),
  ) {
    this.digits = number;
  }

  get number(): string {
    return this.digits;
  }
  set number(value: string) {
    this.digits = value;
    this.ownRevision++;
  }

  /** Changes with every edit of this URI: its text is then stale. */
  get revision(): number {
    return this.ownRevision + this.params.revision;
  }

  get isGlobal(): boolean {
    return this.number.startsWith('+');
  }

  clone(): TelUri {
    return new TelUri(this.number, this.params.clone());
  }

  toString(): string {
    return `tel:${this.number}${this.params.toString(';')}`;
  }
}

/** Any other absolute URI (e.g. `mailto:`, `urn:`); kept verbatim. */
export class OpaqueUri {
  readonly revision = 0;
  constructor(
    readonly scheme: string,
    readonly raw: string,
  ) {}

  clone(): OpaqueUri {
    return this;
  }

  toString(): string {
    return this.raw;
  }
}

export type Uri = SipUri | TelUri | OpaqueUri;

export function isSipUri(uri: Uri | undefined): uri is SipUri {
  return uri instanceof SipUri;
}

export function parseUri(text: string): Uri {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new SipParseError('Malformed URI', text.slice(0, 80));
  const scheme = text.slice(0, colon).toLowerCase();
  if (scheme === 'sip' || scheme === 'sips') return parseSipUri(text, scheme, colon + 1);
  if (scheme === 'tel') return parseTelUri(text, colon + 1);
  if (!/^[a-z][a-z0-9+.-]*$/.test(scheme)) throw new SipParseError('Malformed URI scheme', scheme);
  return new OpaqueUri(scheme, text);
}

export function parseSipUriStrict(text: string): SipUri {
  const uri = parseUri(text);
  if (!(uri instanceof SipUri)) throw new SipParseError('Expected a SIP or SIPS URI', text.slice(0, 80));
  return uri;
}

/** Searched from `lastIndex` (global flag), so the URI need not be cut out of its header first. */
const ILLEGAL_IN_URI = /[\s<>"]/g;
/** Characters allowed unescaped in a user part (RFC 3261 §25.1 unreserved / user-unreserved). */
const USER_TABLE = charTable("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,;?/");
/** …and in a password (no ';', '?', '/'). */
const PASSWORD_TABLE = charTable("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,");

/** text[from, to) is 1*(allowed / %HH) (or may be empty when `empty`). */
function isEscapedRun(text: string, from: number, to: number, table: Uint8Array, empty: boolean): boolean {
  if (from >= to) return empty;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 128 && table[c] === 1) continue;
    if (c === 37 /* % */ && i + 2 < to && isHex(text.charCodeAt(i + 1)) && isHex(text.charCodeAt(i + 2))) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

function parseSipUri(text: string, scheme: 'sip' | 'sips', from: number): SipUri {
  const n = text.length;
  if (from >= n) throw new SipParseError('Malformed URI', 'missing host');
  ILLEGAL_IN_URI.lastIndex = from;
  if (ILLEGAL_IN_URI.test(text)) throw new SipParseError('Malformed URI', 'illegal character');
  // userinfo ends at the first '@': '@' is allowed nowhere else in a SIP URI (params and
  // headers must escape it), while '?', '=' and ';' may all appear in a user part
  // (user-unreserved, RFC 4475 §3.1.1.2).
  const at = text.indexOf('@', from);

  let user: string | undefined;
  let password: string | undefined;
  if (at !== -1) {
    let pc = -1;
    for (let i = from; i < at; i++) {
      if (text.charCodeAt(i) === 58 /* : */) {
        pc = i;
        break;
      }
    }
    const userEnd = pc === -1 ? at : pc;
    if (!isEscapedRun(text, from, userEnd, USER_TABLE, false)) throw new SipParseError('Malformed URI user part', text.slice(from, Math.min(at, from + 60)));
    user = text.slice(from, userEnd);
    if (pc !== -1) {
      if (!isEscapedRun(text, pc + 1, at, PASSWORD_TABLE, true)) throw new SipParseError('Malformed URI password', '');
      password = text.slice(pc + 1, at);
    }
  }

  const hostStart = at === -1 ? from : at + 1;
  let i = hostStart;
  let host: string;
  if (text.charCodeAt(i) === 91 /* [ */) {
    const close = text.indexOf(']', i);
    if (close === -1) throw new SipParseError('Malformed IPv6 reference', text.slice(i, i + 60));
    host = text.slice(i, close + 1);
    i = close + 1;
  } else {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 58 /* : */ || c === 59 /* ; */ || c === 63 /* ? */) break;
      i++;
    }
    host = text.slice(hostStart, i);
  }
  if (!isValidHost(host)) throw new SipParseError('Malformed URI host', host.slice(0, 60));

  let port: number | undefined;
  if (text.charCodeAt(i) === 58) {
    let j = i + 1;
    let value = 0;
    while (j < n) {
      const d = text.charCodeAt(j) - 48;
      if (d < 0 || d > 9) break;
      value = value * 10 + d;
      j++;
    }
    const digits = j - i - 1;
    if (digits === 0 || digits > 5 || value > 65535) throw new SipParseError('Malformed URI port', text.slice(i + 1, j));
    port = value;
    i = j;
  }

  let params: Params | undefined;
  let headers: Params | undefined;
  if (i < n) {
    const headersAt = text.indexOf('?', i);
    if (headersAt !== i) {
      if (text.charCodeAt(i) !== 59) throw new SipParseError('Malformed URI', `unexpected "${text.slice(i, i + 20)}" after host`);
      const paramText = headersAt === -1 ? text.slice(i) : text.slice(i, headersAt);
      // uri-parameters: names are paramchars (§25.1); checked on the whole text at once
      // rather than per parameter.
      if (!URI_PARAMS.test(paramText)) throw new SipParseError('Malformed URI parameter', paramText.slice(0, 40));
      if (paramText.includes('%') && BAD_ESCAPE.test(paramText)) throw new SipParseError('Malformed %-escape in URI parameter', paramText.slice(0, 40));
      params = Params.parse(paramText.slice(1), ';');
    }
    if (headersAt !== -1) headers = Params.parse(text.slice(headersAt + 1), '&');
  }

  return new SipUri({ scheme, user, password, host, port, params, headers });
}

function parseTelUri(text: string, from: number): TelUri {
  const rest = text.slice(from);
  const semi = rest.indexOf(';');
  const number = semi === -1 ? rest : rest.slice(0, semi);
  if (!/^\+?[0-9A-Fa-f*#().\-]+$/.test(number)) throw new SipParseError('Malformed tel URI', number.slice(0, 40));
  const params = semi === -1 ? new Params() : Params.parse(rest.slice(semi + 1), ';');
  return new TelUri(number, params);
}

/**
 * hostname / IPv4address / IPv6reference (RFC 3261 §25.1). Labels are alphanumerics with
 * inner hyphens, an optional trailing dot; four dot-separated numbers are an IPv4 address
 * and must be octets. One pass over the characters, no regex on the common path.
 */
export function isValidHost(host: string): boolean {
  const n = host.length;
  if (n === 0 || n > 255) return false;
  if (host.charCodeAt(0) === 91 /* [ */) return IPV6_REF.test(host);
  let labelLen = 0;
  let prev = 46; // '.'
  let allNumeric = true;
  let dots = 0;
  let octet = 0;
  let octetOk = true; // every numeric label so far is 1-3 digits and at most 255
  for (let i = 0; i < n; i++) {
    const c = host.charCodeAt(i);
    if (c === 46) {
      if (labelLen === 0 || prev === 45) return false; // empty label or label ending in '-'
      if (labelLen > 3 || octet > 255) octetOk = false;
      dots++;
      labelLen = 0;
      octet = 0;
    } else if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      labelLen++;
    } else if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) {
      allNumeric = false;
      labelLen++;
    } else if (c === 45) {
      if (labelLen === 0) return false; // label starting with '-'
      allNumeric = false;
      labelLen++;
    } else return false;
    prev = c;
  }
  if (prev === 45) return false;
  // Four numeric labels: an IPv4address, whose octets must be 0-255.
  if (allNumeric && dots === 3 && labelLen > 0 && (!octetOk || labelLen > 3 || octet > 255)) return false;
  return true;
}

/**
 * RFC 3261 §19.1.4 URI equality: user and password case-sensitive (after unescaping), host
 * case-insensitive, ports must both be absent or equal, the transport/user/ttl/method/maddr
 * params must match when present in either, other params only when present in both, and
 * URI headers must match. `pushParamsMustMatch` adds RFC 8599 §5.3: pn-provider, pn-prid and
 * pn-param must be equal, and one present on only one side means no match.
 */
export function sipUriEquals(a: SipUri, b: SipUri, options: { pushParamsMustMatch?: boolean } = {}): boolean {
  if (a.scheme !== b.scheme) return false;
  if (a.userUnescaped !== b.userUnescaped) return false;
  if ((a.password === undefined ? undefined : unescapePercent(a.password)) !== (b.password === undefined ? undefined : unescapePercent(b.password))) return false;
  if (a.hostname !== b.hostname) return false;
  if (a.port !== b.port) return false;
  const special = ['transport', 'user', 'ttl', 'method', 'maddr'];
  for (const name of special) {
    const va = a.param(name);
    const vb = b.param(name);
    if (va?.toLowerCase() !== vb?.toLowerCase()) return false;
  }
  for (const [name] of a.params) {
    const lname = name.toLowerCase();
    if (special.includes(lname) || lname.startsWith('pn-')) continue;
    if (b.params.has(name) && a.param(name)?.toLowerCase() !== b.param(name)?.toLowerCase()) return false;
  }
  if (options.pushParamsMustMatch && !pushParamsEqual(a, b)) return false;
  // Header components: names case-insensitive, values compared after unescaping (§19.1.4:
  // an escaped and an unescaped unreserved character are equivalent).
  if (a.headers.size !== b.headers.size) return false;
  for (const [name, value] of a.headers) {
    const other = b.headers.get(name);
    if (other === undefined) return false;
    if ((value === null ? '' : unescapePercent(value)) !== (other === null ? '' : unescapePercent(other))) return false;
  }
  return true;
}

/** RFC 8599 §5.3: pn-provider, pn-prid and pn-param equal, presence included. */
export function pushParamsEqual(a: SipUri, b: SipUri): boolean {
  for (const name of ['pn-provider', 'pn-prid', 'pn-param']) {
    if (a.param(name) !== b.param(name)) return false;
  }
  return true;
}
