/**
 * Parse a SIP message from bytes (RFC 3261 §7, §25). Only the start line and header
 * boundaries are parsed here; typed header values are parsed lazily by SipMessage.
 * Every failure is a SipParseError or SipLimitError naming what is wrong.
 */

import { SipLimitError, SipParseError } from '../errors.js';
import { trimLws } from './grammar.js';
import { normalizeHeaderName } from './headers.js';
import { type HeaderField, type SipMessage, SipRequest, SipResponse } from './message.js';

export interface ParseLimits {
  /** Whole message, headers and body. */
  maxMessageBytes: number;
  maxHeaders: number;
  maxLineLength: number;
}

export const DEFAULT_LIMITS: ParseLimits = {
  maxMessageBytes: 65_535,
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
 * Header names seen before, mapped to their lower-case full name. Names repeat across
 * messages, so this spares a validation and a toLowerCase per header line. Bounded so a
 * peer sending random names cannot grow it.
 */
const NAME_KEYS = new Map<string, string>();
const NAME_KEYS_MAX = 1024;

function headerKey(name: string): string | undefined {
  const known = NAME_KEYS.get(name);
  if (known !== undefined) return known;
  if (!METHOD.test(name)) return undefined;
  const key = normalizeHeaderName(name);
  if (NAME_KEYS.size < NAME_KEYS_MAX) NAME_KEYS.set(name, key);
  return key;
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
  if (headerEnd !== -1) bodyStart = headerEnd + 4;
  else {
    // Tolerate bare-LF peers (RFC 3261 §7.5 asks for CRLF but robust parsers accept LF).
    headerEnd = data.indexOf('\n\n', start, 'latin1');
    if (headerEnd === -1) {
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
  let pos = nl === -1 ? textEnd : nl + 1;
  while (pos < textEnd) {
    nl = text.indexOf('\n', pos);
    lineEnd = nl === -1 ? textEnd : nl;
    let next = nl === -1 ? textEnd : nl + 1;
    let end = lineEnd > pos && text.charCodeAt(lineEnd - 1) === 13 ? lineEnd - 1 : lineEnd;
    if (end === pos) {
      // An empty line inside the block: a bare-LF header end that came before a CRLFCRLF
      // in the body. Everything after it is body.
      bodyStart = start + Buffer.byteLength(text.slice(0, next), 'utf8');
      break;
    }
    let line: string;
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
        if (line.length > limits.maxLineLength) throw new SipLimitError('Header line too long');
      }
    } else line = text.slice(pos, end);
    pos = next;
    if (line.length > limits.maxLineLength) throw new SipLimitError('Header line too long');
    const colon = line.indexOf(':');
    if (colon <= 0) throw partialError(startLine, headers, 'Malformed header line', line.slice(0, 40));
    let nameEnd = colon;
    while (nameEnd > 0 && (line.charCodeAt(nameEnd - 1) === 32 || line.charCodeAt(nameEnd - 1) === 9)) nameEnd--;
    const name = line.slice(0, nameEnd);
    const key = headerKey(name);
    if (key === undefined) throw partialError(startLine, headers, 'Malformed header name', name.slice(0, 40));
    const value = trimLws(line.slice(colon + 1));
    headers.push({ name, key, value });
    if (key === 'content-length') {
      if (contentLength === undefined) contentLength = value;
      else if (contentLength !== value) conflictingLength = true;
    }
    if (headers.length > limits.maxHeaders) throw new SipLimitError('Too many headers');
  }

  const message = parseStartLine(startLine, headers);

  // Body framing by Content-Length (RFC 3261 §18.3, §20.14).
  const available = data.length - bodyStart;
  if (conflictingLength) throw answerable(message, 'Conflicting Content-Length headers');
  if (contentLength !== undefined) {
    if (!/^\d{1,10}$/.test(contentLength)) throw answerable(message, 'Malformed Content-Length header');
    const length = Number(contentLength);
    if (length > available) throw answerable(message, 'Content-Length larger than the body');
    // Extra bytes after the body in a datagram are discarded (§18.3).
    message.body = length === 0 ? EMPTY : data.subarray(bodyStart, bodyStart + length);
  } else if (options.stream) {
    throw answerable(message, 'Missing Content-Length header');
  } else {
    message.body = available === 0 ? EMPTY : data.subarray(bodyStart);
  }

  if (message instanceof SipRequest) checkRequest(message);
  else checkResponse(message as SipResponse);
  return message;
}

const EMPTY = Buffer.alloc(0);

function parseStartLine(line: string, headers: HeaderField[]): SipMessage {
  if (line.startsWith('SIP/')) {
    // Exactly three digits, then SP (or nothing): "SIP/2.0 4294967301 ..." is not a 429.
    const m = /^(SIP\/\d+\.\d+) (\d{3})(?: (.*))?$/i.exec(line);
    if (!m) throw new SipParseError('Malformed status line', line.slice(0, 60));
    const status = Number(m[2]);
    if (status < 100 || status > 699) throw new SipParseError('Status code out of range', m[2]);
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
  const request = new SipRequest(method, uri, headers, undefined, version.toUpperCase());
  if (version.toUpperCase() !== 'SIP/2.0') throw answerable(request, 'Unsupported SIP version');
  if (uri.length === 0 || uri.includes(' ')) throw answerable(request, 'Malformed Request-URI');
  return request;
}

function checkRequest(request: SipRequest): void {
  // The headers a 400 needs (RFC 3261 §8.2.6.2) and the transaction layer reads: a
  // failure here leaves nothing to answer with, so the request is dropped.
  for (const [key, display] of REQUIRED_REQUEST) {
    if (!request.has(key)) throw new SipParseError(`Missing ${display} header`);
  }
  void request.via;
  const cseq = request.cseq;
  void request.callId;
  void request.from;
  void request.to;
  // Everything else the core relies on: errors from here on can be answered with a 400.
  // Other headers stay lazy.
  try {
    if (cseq.method !== request.method && request.method !== 'ACK' && request.method !== 'CANCEL') {
      throw new SipParseError('CSeq method does not match the request method');
    }
    if (request.method === 'ACK' && cseq.method !== 'ACK') throw new SipParseError('CSeq method does not match the request method');
    if (request.method === 'CANCEL' && cseq.method !== 'CANCEL') throw new SipParseError('CSeq method does not match the request method');
    void request.maxForwards;
    void request.uri;
  } catch (err) {
    if (err instanceof SipParseError) {
      err.answerable = true;
      (err as SipParseError & { request?: SipRequest }).request = request;
    }
    throw err;
  }
}

function checkResponse(response: SipResponse): void {
  if (!response.has('via')) throw new SipParseError('Missing Via header');
  void response.via;
  void response.cseq;
  void response.callId;
}

/**
 * True when a 400 can be built for this request: it has a top Via to send it to and
 * readable From, To, Call-ID and CSeq to copy (RFC 3261 §8.2.6.2). Only used on error paths.
 */
function canAnswer(message: SipMessage): message is SipRequest {
  if (!(message instanceof SipRequest)) return false;
  try {
    for (const [key] of REQUIRED_REQUEST) if (!message.has(key)) return false;
    void message.via;
    void message.cseq;
    void message.callId;
    void message.from;
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

function answerable(message: SipMessage, reason: string): SipParseError {
  const ok = canAnswer(message);
  const err = new SipParseError(reason, undefined, ok) as AnswerableParseError;
  if (ok) err.request = message;
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
