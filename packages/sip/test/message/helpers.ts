// Shared helpers for the message-layer tests.
import assert from 'node:assert/strict';
import { SipLimitError, SipParseError } from '../../src/errors.js';
import { type ParseOptions, type SipMessage, SipRequest, SipResponse, parseMessage } from '../../src/message/index.js';

/** Join lines with CRLF. A message's header block ends with an empty line: pass '' twice. */
export function crlf(...lines: string[]): string {
  return lines.join('\r\n');
}

/** Header lines + blank line + body, as bytes (latin1 keeps \x00-\xff byte-exact). */
export function wire(lines: string[], body = '', encoding: BufferEncoding = 'utf8'): Buffer {
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, encoding), Buffer.from(body, encoding)]);
}

export function parse(data: Buffer | string, options?: ParseOptions): SipMessage {
  return parseMessage(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, options);
}

export function parseRequest(data: Buffer | string, options?: ParseOptions): SipRequest {
  const m = parse(data, options);
  assert.ok(m instanceof SipRequest, 'expected a request');
  return m;
}

export function parseResponse(data: Buffer | string, options?: ParseOptions): SipResponse {
  const m = parse(data, options);
  assert.ok(m instanceof SipResponse, 'expected a response');
  return m;
}

/** Assert `fn` throws a SipParseError whose reason matches; returns it. */
export function expectParseError(fn: () => unknown, reason: RegExp, answerable?: boolean): SipParseError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SipParseError, `expected SipParseError, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught)}`);
  assert.match(caught.reason, reason);
  if (answerable !== undefined) assert.equal(caught.answerable, answerable, `answerable for "${caught.reason}"`);
  return caught;
}

export function expectLimitError(fn: () => unknown, reason: RegExp): SipLimitError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SipLimitError, `expected SipLimitError, got ${String(caught)}`);
  assert.match(caught.reason, reason);
  return caught;
}

/** A minimal valid request's headers (Via, From, To, Call-ID, CSeq, Max-Forwards). */
export function basicHeaders(method = 'OPTIONS', extra: string[] = []): string[] {
  return [
    'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds',
    'Max-Forwards: 70',
    'To: <sip:bob@example.com>',
    'From: "Alice" <sip:alice@example.com>;tag=1928301774',
    'Call-ID: a84b4c76e66710@pc33.example.com',
    `CSeq: 314159 ${method}`,
    ...extra,
  ];
}

export function request(method = 'OPTIONS', extra: string[] = [], body = '', uri = 'sip:bob@example.com'): Buffer {
  const lines = [`${method} ${uri} SIP/2.0`, ...basicHeaders(method, extra)];
  if (!extra.some((l) => /^(content-length|l)\s*:/i.test(l))) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return wire(lines, body);
}

/** Start line and every header (name, value) plus body: what "equivalent" means here. */
export function shape(m: SipMessage): { start: string; headers: Array<[string, string]>; body: string } {
  return {
    start: m.startLine(),
    headers: m.headers.map((h) => [h.name, h.value]),
    body: m.body.toString('latin1'),
  };
}
