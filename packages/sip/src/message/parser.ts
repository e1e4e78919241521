/**
 * Parse a SIP message from bytes (RFC 3261 §7, §25). Only the start line and header
 * boundaries are parsed here; typed header values are parsed lazily by SipMessage.
 * Every failure is a SipParseError or SipLimitError naming what is wrong.
 */

import { SipLimitError, SipParseError } from '../errors.js';
import { isTokenChar, trimLws } from './grammar.js';
import { normalizeHeaderName } from './headers.js';
import { type HeaderField, type SipMessage, SipRequest, SipResponse, parseDigits } from './message.js';

export interface ParseLimits {
  /** Whole message, headers and body. */
  maxMessageBytes: number;
  maxHeaders: number;
  maxLineLength: number;
}

export const DEFAULT_LIMITS: ParseLimits = {
  // The stream framer's default too (DEFAULT_MAX_MESSAGE_BYTES is this value).
  maxMessageBytes: 64 * 1024,
  maxHeaders: 128,
  maxLineLength: 8_192,
};

export interface ParseOptions {
  /**
   * True for stream transports (TCP/TLS): Content-Length is then mandatory. Over UDP a
   * missing Content-Length means the body runs to the end of the datagram (RFC 3261 §18.3).
   */
  stream?: boolean;
  limits?: Partial<ParseLimits>;
}

const METHOD = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
const VERSION = /^SIP\/\d+\.\d+$/i;

/** Headers every request needs to be answerable and processable (RFC 3261 §8.1.1). */
const REQUIRED_REQUEST = [
  ['via', 'Via'],
  ['from', 'From'],
  ['to', 'To'],
  ['call-id', 'Call-ID'],
  ['cseq', 'CSeq'],
] as const;

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/**
 * The header names almost every message carries, in their usual spelling, grouped by
 * length: a match costs a length switch and a startsWith, and gives an interned key (so
 * later `h.key === 'via'` comparisons are pointer compares) without allocating the name.
 * Anything else goes through validation and lower-casing.
 */
const COMMON_NAMES: Array<Array<[string, string, number]>> = [];
/** V8 interns property names; equal interned strings compare by pointer. */
const intern = (value: string): string => Object.keys({ [value]: 0 })[0];
for (const name of [
  'Via', 'v', 'From', 'f', 'To', 't', 'Call-ID', 'i', 'CSeq', 'Max-Forwards', 'Contact', 'm',
  'Content-Length', 'l', 'Content-Type', 'c', 'Route', 'Record-Route', 'Path', 'Expires',
  'Min-Expires', 'Allow', 'Supported', 'k', 'Require', 'Proxy-Require', 'User-Agent', 'Server',
  'Authorization', 'Proxy-Authorization', 'WWW-Authenticate', 'Proxy-Authenticate', 'Accept',
  'Event', 'Subscription-State', 'Reason', 'Feature-Caps', 'Date', 'Timestamp', 'Call-Id',
  'Cseq', 'CSEQ', 'Service-Route', 'Session-Expires', 'Min-SE', 'Allow-Events', 'Content-Disposition',
  'Organization', 'Subject', 's', 'Unsupported', 'Warning', 'Retry-After', 'P-Asserted-Identity',
  'Privacy', 'Referred-By', 'Refer-To', 'Replaces', 'Content-Encoding', 'Accept-Encoding', 'Accept-Language',
]) {
  (COMMON_NAMES[name.length] ??= []).push([intern(name), intern(normalizeHeaderName(name)), name.charCodeAt(0)]);
}

/** Bits for the headers a request cannot do without (REQUIRED_REQUEST order). */
function requiredBit(key: string): number {
  switch (key) {
    case 'via': return 1;
    case 'from': return 2;
    case 'to': return 4;
    case 'call-id': return 8;
    case 'cseq': return 16;
    default: return 0;
  }
}

function isTokenRange(text: string, from: number, to: number): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (!isTokenChar(c)) return false;
  }
  return true;
}

function trimRange(text: string, from: number, to: number): string {
  while (from < to && (text.charCodeAt(from) === 32 || text.charCodeAt(from) === 9)) from++;
  while (to > from && (text.charCodeAt(to - 1) === 32 || text.charCodeAt(to - 1) === 9)) to--;
  return text.slice(from, to);
}

export function parseMessage(data: Buffer, options: ParseOptions = {}): SipMessage {
  const limits = options.limits ? { ...DEFAULT_LIMITS, ...options.limits } : DEFAULT_LIMITS;
  if (data.length > limits.maxMessageBytes) throw new SipLimitError(`Message too large (${data.length} bytes)`);

  // Leading CRLFs are keep-alives or stream noise (RFC 3261 §7.5): skip them.
  let start = 0;
  while (start < data.length && (data[start] === 13 || data[start] === 10)) start++;
  if (start === data.length) throw new SipParseError('Empty message');

  let headerEnd = data.indexOf(CRLFCRLF, start);
  let bodyStart: number;
  let bareLfEnd = false;
  if (headerEnd !== -1) bodyStart = headerEnd + 4;
  else {
    bareLfEnd = true;
    // Tolerate bare-LF peers (RFC 3261 §7.5 asks for CRLF but robust parsers accept LF).
    headerEnd = data.indexOf('\n\n', start, 'latin1');
    // Bare-LF header lines closed by a CRLF empty line: the stream framer ends the header
    // section there too, so the parser must agree.
    const mixed = data.indexOf('\n\r\n', start, 'latin1');
    if (mixed !== -1 && (headerEnd === -1 || mixed < headerEnd)) {
      headerEnd = mixed;
      bodyStart = mixed + 3;
    } else if (headerEnd === -1) {
      // A UDP datagram whose header block ends at the end of the datagram.
      if (data[data.length - 1] === 10) {
        headerEnd = data.length;
        bodyStart = data.length;
      } else throw new SipParseError('Missing empty line after headers');
    } else bodyStart = headerEnd + 2;
  }

  const text = data.toString('utf8', start, headerEnd);
  const textEnd = text.length;

  // Start line.
  let nl = text.indexOf('\n');
  let lineEnd = nl === -1 ? textEnd : nl;
  const startLine = text.slice(0, lineEnd > 0 && text.charCodeAt(lineEnd - 1) === 13 ? lineEnd - 1 : lineEnd);
  if (startLine.length > limits.maxLineLength) throw new SipLimitError('Start line too long');

  const headers: HeaderField[] = [];
  let contentLength: string | undefined;
  let conflictingLength = false;
  let required = 0;
  let lengthHeaders = 0;
  // CRLF line ends only and no folding: the header block can be re-emitted by copy.
  let clean = bareLfEnd === false && (nl === -1 || (nl > 0 && text.charCodeAt(nl - 1) === 13));
  let pos = nl === -1 ? textEnd : nl + 1;
  while (pos < textEnd) {
    nl = text.indexOf('\n', pos);
    lineEnd = nl === -1 ? textEnd : nl;
    let next = nl === -1 ? textEnd : nl + 1;
    let end = lineEnd > pos && text.charCodeAt(lineEnd - 1) === 13 ? lineEnd - 1 : lineEnd;
    if (end === lineEnd && nl !== -1) clean = false;
    if (end === pos) {
      // An empty line inside the block: a bare-LF header end that came before a CRLFCRLF
      // in the body. Everything after it is body.
      bodyStart = start + Buffer.byteLength(text.slice(0, next), 'utf8');
      break;
    }
    // The line is text[from, to); folded lines are joined into a new string first.
    let line = text;
    let from = pos;
    let to = end;
    const c0 = text.charCodeAt(next);
    if (next < textEnd && (c0 === 32 || c0 === 9)) {
      // Line folding (RFC 3261 §7.3.1): continuation lines start with whitespace.
      line = trimLws(text.slice(pos, end));
      while (next < textEnd && (text.charCodeAt(next) === 32 || text.charCodeAt(next) === 9)) {
        nl = text.indexOf('\n', next);
        lineEnd = nl === -1 ? textEnd : nl;
        end = lineEnd > next && text.charCodeAt(lineEnd - 1) === 13 ? lineEnd - 1 : lineEnd;
        const part = trimLws(text.slice(next, end));
        line = part.length > 0 ? `${line} ${part}` : line;
        next = nl === -1 ? textEnd : nl + 1;
        if (line.length > limits.maxLineLength) throw limitError(startLine, headers, 'Header line too long');
      }
      from = 0;
      to = line.length;
      clean = false;
    }
    pos = next;
    if (to - from > limits.maxLineLength) throw limitError(startLine, headers, 'Header line too long');
    const colon = line.indexOf(':', from);
    if (colon <= from || colon >= to) throw partialError(startLine, headers, 'Malformed header line', line.slice(from, Math.min(to, from + 40)));
    let nameEnd = colon;
    while (nameEnd > from && (line.charCodeAt(nameEnd - 1) === 32 || line.charCodeAt(nameEnd - 1) === 9)) nameEnd--;
    let name: string | undefined;
    let key: string | undefined;
    const candidates = COMMON_NAMES[nameEnd - from];
    if (candidates !== undefined) {
      const first = line.charCodeAt(from);
      const length = nameEnd - from;
      for (let k = 0; k < candidates.length; k++) {
        const candidate = candidates[k];
        if (first !== candidate[2]) continue;
        const known = candidate[0];
        let j = 1;
        while (j < length && line.charCodeAt(from + j) === known.charCodeAt(j)) j++;
        if (j === length) {
          name = known;
          key = candidate[1];
          break;
        }
      }
    }
    if (key === undefined) {
      if (!isTokenRange(line, from, nameEnd)) throw partialError(startLine, headers, 'Malformed header name', line.slice(from, Math.min(nameEnd, from + 40)));
      name = line.slice(from, nameEnd);
      key = normalizeHeaderName(name);
    }
    const value = trimRange(line, colon + 1, to);
    headers.push({ name: name as string, key, value });
    if (key === 'content-length') {
      lengthHeaders++;
      if (contentLength === undefined) contentLength = value;
      else if (contentLength !== value) conflictingLength = true;
    } else if (key.length <= 7) required |= requiredBit(key);
    if (headers.length > limits.maxHeaders) throw limitError(startLine, headers, 'Too many headers');
  }

  const message = parseStartLine(startLine, headers);
  // The start line re-encodes to the text it came from (no case or spacing to normalise).
  const exactStartLine = startLineExact;

  // Body framing by Content-Length (RFC 3261 §18.3, §20.14).
  const available = data.length - bodyStart;
  if (conflictingLength) throw answerable(message, 'Conflicting Content-Length headers');
  if (contentLength !== undefined) {
    const length = parseDigits(contentLength);
    if (length === undefined) throw answerable(message, 'Malformed Content-Length header');
    if (length > available) throw answerable(message, 'Content-Length larger than the body');
    // Extra bytes after the body in a datagram are discarded (§18.3).
    message.body = length === 0 ? EMPTY : data.subarray(bodyStart, bodyStart + length);
  } else if (options.stream) {
    throw answerable(message, 'Missing Content-Length header');
  } else {
    message.body = available === 0 ? EMPTY : data.subarray(bodyStart);
  }

  if (clean && exactStartLine && lengthHeaders === 1 && bodyStart === headerEnd + 4) {
    const line: [unknown, unknown, unknown] = message instanceof SipRequest
      ? [message.method, message.uriText, message.version]
      : [(message as SipResponse).version, (message as SipResponse).status, (message as SipResponse).reason];
    message.setSource({ data, start, end: bodyStart, line, body: message.body });
  }

  if (message instanceof SipRequest) checkRequest(message, required);
  else checkResponse(message as SipResponse, required);
  return message;
}

const EMPTY = Buffer.alloc(0);

/** Set by parseStartLine: whether startLine() of the message it built gives back `line`. */
let startLineExact = false;

function parseStartLine(line: string, headers: HeaderField[]): SipMessage {
  if (line.startsWith('SIP/')) {
    // Exactly three digits, then SP (or nothing): "SIP/2.0 4294967301 ..." is not a 429.
    const m = /^(SIP\/\d+\.\d+) (\d{3})(?: (.*))?$/is.exec(line); // s: a reason may contain U+2028
    if (!m) throw new SipParseError('Malformed status line', line.slice(0, 60));
    const status = Number(m[2]);
    if (status < 100 || status > 699) throw new SipParseError('Status code out of range', m[2]);
    startLineExact = m[3] !== undefined && m[1] === m[1].toUpperCase();
    return new SipResponse(status, m[3] ?? '', headers, undefined, m[1].toUpperCase());
  }
  const first = line.indexOf(' ');
  const last = line.lastIndexOf(' ');
  if (first <= 0 || last === first) throw new SipParseError('Malformed request line', line.slice(0, 60));
  const method = line.slice(0, first);
  const uri = line.slice(first + 1, last);
  const version = line.slice(last + 1);
  if (!METHOD.test(method)) throw new SipParseError('Malformed method', method.slice(0, 20));
  if (!VERSION.test(version)) throw new SipParseError('Malformed SIP version', version.slice(0, 20));
  startLineExact = version === 'SIP/2.0';
  const request = new SipRequest(method, uri, headers, undefined, version.toUpperCase());
  // RFC 3261 §8.2.2.1 … §21.5.15: a well-formed version other than 2.0 is 505 (RFC 4475 badvers).
  if (version.toUpperCase() !== 'SIP/2.0') throw answerable(request, 'Version Not Supported', 505);
  if (uri.length === 0 || uri.includes(' ')) throw answerable(request, 'Malformed Request-URI');
  return request;
}

function checkRequest(request: SipRequest, present: number): void {
  // A 400 copies Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2) and goes back along
  // the top Via: without them, or with an unreadable top Via, the request is dropped.
  if (present !== 31) {
    for (const [key, display] of REQUIRED_REQUEST) {
      if (!request.has(key)) throw new SipParseError(`Missing ${display} header`);
    }
  }
  void request.via;
  // What the transaction layer and the core rely on. Other headers stay lazy. An error here
  // can be answered when the To header (which gets the 400's tag) is readable: a malformed
  // CSeq or From is echoed back as written (RFC 4475 §3.1.2.4 expects a 400 for it).
  try {
    const cseq = request.cseq;
    if (cseq.method !== request.method && request.method !== 'ACK' && request.method !== 'CANCEL') {
      throw new SipParseError('CSeq method does not match the request method');
    }
    if (request.method === 'ACK' && cseq.method !== 'ACK') throw new SipParseError('CSeq method does not match the request method');
    if (request.method === 'CANCEL' && cseq.method !== 'CANCEL') throw new SipParseError('CSeq method does not match the request method');
    void request.callId;
    void request.from;
    void request.to;
    void request.maxForwards;
    void request.uri;
  } catch (err) {
    if (err instanceof SipParseError && canAnswer(request)) {
      err.answerable = true;
      (err as AnswerableParseError).request = request;
    }
    throw err;
  }
}

function checkResponse(response: SipResponse, present: number): void {
  if ((present & 1) === 0) throw new SipParseError('Missing Via header');
  void response.via;
  void response.cseq;
  void response.callId;
}

/**
 * True when a 400 can be built for this request (RFC 3261 §8.2.6.2): Via, From, To, Call-ID
 * and CSeq are present to be copied, the top Via is readable (the response goes there) and
 * To is readable (the response adds its tag). Only used on error paths.
 */
function canAnswer(message: SipMessage): message is SipRequest {
  if (!(message instanceof SipRequest)) return false;
  try {
    for (const [key] of REQUIRED_REQUEST) if (!message.has(key)) return false;
    void message.via;
    void message.to;
    return true;
  } catch {
    return false;
  }
}

/** A parse error that still lets the receiver answer 400 (the request's headers are known). */
export interface AnswerableParseError extends SipParseError {
  request?: SipRequest;
}

function answerable(message: SipMessage, reason: string, status = 400): SipParseError {
  const ok = canAnswer(message);
  const err = new SipParseError(reason, undefined, ok) as AnswerableParseError;
  err.status = status;
  if (ok) err.request = message;
  return err;
}

/**
 * A limit hit in the header section, answerable with 513 (RFC 3261 §21.5.14) when the start
 * line and the headers read so far allow a response (§8.2.6.2), as `partialError` does for 400.
 */
function limitError(startLine: string, headers: HeaderField[], reason: string): SipLimitError {
  const err = new SipLimitError(reason) as SipLimitError & { request?: SipRequest };
  try {
    const message = parseStartLine(startLine, headers);
    if (canAnswer(message)) err.request = message;
  } catch {
    // the start line itself is unreadable: nothing to answer
  }
  return err;
}

function partialError(startLine: string, headers: HeaderField[], reason: string, detail: string): SipParseError {
  try {
    const message = parseStartLine(startLine, headers);
    return answerable(message, `${reason}: ${detail}`);
  } catch {
    return new SipParseError(reason, detail);
  }
}
