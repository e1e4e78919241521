// Property tests (fast-check): random well-formed messages survive parse(serialize(m));
// random and mutated bytes never throw anything but SipParseError/SipLimitError and never hang.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SipLimitError, SipParseError } from '../../src/errors.js';
import {
  type HeaderField,
  type SipMessage,
  NameAddr,
  Params,
  SipRequest,
  SipResponse,
  SipUri,
  escapePercent,
  header,
  parseMessage,
  quote,
} from '../../src/message/index.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);
/** Bounded time per property, shrinking included: a hang is a failure, not a stuck CI. */
const LIMITS = {
  interruptAfterTimeLimit: 30_000,
  markInterruptAsFailure: true,
  // Replay a reported failure: FC_SEED=<seed> FC_PATH=<path> (shrinking skipped).
  ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH, endOnFailure: true, verbose: 2 } : {}),
};
/** A parse of at most 64 KiB must never take longer than this (no regex catastrophes). */
const MAX_MS_PER_PARSE = 250;

// ----- generators ------------------------------------------------------------------------

const ALPHANUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const TOKEN_CHARS = `${ALPHANUM}-.!%*_+\`'~`;
const chars = (set: string) => fc.constantFrom(...set.split(''));
const str = (set: string, minLength: number, maxLength: number) => fc.string({ unit: chars(set), minLength, maxLength });

const token = str(TOKEN_CHARS, 1, 12);
const alnum = str(ALPHANUM, 1, 10);
const label = fc.tuple(alnum, fc.option(fc.tuple(str(`${ALPHANUM}-`, 0, 6), alnum), { nil: undefined })).map(([a, rest]) => (rest ? `${a}${rest[0]}${rest[1]}` : a));
// Hostnames whose last label starts with a letter, so they are never read as IPv4.
const hostname = fc.tuple(fc.array(label, { minLength: 0, maxLength: 3 }), str('abcdefghijklmnopqrstuvwxyz', 1, 6)).map(([labels, tld]) => [...labels, tld].join('.'));
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const ipv6 = fc.ipV6().map((a) => `[${a}]`);
const host = fc.oneof({ weight: 3, arbitrary: hostname }, { weight: 2, arbitrary: ipv4 }, { weight: 1, arbitrary: ipv6 });
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });

/** Any text, %-escaped where a URI needs it (exercises escaping of UTF-8, ';', '@', ...). */
const escapedText = fc.string({ minLength: 1, maxLength: 16, unit: 'grapheme' }).map((s) => escapePercent(s, ''));
const userPart = fc.oneof(str(`${ALPHANUM}-_.!~*'()&=+$,`, 1, 12), escapedText);
/** uri-parameter names and values: paramchar minus escapes (RFC 3261 §25.1). */
const paramChars = str(`${ALPHANUM}-_.!~*'()[]/:&+$`, 1, 12);
const paramValue = fc.oneof(paramChars, escapedText);
const uriParams = fc.array(fc.tuple(paramChars, fc.option(paramValue, { nil: null })), { maxLength: 4 });

const sipUri = fc
  .record({ scheme: fc.constantFrom('sip', 'sips'), user: fc.option(userPart, { nil: undefined }), host, port, params: uriParams })
  .map(({ scheme, user, host: h, port: p, params }) => new SipUri({ scheme: scheme as 'sip' | 'sips', user, host: h, port: p, params: new Params(params.map(([k, v]) => [k, v])) }));

/** Display names: token words, or arbitrary printable text with quotes and backslashes. */
const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 20 });
const displayName = fc.option(
  fc.oneof(
    fc.array(token, { minLength: 1, maxLength: 3 }).map((w) => w.join(' ')),
    printable,
    fc.string({ unit: 'grapheme', maxLength: 10 }).filter((s) => !/[\r\n]/.test(s)),
  ),
  { nil: undefined },
);
const headerParams = fc.array(fc.tuple(token, fc.option(fc.oneof(token, printable.map(quote)), { nil: null })), { maxLength: 3 });

const nameAddr = fc.record({ uri: sipUri, display: displayName, params: headerParams }).map(({ uri, display, params }) => new NameAddr(uri, display, new Params(params), true));

/** Values of headers nobody types: printable/UTF-8 text without CR/LF or edge whitespace. */
const unknownValue = fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, ' ').replace(/^[ \t]+|[ \t]+$/g, ''));
const unknownName = token.filter((t) => t.length > 1).map((t) => `X-${t}`);

interface Generated {
  message: SipMessage;
  from: NameAddr;
  to: NameAddr;
  contacts: NameAddr[];
}

const common = fc.record({
  from: nameAddr.map((n) => {
    n.tag = 'f1';
    return n;
  }),
  to: nameAddr,
  callId: fc.tuple(token, fc.option(hostname, { nil: undefined })).map(([a, b]) => (b ? `${a}@${b}` : a)),
  seq: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  vias: fc.array(fc.record({ transport: fc.constantFrom('UDP', 'TCP', 'TLS', 'WS', 'WSS'), host, port, branch: token, rport: fc.boolean() }), { minLength: 1, maxLength: 3 }),
  maxForwards: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
  contacts: fc.array(nameAddr, { maxLength: 3 }),
  unknown: fc.array(fc.tuple(unknownName, unknownValue), { maxLength: 5 }),
  body: fc.uint8Array({ maxLength: 300 }),
  compact: fc.boolean(),
});

type Common = typeof common extends fc.Arbitrary<infer T> ? T : never;

function buildHeaders(c: Common, method: string): HeaderField[] {
  const h: HeaderField[] = [];
  for (const v of c.vias) h.push(header(c.compact ? 'v' : 'Via', `SIP/2.0/${v.transport} ${v.host}${v.port ? `:${v.port}` : ''};branch=z9hG4bK${v.branch}${v.rport ? ';rport' : ''}`));
  h.push(header(c.compact ? 'f' : 'From', c.from.toString()));
  h.push(header(c.compact ? 't' : 'To', c.to.toString()));
  h.push(header(c.compact ? 'i' : 'Call-ID', c.callId));
  h.push(header('CSeq', `${c.seq} ${method}`));
  if (c.maxForwards !== undefined) h.push(header('Max-Forwards', String(c.maxForwards)));
  if (c.contacts.length > 0) h.push(header(c.compact ? 'm' : 'Contact', c.contacts.map(String).join(', ')));
  for (const [name, value] of c.unknown) h.push(header(name, value));
  return h;
}

const requestArb: fc.Arbitrary<Generated> = fc.record({ c: common, method: token, uri: sipUri }).map(({ c, method, uri }) => ({
  message: new SipRequest(method, uri, buildHeaders(c, method), Buffer.from(c.body)),
  from: c.from,
  to: c.to,
  contacts: c.contacts,
}));

const responseArb: fc.Arbitrary<Generated> = fc
  .record({ c: common, status: fc.integer({ min: 100, max: 699 }), reason: unknownValue, method: token })
  .map(({ c, status, reason, method }) => ({
    message: new SipResponse(status, reason, buildHeaders(c, method), Buffer.from(c.body)),
    from: c.from,
    to: c.to,
    contacts: c.contacts,
  }));

const messageArb = fc.oneof(requestArb, responseArb);

// ----- helpers -----------------------------------------------------------------------------

function withoutLength(m: SipMessage): Array<[string, string]> {
  return m.headers.filter((h) => h.key !== 'content-length').map((h) => [h.name, h.value]);
}

/** Parse and read every typed accessor; only the typed errors may escape. */
function parseAndRead(data: Buffer, stream: boolean): void {
  const started = performance.now();
  try {
    const m = parseMessage(data, { stream });
    const reads: Array<() => unknown> = [
      () => m.vias.map((v) => [v.branch, v.received, v.rport, v.toString()]),
      () => [m.from.tag, m.from.toString()],
      () => [m.to.tag, m.to.displayName],
      () => m.callId,
      () => m.cseq.toString(),
      () => m.maxForwards,
      () => {
        const c = m.contacts;
        return c === '*' ? c : c.map((x) => [x.expires, x.q, x.instance, x.regId, x.sipUri?.push, x.toString()]);
      },
      () => m.routes.concat(m.recordRoutes, m.paths).map(String),
      () => [m.expires, m.minExpires],
      () => [m.supported, m.require, m.proxyRequire, m.allow],
      () => ['authorization', 'proxy-authorization', 'www-authenticate', 'proxy-authenticate'].map((n) => m.authHeaders(n as 'authorization')),
      () => m.featureCaps.map((f) => f.get('+sip.pns')),
      () => m.reasons.map(String),
      () => (m instanceof SipRequest ? m.uri.toString() : m.toString()),
      () => parseMessage(m.toBuffer(), { stream }),
    ];
    for (const read of reads) {
      try {
        read();
      } catch (err) {
        if (!(err instanceof SipParseError) && !(err instanceof SipLimitError)) throw err;
      }
    }
  } catch (err) {
    if (!(err instanceof SipParseError) && !(err instanceof SipLimitError)) {
      throw new Error(`unexpected ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} for ${JSON.stringify(data.toString('latin1').slice(0, 400))}`, { cause: err });
    }
  }
  const elapsed = performance.now() - started;
  assert.ok(elapsed < MAX_MS_PER_PARSE, `parse took ${elapsed.toFixed(1)} ms for ${data.length} bytes`);
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicate'; at: number; length: number };

const SPECIAL = [':', ';', ',', '"', '\\', '<', '>', '@', '%', '=', '?', '[', ']', ' ', '\t', '\r\n', '\r\n ', '\n', '\r', '\r\n\r\n', '\x00', '\xff', 'é'].map((s) => Buffer.from(s, 'latin1'));

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.oneof(fc.constantFrom(...SPECIAL).map((b) => new Uint8Array(b)), fc.uint8Array({ minLength: 1, maxLength: 8 })) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 60 }) }),
);

function mutate(data: Buffer, mutations: Mutation[]): Buffer {
  let out = Buffer.from(data);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % (out.length + 1);
    switch (m.kind) {
      case 'flip':
        if (at < out.length) out[at] ^= 1 << m.bit;
        break;
      case 'truncate':
        out = out.subarray(0, at);
        break;
      case 'insert':
        out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
        break;
      case 'delete':
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
        break;
      case 'duplicate':
        out = Buffer.concat([out.subarray(0, at + m.length), out.subarray(at)]);
        break;
    }
  }
  return out;
}

// ----- properties --------------------------------------------------------------------------

describe('property: random well-formed messages survive parse(serialize(m))', () => {
  test('start line, headers (name and value, in order) and body are equal', () => {
    fc.assert(
      fc.property(messageArb, fc.boolean(), ({ message }, stream) => {
        const wire = message.toBuffer();
        const parsed = parseMessage(wire, { stream });
        assert.equal(parsed.startLine(), message.startLine());
        assert.deepEqual(withoutLength(parsed), withoutLength(message));
        assert.ok(parsed.body.equals(message.body), 'body');
        assert.equal(parsed.get('content-length'), String(message.body.length));
        // And once more: serialize(parse(serialize(m))) is a fixed point.
        assert.ok(parsed.toBuffer().equals(wire));
      }),
      { ...LIMITS, numRuns: RUNS },
    );
  });

  test('typed values read back: display names with quotes/escapes, tags, URIs, contact params', () => {
    fc.assert(
      fc.property(messageArb, ({ message, from, to, contacts }) => {
        const parsed = parseMessage(message.toBuffer());
        assert.equal(parsed.from.displayName, from.displayName);
        assert.equal(parsed.from.tag, 'f1');
        assert.equal(parsed.from.uri.toString(), from.uri.toString());
        assert.deepEqual([...parsed.from.params], [...from.params]);
        assert.equal(parsed.to.displayName, to.displayName);
        assert.equal(parsed.to.uri.toString(), to.uri.toString());
        const pc = parsed.contacts;
        assert.ok(pc !== '*');
        assert.deepEqual(
          pc.map((c) => [c.displayName, c.uri.toString(), [...c.params]]),
          contacts.map((c) => [c.displayName, c.uri.toString(), [...c.params]]),
        );
        for (let i = 0; i < contacts.length; i++) {
          const a = (contacts[i].uri as SipUri).userUnescaped;
          assert.equal((pc[i].uri as SipUri).userUnescaped, a);
        }
        if (parsed instanceof SipRequest && message instanceof SipRequest) assert.equal(parsed.uri.toString(), message.uri.toString());
      }),
      { ...LIMITS, numRuns: RUNS },
    );
  });

  test('an unrelated change keeps every unknown header and parameter as it was', () => {
    fc.assert(
      fc.property(requestArb, ({ message }) => {
        const parsed = parseMessage(message.toBuffer()) as SipRequest;
        parsed.set('Max-Forwards', '9');
        const again = parseMessage(parsed.toBuffer());
        assert.deepEqual(
          again.headers.filter((h) => h.key !== 'max-forwards' && h.key !== 'content-length').map((h) => [h.name, h.value]),
          message.headers.filter((h) => h.key !== 'max-forwards').map((h) => [h.name, h.value]),
        );
        assert.equal(again.maxForwards, 9);
      }),
      { ...LIMITS, numRuns: Math.ceil(RUNS / 2) },
    );
  });
});

describe('property: random and mutated bytes only ever raise the typed errors, in bounded time', () => {
  test('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.boolean(), (bytes, stream) => parseAndRead(Buffer.from(bytes), stream)),
      { ...LIMITS, numRuns: RUNS * 3 },
    );
  });

  test('random SIP-ish text (start lines, header names and separators shuffled)', () => {
    const piece = fc.oneof(
      fc.constantFrom('INVITE sip:a@b.com SIP/2.0\r\n', 'SIP/2.0 200 OK\r\n', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n', 'From: <sip:a@b>;tag=1\r\n', 'To: sip:c@d\r\n', 'Call-ID: x\r\n', 'CSeq: 1 INVITE\r\n', 'Contact: *\r\n', 'Content-Length: 3\r\n', 'l: 0\r\n', '\r\n', ' ', ';', ',', '"', '<', '>', ':', '%', '@', '[', ']', 'sip:', '\\'),
      fc.string({ maxLength: 8 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), fc.boolean(), (pieces, stream) => parseAndRead(Buffer.from(pieces.join(''), 'utf8'), stream)),
      { ...LIMITS, numRuns: RUNS * 2 },
    );
  });

  test('mutated valid messages (bit flips, truncations, insertions, deletions, duplications)', () => {
    fc.assert(
      fc.property(messageArb, fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), ({ message }, mutations, stream) =>
        parseAndRead(mutate(message.toBuffer(), mutations), stream),
      ),
      { ...LIMITS, numRuns: RUNS * 3 },
    );
  });

  test('pathological inputs near the limits parse or fail quickly (no regex catastrophe)', () => {
    const base = (value: string) => Buffer.from(`OPTIONS sip:a@b.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b.com>;tag=1\r\nTo: <sip:a@b.com>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n${value}\r\nContent-Length: 0\r\n\r\n`, 'latin1');
    const n = 8000;
    const cases = [
      `Contact: ${'<'.repeat(n)}`,
      `Contact: ${'"'.repeat(n)}`,
      `Contact: ${'\\"'.repeat(n / 2)}`,
      `Contact: <sip:a@b.com${';x'.repeat(n / 2)}>`,
      `Contact: <sip:a@b.com${';x='.repeat(n / 3)}>`,
      `Contact: <sip:${'a.'.repeat(n / 2)}>`,
      `Contact: <sip:${'a-'.repeat(120)}!.com>`,
      `Contact: <sip:${'1.'.repeat(n / 2)}>`,
      `Contact: <sip:a@b.com${'%'.repeat(n)}>`,
      `Contact: ${'<sip:a@b.com>,'.repeat(n / 14)}`,
      `Route: ${', '.repeat(n / 2)}`,
      `Via: SIP/2.0/UDP ${'a'.repeat(n)}`,
      `Via: SIP ${'/ '.repeat(n / 2)}`,
      `Supported: ${'a,'.repeat(n / 2)}`,
      `Authorization: Digest ${'a=b, '.repeat(n / 5)}`,
      `Authorization: Digest ${'a="'.repeat(n / 3)}`,
      `Feature-Caps: *${';+sip.x="y"'.repeat(n / 12)}`,
      `Reason: SIP${';cause=1'.repeat(n / 8)}`,
      `From2: ${' \t'.repeat(n / 2)}x`,
    ];
    for (const value of cases) parseAndRead(base(value), false);
    // Many header lines, many fold lines, and a body full of CRLFs.
    parseAndRead(Buffer.from(`OPTIONS sip:a@b.com SIP/2.0\r\n${'X: y\r\n'.repeat(120)}\r\n`), false);
    parseAndRead(Buffer.from(`OPTIONS sip:a@b.com SIP/2.0\r\nX: y\r\n${' z\r\n'.repeat(5000)}\r\n`), false);
    parseAndRead(Buffer.concat([base('X: y'), Buffer.alloc(30_000, '\r\n')]), false);
    parseAndRead(Buffer.from(`${'\n'.repeat(30_000)}OPTIONS sip:a@b.com SIP/2.0\n\n`), true);
  });
});
