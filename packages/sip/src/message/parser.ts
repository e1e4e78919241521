/**
 * Parse a SIP message from bytes (RFC 3261 §7, §25). Only the start line and header
 * boundaries are parsed here; typed header values are parsed lazily by SipMessage.
 * Every failure is a SipParseError or SipLimitError naming what is wrong.
 */

import { SipLimitError, SipParseError } from '../errors.js';
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

export function parseMessage(data: Buffer, options: ParseOptions = {}): SipMessage {
  const limits = options.limits ? { ...DEFAULT_LIMITS, ...options.limits } : DEFAULT_LIMITS;
  if (data.length > limits.maxMessageBytes) throw new SipLimitError(`Message too large (${data.length} bytes)`);

  // Leading CRLFs are keep-alives or stream noise (RFC 3261 §7.5): skip them.
  let start = 0;
  while (start < data.length && (data[start] === 13 || data[start] === 10)) start++;
  if (start === data.length) throw new SipParseError('Empty message');

  let headerEnd = data.indexOf('\r\n\r\n', start, 'latin1');
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
  const lines = text.split(/\r?\n/);
  const startLine = lines[0];
  if (startLine.length > limits.maxLineLength) throw new SipLimitError('Start line too long');

  const headers: HeaderField[] = [];
  for (let i = 1; i < lines.length; i++) {
    let line = lines[i];
    if (line.length === 0) continue;
    // Line folding (RFC 3261 §7.3.1): continuation lines start with whitespace.
    while (i + 1 < lines.length && (lines[i + 1].startsWith(' ') || lines[i + 1].startsWith('\t'))) {
      line = `${line.trimEnd()} ${lines[i + 1].trim()}`;
      i++;
    }
    if (line.length > limits.maxLineLength) throw new SipLimitError('Header line too long');
    const colon = line.indexOf(':');
    if (colon <= 0) throw partialError(startLine, headers, 'Malformed header line', line.slice(0, 40));
    const name = line.slice(0, colon).trim();
    if (!METHOD.test(name)) throw partialError(startLine, headers, 'Malformed header name', name.slice(0, 40));
    headers.push({ name, key: normalizeHeaderName(name), value: line.slice(colon + 1).trim() });
    if (headers.length > limits.maxHeaders) throw new SipLimitError('Too many headers');
  }

  const message = parseStartLine(startLine, headers);

  // Body framing by Content-Length (RFC 3261 §18.3, §20.14).
  const lengthValues = message.getAll('content-length');
  const available = data.length - bodyStart;
  if (lengthValues.length > 1 && new Set(lengthValues.map((v) => v.trim())).size > 1) {
    throw answerable(message, 'Conflicting Content-Length headers');
  }
  if (lengthValues.length > 0) {
    const raw = lengthValues[0].trim();
    if (!/^\d{1,10}$/.test(raw)) throw answerable(message, 'Malformed Content-Length header');
    const length = Number(raw);
    if (length > available) throw answerable(message, 'Content-Length larger than the body');
    // Extra bytes after the body in a datagram are discarded (§18.3).
    message.body = length === 0 ? Buffer.alloc(0) : data.subarray(bodyStart, bodyStart + length);
  } else if (options.stream) {
    throw answerable(message, 'Missing Content-Length header');
  } else {
    message.body = available === 0 ? Buffer.alloc(0) : data.subarray(bodyStart);
  }

  if (message instanceof SipRequest) checkRequest(message);
  else checkResponse(message as SipResponse);
  return message;
}

function parseStartLine(line: string, headers: HeaderField[]): SipMessage {
  if (line.startsWith('SIP/')) {
    const m = /^(SIP\/\d+\.\d+) (\d{3}) ?(.*)$/i.exec(line);
    if (!m) throw new SipParseError('Malformed status line', line.slice(0, 60));
    const status = Number(m[2]);
    if (status < 100 || status > 699) throw new SipParseError('Status code out of range', m[2]);
    return new SipResponse(status, m[3], headers, undefined, m[1].toUpperCase());
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
  for (const [key, display] of REQUIRED_REQUEST) {
    if (!request.has(key)) throw answerable(request, `Missing ${display} header`);
  }
  // Parse what the transaction layer needs right away so an error becomes a 400 here,
  // before any state is created. Everything else stays lazy.
  try {
    void request.via;
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

/** A parse error that still lets the receiver answer 400 (the request's headers are known). */
export interface AnswerableParseError extends SipParseError {
  request?: SipRequest;
}

function answerable(message: SipMessage, reason: string): SipParseError {
  const err = new SipParseError(reason, undefined, message instanceof SipRequest) as AnswerableParseError;
  if (message instanceof SipRequest) err.request = message;
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
