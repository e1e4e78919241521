/**
 * SIP, SIPS and tel URIs (RFC 3261 §19.1, §25; RFC 3966), with RFC 8599 push parameters
 * easy to read and to strip. Parameter values and the user part keep their %-escapes as
 * written so a forwarded URI is byte-exact; accessors unescape on demand.
 */

import { SipParseError } from '../errors.js';
import { Params, unescapePercent } from './grammar.js';

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
const USER_CHARS = /^(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$/;
const PASSWORD_CHARS = /^(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*$/;

export class SipUri {
  readonly scheme: 'sip' | 'sips';
  /** User part as written (may contain %-escapes). */
  user: string | undefined;
  password: string | undefined;
  /** Host as written; IPv6 references keep their brackets. */
  host: string;
  port: number | undefined;
  readonly params: Params;
  readonly headers: Params;

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
    this.user = init.user;
    this.password = init.password;
    this.host = init.host;
    this.port = init.port;
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
  constructor(
    public number: string,
    readonly params: Params = new Params(),
  ) {}

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

function parseSipUri(text: string, scheme: 'sip' | 'sips', from: number): SipUri {
  const rest = text.slice(from);
  if (rest.length === 0) throw new SipParseError('Malformed URI', 'missing host');
  if (/[\s<>"]/.test(rest)) throw new SipParseError('Malformed URI', 'illegal character');

  // userinfo ends at the first '@': '@' is allowed nowhere else in a SIP URI (params and
  // headers must escape it), while '?', '=' and ';' may all appear in a user part
  // (user-unreserved, RFC 4475 §3.1.1.2).
  const at = rest.indexOf('@');

  let user: string | undefined;
  let password: string | undefined;
  if (at !== -1) {
    const userinfo = rest.slice(0, at);
    const pc = userinfo.indexOf(':');
    user = pc === -1 ? userinfo : userinfo.slice(0, pc);
    if (pc !== -1) password = userinfo.slice(pc + 1);
    if (user.length === 0 || !USER_CHARS.test(user)) throw new SipParseError('Malformed URI user part', userinfo.slice(0, 60));
    if (password !== undefined && !PASSWORD_CHARS.test(password)) throw new SipParseError('Malformed URI password', '');
  }

  const hostStart = at + 1;
  let i = hostStart;
  let host: string;
  if (rest.charCodeAt(i) === 91 /* [ */) {
    const close = rest.indexOf(']', i);
    if (close === -1) throw new SipParseError('Malformed IPv6 reference', rest.slice(i, i + 60));
    host = rest.slice(i, close + 1);
    i = close + 1;
  } else {
    while (i < rest.length) {
      const c = rest.charCodeAt(i);
      if (c === 58 /* : */ || c === 59 /* ; */ || c === 63 /* ? */) break;
      i++;
    }
    host = rest.slice(hostStart, i);
  }
  if (!isValidHost(host)) throw new SipParseError('Malformed URI host', host.slice(0, 60));

  let port: number | undefined;
  if (rest.charCodeAt(i) === 58) {
    let j = i + 1;
    while (j < rest.length && rest.charCodeAt(j) >= 48 && rest.charCodeAt(j) <= 57) j++;
    const digits = rest.slice(i + 1, j);
    port = Number(digits);
    if (digits.length === 0 || digits.length > 5 || port > 65535) throw new SipParseError('Malformed URI port', digits);
    i = j;
  }

  let params: Params | undefined;
  let headers: Params | undefined;
  if (i < rest.length) {
    const headersAt = rest.indexOf('?', i);
    if (headersAt !== i) {
      const paramText = headersAt === -1 ? (i === 0 ? rest : rest.slice(i)) : rest.slice(i, headersAt);
      if (paramText.charCodeAt(0) !== 59) throw new SipParseError('Malformed URI', `unexpected "${paramText.slice(0, 20)}" after host`);
      // uri-parameters: names are paramchars (§25.1); checked on the whole text at once
      // rather than per parameter.
      if (!URI_PARAMS.test(paramText)) throw new SipParseError('Malformed URI parameter', paramText.slice(0, 40));
      if (paramText.includes('%') && BAD_ESCAPE.test(paramText)) throw new SipParseError('Malformed %-escape in URI parameter', paramText.slice(0, 40));
      params = Params.parse(paramText.slice(1), ';');
    }
    if (headersAt !== -1) headers = Params.parse(rest.slice(headersAt + 1), '&');
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
