// SIP message parsing, typed header access and serialization (RFC 3261 §7, §18.3, §20;
// RFC 3581; RFC 3326; RFC 5626; RFC 6809; RFC 8599).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SipLimitError, SipParseError } from '../../src/errors.js';
import {
  type AnswerableParseError,
  SipRequest,
  SipResponse,
  SipUri,
  createResponse,
  header,
  parseMessage,
  reasonPhrase,
  ReasonValue,
} from '../../src/message/index.js';
import { basicHeaders, crlf, expectLimitError, expectParseError, parse, parseRequest, parseResponse, request, shape, wire } from './helpers.js';

describe('RFC 3261 §7.1 Request-Line and §7.2 Status-Line', () => {
  test('Request-Line: Method SP Request-URI SP SIP-Version', () => {
    const req = parseRequest(request('INVITE', [], '', 'sip:bob@biloxi.com;transport=udp'));
    assert.equal(req.method, 'INVITE');
    assert.equal(req.uriText, 'sip:bob@biloxi.com;transport=udp');
    assert.equal(req.version, 'SIP/2.0');
    assert.equal(req.isRequest, true);
    assert.equal(req.startLine(), 'INVITE sip:bob@biloxi.com;transport=udp SIP/2.0');
    assert.ok(req.uri instanceof SipUri);
  });

  test('Status-Line: SIP-Version SP Status-Code SP Reason-Phrase (reason may contain spaces)', () => {
    const res = parseResponse(wire(['SIP/2.0 486 Busy Here, try later', ...basicHeaders('INVITE'), 'Content-Length: 0']));
    assert.equal(res.status, 486);
    assert.equal(res.reason, 'Busy Here, try later');
    assert.equal(res.isRequest, false);
    assert.equal(res.startLine(), 'SIP/2.0 486 Busy Here, try later');
  });

  test('a reason phrase may hold any UTF-8, including U+2028 LINE SEPARATOR', () => {
    const res = parseResponse(wire(['SIP/2.0 480 Abwesend\u2028zurück\u2029später', ...basicHeaders('INVITE'), 'Content-Length: 0']));
    assert.equal(res.reason, 'Abwesend\u2028zurück\u2029später');
  });

  test('the SIP-Version is case-insensitive and written upper-case', () => {
    assert.equal(parseRequest(request().toString().replace('SIP/2.0\r\n', 'sip/2.0\r\n')).version, 'SIP/2.0');
  });

  test('leading CRLFs before the start line are skipped (§7.5)', () => {
    assert.equal(parseRequest(Buffer.concat([Buffer.from('\r\n\r\n'), request()])).method, 'OPTIONS');
  });

  test('malformed start lines raise SipParseError naming the problem', () => {
    const headers = [...basicHeaders(), 'Content-Length: 0'];
    expectParseError(() => parse(wire(['INVITE sip:bob@biloxi.com', ...headers])), /request line/i, false);
    expectParseError(() => parse(wire(['INV@TE sip:bob@biloxi.com SIP/2.0', ...headers])), /method/i, false);
    expectParseError(() => parse(wire(['INVITE sip:bob@biloxi.com HTTP/1.1', ...headers])), /SIP version/i, false);
    expectParseError(() => parse(wire(['SIP/2.0 20 OK', ...headers])), /status line/i, false);
    expectParseError(() => parse(wire(['SIP/2.0 099 Low', ...headers])), /out of range/i, false);
    expectParseError(() => parse(wire(['SIP/2.0 700 High', ...headers])), /out of range/i, false);
    expectParseError(() => parse('\r\n\r\n'), /Empty message/);
    expectParseError(() => parse('OPTIONS sip:a@b.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1'), /empty line/);
  });
});

describe('RFC 3261 §7.3 header fields', () => {
  test('header names are case-insensitive', () => {
    const req = parseRequest(request('OPTIONS', ['X-Custom-Thing: 1', 'cONTENT-tYPE: text/plain']));
    assert.equal(req.get('x-custom-thing'), '1');
    assert.equal(req.get('X-CUSTOM-THING'), '1');
    assert.equal(req.contentType, 'text/plain');
    assert.ok(req.has('CALL-ID'));
    assert.equal(req.headers.find((h) => h.key === 'content-type')?.name, 'cONTENT-tYPE', 'the name is kept as written');
  });

  test('§7.3.3 compact forms i, m, e, l, c, f, s, k, t, v are the same headers as the long forms', () => {
    const data = wire([
      'INVITE sip:bob@biloxi.com SIP/2.0',
      'v: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8',
      'f: Alice <sip:alice@atlanta.com>;tag=1928301774',
      't: Bob <sip:bob@biloxi.com>',
      'i: a84b4c76e66710',
      'CSeq: 314159 INVITE',
      'Max-Forwards: 70',
      'm: <sip:alice@pc33.atlanta.com>',
      'k: path, outbound',
      's: lunch',
      'e: gzip',
      'c: text/plain',
      'l: 5',
    ], 'hello');
    const req = parseRequest(data);
    assert.equal(req.via.host, 'pc33.atlanta.com');
    assert.equal(req.from.tag, '1928301774');
    assert.equal(req.to.displayName, 'Bob');
    assert.equal(req.callId, 'a84b4c76e66710');
    assert.equal((req.contacts as Array<{ uri: unknown }>).length, 1);
    assert.deepEqual(req.supported, ['path', 'outbound']);
    assert.equal(req.get('Subject'), 'lunch');
    assert.equal(req.get('content-encoding'), 'gzip');
    assert.equal(req.contentType, 'text/plain');
    assert.equal(req.body.toString(), 'hello');
    assert.equal(req.get('l'), '5', 'a compact name works for lookups too');
  });

  test('§7.3.1 line folding: continuation lines (SP or HTAB) join with a single space', () => {
    const req = parseRequest(request('OPTIONS', ['Subject: I know you\'re there,', '   pick up the phone', '\tand talk to me!']));
    assert.equal(req.get('subject'), "I know you're there, pick up the phone and talk to me!");
  });

  test('§7.3.1 LWS around the colon is allowed', () => {
    const req = parseRequest(request('OPTIONS', ['X-Spaced  \t:   value with  inner  spaces  ']));
    assert.equal(req.get('x-spaced'), 'value with  inner  spaces');
  });

  test('an empty header value is kept', () => {
    assert.equal(parseRequest(request('OPTIONS', ['Subject:'])).get('subject'), '');
  });

  test('Unicode spaces such as U+00A0 and U+FEFF are content, not LWS', () => {
    assert.equal(parseRequest(request('OPTIONS', ['X-Nbsp: \u00a0a\u00a0'])).get('x-nbsp'), '\u00a0a\u00a0');
  });

  test('repeated Via lines and comma-joined Via values are one list (§7.3.1)', () => {
    const req = parseRequest(
      wire([
        'INVITE sip:bob@biloxi.com SIP/2.0',
        'Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1, SIP/2.0/TCP p2.example.com:5070;branch=z9hG4bK2',
        'Max-Forwards: 70',
        'Via: SIP/2.0/TLS p3.example.com;branch=z9hG4bK3',
        'To: <sip:bob@biloxi.com>',
        'From: <sip:alice@atlanta.com>;tag=1',
        'Call-ID: x',
        'CSeq: 1 INVITE',
        'Content-Length: 0',
      ]),
    );
    assert.deepEqual(
      req.vias.map((v) => [v.transport, v.host, v.port, v.branch]),
      [
        ['UDP', 'p1.example.com', undefined, 'z9hG4bK1'],
        ['TCP', 'p2.example.com', 5070, 'z9hG4bK2'],
        ['TLS', 'p3.example.com', undefined, 'z9hG4bK3'],
      ],
    );
    assert.equal(req.getAll('via').length, 2, 'two header lines');
    assert.equal(req.values('via').length, 3, 'three values');
  });

  test('comma-joined Contact and Route values; commas inside quotes and <> do not split', () => {
    const req = parseRequest(
      request('INVITE', [
        'Contact: "Doe, John" <sip:john@a.example.com;x=a,b>;q=0.5, <sip:john@b.example.com>;q=1',
        'Contact: sip:john@c.example.com;expires=60',
        'Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>',
        'Route: <sip:p3.example.com;lr>',
      ]),
    );
    const contacts = req.contacts;
    assert.ok(contacts !== '*');
    assert.equal(contacts.length, 3);
    assert.equal(contacts[0].displayName, 'Doe, John');
    assert.equal(contacts[0].sipUri?.params.get('x'), 'a,b');
    assert.equal(contacts[0].q, 0.5);
    assert.equal(contacts[1].q, 1);
    assert.equal(contacts[2].expires, 60);
    assert.deepEqual(
      req.routes.map((r) => r.sipUri?.host),
      ['p1.example.com', 'p2.example.com', 'p3.example.com'],
    );
  });

  test('quoted strings with escapes (§25.1 quoted-pair) in display names and parameters', () => {
    const req = parseRequest(request('OPTIONS', ['Contact: "Mr. \\"Quote\\" \\\\ Slash" <sip:q@example.com>;+sip.instance="<urn:uuid:1>";x="a\\"b;c,d"']));
    const contacts = req.contacts;
    assert.ok(contacts !== '*');
    assert.equal(contacts[0].displayName, 'Mr. "Quote" \\ Slash');
    assert.equal(contacts[0].params.get('x'), '"a\\"b;c,d"');
    assert.equal(contacts[0].params.unquoted('x'), 'a"b;c,d');
    // Written back, the display name is quoted and escaped again.
    assert.equal(contacts[0].toString(), '"Mr. \\"Quote\\" \\\\ Slash" <sip:q@example.com>;+sip.instance="<urn:uuid:1>";x="a\\"b;c,d"');
  });

  test('unknown headers are kept, in order, with their values as written', () => {
    const req = parseRequest(request('OPTIONS', ['X-A: 1', 'P-Weird: ;;,,;;,;', 'X-A: 2']));
    assert.deepEqual(req.getAll('x-a'), ['1', '2']);
    assert.equal(req.get('p-weird'), ';;,,;;,;');
    assert.deepEqual(req.values('p-weird'), [';;,,;;,;'], 'unknown headers are never split on commas');
  });
});

describe('RFC 3261 §18.3 framing by Content-Length', () => {
  const head = ['MESSAGE sip:bob@biloxi.com SIP/2.0', ...basicHeaders('MESSAGE'), 'Content-Type: text/plain'];

  test('over UDP a missing Content-Length means the body runs to the end of the datagram', () => {
    const req = parseRequest(wire(head, 'hello\r\n\r\nworld'));
    assert.equal(req.body.toString(), 'hello\r\n\r\nworld');
    assert.match(req.toString(), /Content-Length: 14\r\n/, 'serialized with the right length');
  });

  test('over a stream (TCP/TLS) a missing Content-Length is an answerable error', () => {
    const err = expectParseError(() => parse(wire(head, 'hello'), { stream: true }), /Missing Content-Length/, true);
    assert.ok((err as AnswerableParseError).request instanceof SipRequest);
  });

  test('a Content-Length larger than the data is an error', () => {
    expectParseError(() => parse(wire([...head, 'Content-Length: 50'], 'short')), /Content-Length larger than the body/, true);
    expectParseError(() => parse(wire([...head, 'Content-Length: 50'], 'short'), { stream: true }), /Content-Length larger/, true);
  });

  test('extra bytes after the body are discarded', () => {
    const req = parseRequest(wire([...head, 'Content-Length: 5'], 'helloEXTRA BYTES'));
    assert.equal(req.body.toString(), 'hello');
    assert.ok(!req.toBuffer().includes('EXTRA'));
  });

  test('Content-Length counts bytes, not characters', () => {
    const body = 'héllo ☎';
    const req = parseRequest(wire([...head, `Content-Length: ${Buffer.byteLength(body)}`], `${body}trailing`));
    assert.equal(req.body.toString('utf8'), body);
  });

  test('a malformed, negative or conflicting Content-Length is an error', () => {
    expectParseError(() => parse(wire([...head, 'Content-Length: abc'])), /Malformed Content-Length/, true);
    expectParseError(() => parse(wire([...head, 'Content-Length: -1'])), /Malformed Content-Length/, true);
    expectParseError(() => parse(wire([...head, 'Content-Length: 0', 'l: 2'], 'ab')), /Conflicting Content-Length/, true);
    assert.equal(parseRequest(wire([...head, 'Content-Length: 2', 'l: 2'], 'ab')).body.toString(), 'ab', 'equal duplicates are harmless');
  });

  test('Content-Length: 0 with a stream and nothing after the header block', () => {
    assert.equal(parseRequest(wire([...head, 'Content-Length: 0']), { stream: true }).body.length, 0);
  });

  test('bare-LF line ends are tolerated, even when the body contains CRLFCRLF', () => {
    const text = `${[...head, 'Content-Length: 8'].join('\n')}\n\nab\r\n\r\ncd`;
    const req = parseRequest(text);
    assert.equal(req.body.toString(), 'ab\r\n\r\ncd');
    assert.equal(req.callId, 'a84b4c76e66710@pc33.example.com');
  });

  test('bare-LF header lines closed by a CRLF empty line (where the stream framer ends them too)', () => {
    const text = `${[...head, 'Content-Length: 2'].join('\n')}\n\r\nab`;
    const req = parseRequest(text, { stream: true });
    assert.equal(req.body.toString(), 'ab');
    assert.equal(req.callId, 'a84b4c76e66710@pc33.example.com');
  });

  test('a datagram whose header block ends at the end of the datagram', () => {
    const req = parseRequest(`${crlf(...head)}\r\n`);
    assert.equal(req.body.length, 0);
  });
});

describe('typed access: Via (RFC 3261 §20.42, RFC 3581)', () => {
  test('transport, sent-by, branch, received and rport', () => {
    const res = parseResponse(
      wire(['SIP/2.0 200 OK', 'Via: SIP/2.0/udp 192.0.2.4:5062;received=198.51.100.9;rport=61002;branch=z9hG4bKnashds8;x-unknown=1', 'From: <sip:a@b.com>;tag=1', 'To: <sip:a@b.com>;tag=2', 'Call-ID: c', 'CSeq: 1 REGISTER', 'Content-Length: 0']),
    );
    const via = res.via;
    assert.equal(via.protocol, 'SIP/2.0');
    assert.equal(via.transport, 'UDP', 'transport upper-cased');
    assert.equal(via.host, '192.0.2.4');
    assert.equal(via.port, 5062);
    assert.equal(via.received, '198.51.100.9');
    assert.equal(via.rport, 61002);
    assert.equal(via.branch, 'z9hG4bKnashds8');
    assert.equal(via.hasMagicCookie, true);
    assert.equal(via.params.get('x-unknown'), '1');
  });

  test('rport without a value (a request asking for it, RFC 3581 §3) is null; absent is undefined', () => {
    assert.equal(parseRequest(request('OPTIONS', []).toString().replace('branch=', 'rport;branch=')).via.rport, null);
    assert.equal(parseRequest(request()).via.rport, undefined);
  });

  test('an IPv6 sent-by, with and without port', () => {
    const a = parseRequest(request().toString().replace('192.0.2.1:5060', '[2001:db8::9]:5070'));
    assert.equal(a.via.host, '[2001:db8::9]');
    assert.equal(a.via.port, 5070);
    const b = parseRequest(request().toString().replace('192.0.2.1:5060', '[2001:db8::9]'));
    assert.equal(b.via.port, undefined);
    assert.equal(a.via.toString(), 'SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bK776asdhds');
  });

  test('RFC 2543 branch without the magic cookie', () => {
    assert.equal(parseRequest(request().toString().replace('branch=z9hG4bK776asdhds', 'branch=776asdhds')).via.hasMagicCookie, false);
  });

  test('replaceTopVia stamps the top Via in place: the new value is what serializes and what reads back, the rest of a joined line stays', () => {
    const req = parseRequest(
      wire(['OPTIONS sip:b@example.com SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bKa, SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKb', 'Via: SIP/2.0/UDP 192.0.2.3;branch=z9hG4bKc', 'From: <sip:a@example.com>;tag=1', 'To: <sip:b@example.com>', 'Call-ID: c', 'CSeq: 1 OPTIONS', 'Max-Forwards: 70', 'Content-Length: 0']),
    );
    const stamped = req.via.clone();
    stamped.params.set('received', '198.51.100.7');
    stamped.params.set('rport', '40000');
    req.replaceTopVia(stamped);
    assert.deepEqual(req.getAll('via'), ['SIP/2.0/UDP 192.0.2.1:5060;rport=40000;branch=z9hG4bKa;received=198.51.100.7', 'SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKb', 'SIP/2.0/UDP 192.0.2.3;branch=z9hG4bKc']);
    assert.equal(req.via.rport, 40000);
    assert.equal(req.via.received, '198.51.100.7');
    const again = parseRequest(req.toBuffer());
    assert.deepEqual(again.values('via'), req.values('via'), 'serialized as read back');
    assert.equal(again.via.toString(), req.via.toString());
  });

  test('a malformed Via is a SipParseError, and the request cannot be answered', () => {
    expectParseError(() => parse(request().toString().replace('SIP/2.0/UDP 192.0.2.1:5060', 'SIP/2.0 192.0.2.1')), /Via/, false);
    expectParseError(() => parse(request().toString().replace('192.0.2.1:5060', '192.0.2.1:99999')), /Via port/, false);
    expectParseError(() => parse(request().toString().replace('192.0.2.1:5060', 'bad_host')), /Via host/, false);
  });
});

describe('typed access: From, To (RFC 3261 §20.20, §20.39)', () => {
  test('name-addr with display name and tag; addr-spec with tag', () => {
    const req = parseRequest(request('OPTIONS', []).toString().replace('To: <sip:bob@example.com>', 'To: sip:bob@example.com;tag=a6c85cf'));
    assert.equal(req.from.displayName, 'Alice');
    assert.equal(req.from.tag, '1928301774');
    assert.equal((req.from.uri as SipUri).user, 'alice');
    assert.equal(req.from.bracketed, true);
    assert.equal(req.to.tag, 'a6c85cf');
    assert.equal(req.to.bracketed, false);
    assert.equal(req.to.displayName, undefined);
  });

  test('§20.10: in addr-spec form, params after the URI are header params', () => {
    const req = parseRequest(request().toString().replace('To: <sip:bob@example.com>', 'To: sip:bob@example.com;user=phone;tag=9'));
    assert.equal(req.to.params.get('user'), 'phone');
    assert.equal((req.to.uri as SipUri).params.size, 0);
  });

  test('a multi-token unquoted display name is kept', () => {
    const req = parseRequest(request().toString().replace('"Alice"', 'Alice  Liddell'));
    assert.equal(req.from.displayName, 'Alice  Liddell');
  });

  test('the tag setter adds and removes the tag', () => {
    const req = parseRequest(request());
    const to = req.to.clone();
    to.tag = 'xyz';
    assert.equal(to.toString(), '<sip:bob@example.com>;tag=xyz');
    to.tag = undefined;
    assert.equal(to.toString(), '<sip:bob@example.com>');
  });

  test('display names that need quotes are quoted when written; CR/LF cannot inject a header', () => {
    const req = parseRequest(request());
    const from = req.from.clone();
    from.displayName = ' lead';
    assert.equal(from.toString(), '" lead" <sip:alice@example.com>;tag=1928301774');
    from.displayName = 'Evil\r\nVia: SIP/2.0/UDP attacker';
    assert.ok(!from.toString().includes('\r\n'));
    from.displayName = 'Plain Name';
    assert.equal(from.toString(), 'Plain Name <sip:alice@example.com>;tag=1928301774');
  });

  test('a missing or unreadable To makes the request unanswerable; a duplicate From is answered with 400', () => {
    expectParseError(() => parse(request('OPTIONS', ['From: <sip:x@y.com>;tag=2'])), /Duplicate From header/, true);
    expectParseError(() => parse(request('OPTIONS', ['To: <sip:x@y.com>'])), /Duplicate To header/, false);
    expectParseError(() => parse(request().toString().replace(/To: .*\r\n/, '')), /Missing To header/, false);
    expectParseError(() => parse(request().toString().replace('To: <sip:bob@example.com>', 'To: <sip:bob@example.com')), /To header/, false);
  });
});

describe('typed access: Call-ID, CSeq, Max-Forwards', () => {
  test('Call-ID is the trimmed value; duplicates are an error', () => {
    assert.equal(parseRequest(request()).callId, 'a84b4c76e66710@pc33.example.com');
    expectParseError(() => parse(request('OPTIONS', ['i: other'])), /Duplicate Call-ID/, true);
  });

  test('CSeq: sequence number and method, leading zeros, up to 2**32-1', () => {
    const req = parseRequest(request().toString().replace('CSeq: 314159 OPTIONS', 'CSeq: 00042   OPTIONS'));
    assert.equal(req.cseq.seq, 42);
    assert.equal(req.cseq.method, 'OPTIONS');
    assert.equal(parseRequest(request().toString().replace('314159', '4294967295')).cseq.seq, 4294967295);
    // A malformed CSeq is echoed back in a 400 as written (RFC 4475 §3.1.2.4).
    expectParseError(() => parse(request().toString().replace('314159', '4294967296')), /CSeq number out of range/, true);
    expectParseError(() => parse(request().toString().replace('CSeq: 314159 OPTIONS', 'CSeq: OPTIONS')), /Malformed CSeq/, true);
  });

  test('CSeq method must match the request method, except for ACK and CANCEL rules (§8.1.1.5)', () => {
    expectParseError(() => parse(wire(['OPTIONS sip:a@b.com SIP/2.0', ...basicHeaders('INVITE'), 'Content-Length: 0'])), /CSeq method/, true);
    expectParseError(() => parse(wire(['ACK sip:a@b.com SIP/2.0', ...basicHeaders('INVITE'), 'Content-Length: 0'])), /CSeq method/, true);
    assert.equal(parseRequest(request('ACK')).cseq.method, 'ACK');
    assert.equal(parseRequest(request('CANCEL')).cseq.method, 'CANCEL');
  });

  test('Max-Forwards: 0-255, leading zeros, absent is undefined', () => {
    assert.equal(parseRequest(request()).maxForwards, 70);
    assert.equal(parseRequest(request().toString().replace('Max-Forwards: 70', 'Max-Forwards: 0')).maxForwards, 0);
    assert.equal(parseRequest(request().toString().replace('Max-Forwards: 70', 'Max-Forwards: 0255')).maxForwards, 255);
    assert.equal(parseRequest(request().toString().replace('Max-Forwards: 70\r\n', '')).maxForwards, undefined);
    expectParseError(() => parse(request().toString().replace('Max-Forwards: 70', 'Max-Forwards: 256')), /Max-Forwards/, true);
    expectParseError(() => parse(request().toString().replace('Max-Forwards: 70', 'Max-Forwards: -1')), /Max-Forwards/, true);
    expectParseError(() => parse(request('OPTIONS', ['Max-Forwards: 69'])), /Duplicate Max-Forwards/, true);
  });
});

describe('typed access: Contact (RFC 3261 §20.10, RFC 5626, RFC 8599)', () => {
  const PN = 'sip:alice@198.51.100.7:52000;transport=tls;pn-provider=fcm;pn-param=proj-123;pn-prid=dGhpc2lzYXRva2Vu';

  test('a REGISTER Contact with expires, q, +sip.instance, reg-id and RFC 8599 params', () => {
    const req = parseRequest(request('REGISTER', [`Contact: <${PN}>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1;expires=600;q=0.7`]));
    const contacts = req.contacts;
    assert.ok(contacts !== '*');
    const [c] = contacts;
    assert.equal(c.expires, 600);
    assert.equal(c.q, 0.7);
    assert.equal(c.instance, '<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>');
    assert.equal(c.regId, 1);
    assert.deepEqual(c.sipUri?.push, { provider: 'fcm', prid: 'dGhpc2lzYXRva2Vu', param: 'proj-123' });
  });

  test('Contact: * (RFC 3261 §10.2.2) and "*" mixed with others is an error', () => {
    assert.equal(parseRequest(request('REGISTER', ['Contact: *', 'Expires: 0'])).contacts, '*');
    const mixed = parseRequest(request('REGISTER', ['Contact: *, <sip:a@b.com>']));
    expectParseError(() => mixed.contacts, /Contact "\*"/);
  });

  test('no Contact header gives an empty list; absent params are undefined', () => {
    assert.deepEqual(parseRequest(request()).contacts, []);
    const c = (parseRequest(request('REGISTER', ['Contact: <sip:a@b.com>'])).contacts as Array<{ expires?: number; q?: number; instance?: string; regId?: number }>)[0];
    assert.deepEqual([c.expires, c.q, c.instance, c.regId], [undefined, undefined, undefined, undefined]);
  });

  test('malformed expires, q and reg-id are reported when read', () => {
    const req = parseRequest(request('REGISTER', ['Contact: <sip:a@b.com>;expires=soon;q=1.5;reg-id=x']));
    const contacts = req.contacts;
    assert.ok(contacts !== '*');
    expectParseError(() => contacts[0].expires, /expires/);
    expectParseError(() => contacts[0].q, /q-value/);
    expectParseError(() => contacts[0].regId, /reg-id/);
  });

  test('a malformed Contact does not fail the parse (lazy) but fails when read', () => {
    const req = parseRequest(request('REGISTER', ['Contact: <sip:a@b.com']));
    expectParseError(() => req.contacts, /Contact/);
  });
});

describe('typed access: Route, Record-Route, Path, Expires, Min-Expires', () => {
  test('Route/Record-Route/Path as name-addr lists with lr and unknown params', () => {
    const req = parseRequest(
      request('INVITE', ['Record-Route: <sip:p2.example.com;lr;ftag=abc>', 'Record-Route: <sip:p1.example.com;lr>', 'Route: <sip:[2001:db8::1]:5080;lr;transport=tcp>', 'Path: <sip:edge.example.com;lr;ob>']),
    );
    assert.deepEqual(
      req.recordRoutes.map((r) => r.sipUri?.host),
      ['p2.example.com', 'p1.example.com'],
    );
    assert.equal(req.recordRoutes[0].sipUri?.params.get('ftag'), 'abc');
    assert.equal(req.routes[0].sipUri?.hostname, '2001:db8::1');
    assert.equal(req.routes[0].sipUri?.port, 5080);
    assert.equal(req.paths[0].sipUri?.params.has('ob'), true);
  });

  test('Expires and Min-Expires in seconds; malformed or duplicated is an error when read', () => {
    const req = parseRequest(request('REGISTER', ['Expires: 3600', 'Min-Expires: 60']));
    assert.equal(req.expires, 3600);
    assert.equal(req.minExpires, 60);
    assert.equal(parseRequest(request()).expires, undefined);
    expectParseError(() => parseRequest(request('REGISTER', ['Expires: never'])).expires, /Expires/);
    expectParseError(() => parseRequest(request('REGISTER', ['Expires: 1', 'Expires: 2'])).expires, /Duplicate Expires/);
  });
});

describe('typed access: Authorization, WWW-Authenticate, Proxy-* (RFC 3261 §20.7, §22.4)', () => {
  test('digest parameters, quoted values with commas, unquoted ones', () => {
    const req = parseRequest(
      request('REGISTER', [
        'Authorization: Digest username="alice", realm="atlanta.com", nonce="84a4cc6f3082121f32b42a2187831a9e", uri="sip:atlanta.com", response="7587245234b3434cc3412213e5f113a5432", algorithm=MD5, qop=auth, nc=00000001, cnonce="a,b"',
      ]),
    );
    const [auth] = req.authHeaders('authorization');
    assert.equal(auth.scheme, 'Digest');
    assert.equal(auth.get('username'), 'alice');
    assert.equal(auth.get('uri'), 'sip:atlanta.com');
    assert.equal(auth.get('algorithm'), 'MD5');
    assert.equal(auth.get('nc'), '00000001');
    assert.equal(auth.get('cnonce'), 'a,b');
  });

  test('WWW-Authenticate and Proxy-Authenticate challenges in responses; one per header line', () => {
    const res = parseResponse(
      wire([
        'SIP/2.0 401 Unauthorized',
        ...basicHeaders('REGISTER'),
        'WWW-Authenticate: Digest realm="atlanta.com", qop="auth,auth-int", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", stale=FALSE, algorithm=MD5',
        'WWW-Authenticate: Digest realm="atlanta.com", nonce="x2", algorithm=SHA-256',
        'Proxy-Authenticate: Digest realm="proxy.example", nonce="p"',
        'Content-Length: 0',
      ]),
    );
    const challenges = res.authHeaders('www-authenticate');
    assert.equal(challenges.length, 2);
    assert.equal(challenges[0].get('qop'), 'auth,auth-int');
    assert.equal(challenges[0].get('opaque'), '');
    assert.equal(challenges[1].get('algorithm'), 'SHA-256');
    assert.equal(res.authHeaders('proxy-authenticate')[0].get('realm'), 'proxy.example');
  });

  test('a duplicated digest parameter is an error when read', () => {
    const req = parseRequest(request('REGISTER', ['Authorization: Digest username="a", username="b"']));
    expectParseError(() => req.authHeaders('authorization'), /Duplicate username/);
  });
});

describe('typed access: Supported, Require, Allow, Feature-Caps, Reason, User-Agent, Content-Type', () => {
  test('option-tag and method lists across lines and commas', () => {
    const req = parseRequest(request('INVITE', ['Supported: path, outbound', 'Supported: gruu', 'Require: 100rel', 'Allow: INVITE, ACK,CANCEL , BYE']));
    assert.deepEqual(req.supported, ['path', 'outbound', 'gruu']);
    assert.deepEqual(req.require, ['100rel']);
    assert.deepEqual(req.allow, ['INVITE', 'ACK', 'CANCEL', 'BYE']);
    assert.deepEqual(parseRequest(request()).supported, []);
    expectParseError(() => parseRequest(request('INVITE', ['Supported: path, <bad>'])).supported, /option tag/);
  });

  test('Feature-Caps (RFC 6809) with RFC 8599 push indicators', () => {
    const res = parseResponse(wire(['SIP/2.0 200 OK', ...basicHeaders('REGISTER'), 'Feature-Caps: *;+sip.pns="apns";+sip.vapid="BOR-key";+sip.pnsreg="121"', 'Content-Length: 0']));
    const [fc] = res.featureCaps;
    assert.equal(fc.get('+sip.pns'), 'apns');
    assert.equal(fc.get('+sip.pnsreg'), '121');
    assert.equal(fc.get('+sip.absent'), undefined);
    assert.equal(fc.toString(), '*;+sip.pns="apns";+sip.vapid="BOR-key";+sip.pnsreg="121"');
    expectParseError(() => parseResponse(wire(['SIP/2.0 200 OK', ...basicHeaders(), 'Feature-Caps: +sip.pns="apns"', 'Content-Length: 0'])).featureCaps, /Feature-Caps/);
  });

  test('Reason (RFC 3326): protocol, cause, text; several values', () => {
    const req = parseRequest(request('CANCEL', ['Reason: SIP;cause=200;text="Call completed elsewhere", Q.850;cause=16;text="Terminated"']));
    const [sipReason, q850] = req.reasons;
    assert.equal(sipReason.protocol, 'SIP');
    assert.equal(sipReason.cause, 200);
    assert.equal(sipReason.text, 'Call completed elsewhere');
    assert.equal(q850.protocol, 'Q.850');
    assert.equal(q850.cause, 16);
    assert.equal(ReasonValue.sip(480, 'Push "timed" out').toString(), 'SIP;cause=480;text="Push \\"timed\\" out"');
    expectParseError(() => parseRequest(request('CANCEL', ['Reason: SIP;cause=abc'])).reasons, /Reason cause/);
  });

  test('User-Agent and Content-Type are read as text', () => {
    const req = parseRequest(request('MESSAGE', ['User-Agent: pushcall/0.1 (Linux; like "Gecko")', 'Content-Type:  text/plain;charset=UTF-8 '], 'hi'));
    assert.equal(req.userAgent, 'pushcall/0.1 (Linux; like "Gecko")');
    assert.equal(req.contentType, 'text/plain;charset=UTF-8');
  });

  test('parsing is lazy: a malformed header nobody reads does not fail the message', () => {
    const req = parseRequest(request('OPTIONS', ['Supported: <<<', 'Expires: never', 'Route: garbage<', 'Contact: <']));
    assert.equal(req.method, 'OPTIONS');
    assert.equal(req.get('supported'), '<<<');
  });
});

describe('forwarding and serialization', () => {
  const original = wire([
    'INVITE sip:bob@biloxi.com;x-uri-unknown=1;transport=udp SIP/2.0',
    'Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;x-via-unknown=keep;rport',
    'Max-Forwards: 70',
    'To: Bob <sip:bob@biloxi.com;x-to-uri=1>;x-to-param="Quoted, value"',
    'From: "Alice \\"A\\"" <sip:alice@atlanta.com>;tag=1928301774;x-from=ok',
    'Call-ID: a84b4c76e66710@pc33.atlanta.com',
    'CSeq: 314159 INVITE',
    'Contact: <sip:alice@pc33.atlanta.com;pn-provider=webpush;pn-prid=https%3A%2F%2Fpush.example%2Fa%3Fb%3Dc>;+sip.instance="<urn:uuid:1>";reg-id=1',
    'P-Unknown-Header: ;;,weird,, value ;x="y"',
    'X-Folded: first',
    ' second',
    'Content-Type: application/sdp',
    'Content-Length: 4',
  ], 'v=0\n');

  const unknownLines = [
    'INVITE sip:bob@biloxi.com;x-uri-unknown=1;transport=udp SIP/2.0',
    'Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;x-via-unknown=keep;rport',
    'To: Bob <sip:bob@biloxi.com;x-to-uri=1>;x-to-param="Quoted, value"',
    'From: "Alice \\"A\\"" <sip:alice@atlanta.com>;tag=1928301774;x-from=ok',
    'Contact: <sip:alice@pc33.atlanta.com;pn-provider=webpush;pn-prid=https%3A%2F%2Fpush.example%2Fa%3Fb%3Dc>;+sip.instance="<urn:uuid:1>";reg-id=1',
    'P-Unknown-Header: ;;,weird,, value ;x="y"',
  ];

  test('parse → change Max-Forwards → serialize: unknown headers and unknown URI/header params are unchanged', () => {
    const req = parseRequest(original);
    // Read the typed values a proxy reads (this must not rewrite anything).
    void [req.via.branch, req.from.tag, req.to.uri, req.contacts, req.uri, req.cseq];
    req.set('Max-Forwards', String((req.maxForwards ?? 70) - 1));
    const out = req.toString();
    for (const line of unknownLines) assert.ok(out.includes(`${line}\r\n`), `kept: ${line}`);
    assert.ok(out.includes('Max-Forwards: 69\r\n'));
    assert.ok(out.includes('X-Folded: first second\r\n'), 'folded lines are unfolded');
    assert.ok(out.endsWith('Content-Length: 4\r\n\r\nv=0\n'));
  });

  test('parse → add a Via and a Record-Route → serialize: the rest is unchanged', () => {
    const req = parseRequest(original);
    req.prepend('Via', 'SIP/2.0/UDP proxy.example.com;branch=z9hG4bKproxy1');
    req.prepend('Record-Route', '<sip:proxy.example.com;lr>');
    const again = parseRequest(req.toBuffer());
    assert.equal(again.vias.length, 2);
    assert.equal(again.vias[0].host, 'proxy.example.com');
    assert.equal(again.vias[1].params.get('x-via-unknown'), 'keep');
    assert.equal(again.recordRoutes[0].sipUri?.host, 'proxy.example.com');
    for (const line of unknownLines.slice(1)) assert.ok(again.toString().includes(line), line);
  });

  test('an unchanged message serializes byte-exact (folded lines come back unfolded)', () => {
    const unfolded = Buffer.from(original.toString('latin1').replace('X-Folded: first\r\n second', 'X-Folded: first second'), 'latin1');
    for (const data of [unfolded, Buffer.from(unfolded.toString('latin1').replace('Via: SIP/2.0/UDP', 'Via:   SIP/2.0/UDP'), 'latin1')]) {
      const req = parseRequest(data);
      void [req.via, req.contacts, req.uri];
      assert.ok(req.toBuffer().equals(data));
    }
    assert.ok(parseRequest(original).toBuffer().equals(unfolded));
  });

  test('every way of changing a message shows in toBuffer()', () => {
    const edits: Array<[string, (m: SipRequest) => void, RegExp]> = [
      ['set()', (m) => m.set('Subject', 'new'), /Subject: new\r\n/],
      ['append()', (m) => m.append('X-New', '1'), /X-New: 1\r\n/],
      ['remove()', (m) => m.remove('P-Unknown-Header'), /^(?![\s\S]*P-Unknown-Header)/],
      ['removeFirstValue()', (m) => m.removeFirstValue('Via'), /^(?![\s\S]*pc33\.atlanta\.com;branch)/],
      // (Header fields are readonly: a change to one is a set() of the header.)
      ['set() of a header the message already had', (m) => m.set('Max-Forwards', '69'), /Max-Forwards: 69\r\n/],
      ['prepend()', (m) => m.prepend('Via', 'SIP/2.0/TCP edited.example.com;branch=z9hG4bKe'), /Via: SIP\/2\.0\/TCP edited/],
      ['replacing the body', (m) => (m.body = Buffer.from('v=0\r\nlonger\r\n')), /Content-Length: 13\r\n\r\nv=0\r\nlonger\r\n$/],
      ['setting the Request-URI', (m) => (m.uri = m.uri.clone() as SipUri), /^INVITE sip:bob@biloxi\.com;x-uri-unknown=1;transport=udp SIP\/2\.0/],
      ['editing the Request-URI in place', (m) => (m.uri as SipUri).params.delete('x-uri-unknown'), /^INVITE sip:bob@biloxi\.com;transport=udp SIP\/2\.0\r\n/],
      ['changing the method', (m) => (m.method = 'OPTIONS'), /^OPTIONS /],
    ];
    for (const [what, edit, expected] of edits) {
      const req = parseRequest(original);
      edit(req);
      assert.match(req.toString(), expected, what);
      assert.ok(!req.toBuffer().equals(original), `${what} changed the bytes`);
    }
  });

  test('serialize writes a Content-Length that matches the body, once', () => {
    const req = parseRequest(request('MESSAGE', ['Content-Type: text/plain'], 'hello'));
    req.body = Buffer.from('héllo wörld');
    const out = req.toString();
    assert.match(out, /Content-Length: 13\r\n/);
    assert.equal(out.match(/Content-Length/g)?.length, 1);
    const noLength = new SipRequest('OPTIONS', 'sip:a@b.com', [header('Via', 'SIP/2.0/UDP h;branch=z9hG4bK1')], Buffer.from('xy'));
    assert.match(noLength.toString(), /Content-Length: 2\r\n\r\nxy$/);
    const twice = parseRequest(wire([...request().toString().split('\r\n').slice(0, -3), 'l: 0', 'Content-Length: 0']));
    assert.equal(twice.toString().match(/Content-Length|l:/gi)?.length, 1, 'duplicate equal Content-Length lines collapse');
  });

  test('parse(serialize(m)) is equivalent to m', () => {
    for (const data of [original, request(), request('REGISTER', ['Contact: *', 'Expires: 0'])]) {
      const m = parse(data);
      const again = parse(m.toBuffer());
      assert.deepEqual(shape(again).start, shape(m).start);
      assert.deepEqual(shape(again).body, shape(m).body);
      assert.deepEqual(
        again.headers.map((h) => [h.key, h.value]),
        m.headers.map((h) => [h.key, h.value]),
      );
    }
  });

  test('clone() gives an independent copy', () => {
    const req = parseRequest(original);
    const copy = req.clone();
    copy.set('Max-Forwards', '1');
    assert.equal(req.maxForwards, 70);
    assert.equal(copy.maxForwards, 1);
  });

  test('typed values are re-read after a header changes (cache invalidation)', () => {
    const req = parseRequest(original);
    assert.equal(req.via.host, 'pc33.atlanta.com');
    req.prepend('Via', 'SIP/2.0/TCP new.example.com;branch=z9hG4bKn');
    assert.equal(req.via.host, 'new.example.com');
    assert.equal(req.vias.length, 2);
    req.removeFirstValue('Via');
    assert.equal(req.via.host, 'pc33.atlanta.com');
    req.set('Expires', '30');
    assert.equal(req.expires, 30);
    req.remove('Expires');
    assert.equal(req.expires, undefined);
  });
});

describe('createResponse (RFC 3261 §8.2.6)', () => {
  test('copies Via, From, To, Call-ID, CSeq and adds a To tag except to 100', () => {
    const req = parseRequest(request('INVITE', ['Timestamp: 54']));
    const trying = createResponse(req, 100);
    assert.equal(trying.to.tag, undefined);
    assert.equal(trying.get('timestamp'), '54');
    const ok = createResponse(req, 200, { toTag: 'abc', headers: [['Contact', '<sip:bob@192.0.2.9>']] });
    assert.equal(ok.to.tag, 'abc');
    assert.equal(ok.reason, 'OK');
    assert.equal(ok.via.branch, req.via.branch);
    assert.equal(ok.callId, req.callId);
    assert.equal(ok.cseq.seq, req.cseq.seq);
    const again = parseResponse(ok.toBuffer());
    assert.equal(again.status, 200);
    assert.equal(reasonPhrase(555), 'Push Notification Service Not Supported');
  });
});

describe('malformed input: SipParseError names the problem; answerable when a 400 can be built', () => {
  test('a malformed header line after the essential headers is answerable, with the request attached', () => {
    const err = expectParseError(() => parse(request('OPTIONS', ['this line has no colon'])), /Malformed header line/, true) as AnswerableParseError;
    assert.ok(err.request instanceof SipRequest);
    assert.equal(err.request.callId, 'a84b4c76e66710@pc33.example.com');
  });

  test('a malformed header line before From/To/Call-ID/CSeq is not answerable', () => {
    expectParseError(() => parse(wire(['OPTIONS sip:a@b.com SIP/2.0', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1', 'broken', 'From: <sip:a@b.com>;tag=1'])), /Malformed header line/, false);
  });

  test('a malformed header name', () => {
    expectParseError(() => parse(request('OPTIONS', ['Bad Name: x'])), /Malformed header name/, true);
    expectParseError(() => parse(request('OPTIONS', ['Bäd: x'])), /Malformed header name/, true);
  });

  test('a malformed Request-URI is answerable', () => {
    expectParseError(() => parse(request('OPTIONS', [], '', 'sip:bob@')), /URI/, true);
    expectParseError(() => parse(request('OPTIONS', [], '', 'sip:bob@exa mple.com')), /request line|Request-URI/i, true);
  });

  test('responses are never answerable', () => {
    expectParseError(() => parse(wire(['SIP/2.0 200 OK', ...basicHeaders(), 'Content-Length: 9'])), /Content-Length/, false);
    expectParseError(() => parse(wire(['SIP/2.0 200 OK', 'From: <sip:a@b.com>', 'Content-Length: 0'])), /Missing Via/, false);
  });

  test('only SipParseError, with a short reason safe for a reason phrase', () => {
    const err = expectParseError(() => parse(request().toString().replace('CSeq: 314159 OPTIONS', 'CSeq: 1;OPTIONS')), /CSeq/);
    assert.ok(err.reason.length <= 60 && !/[\r\n]/.test(err.reason));
    assert.equal(err.code, 'SIP_ERR_PARSE');
  });
});

describe('limits: size, header count, line length raise SipLimitError', () => {
  test('message size', () => {
    const big = request('MESSAGE', ['Content-Type: text/plain'], 'x'.repeat(2000));
    expectLimitError(() => parseMessage(big, { limits: { maxMessageBytes: 1000 } }), /too large/);
    assert.equal(parseMessage(big, { limits: { maxMessageBytes: 5000 } }).body.length, 2000);
    expectLimitError(() => parseMessage(Buffer.alloc(70_000, 0x41)), /too large/);
  });

  test('header count', () => {
    const many = request('OPTIONS', Array.from({ length: 20 }, (_, i) => `X-H${i}: ${i}`));
    expectLimitError(() => parseMessage(many, { limits: { maxHeaders: 10 } }), /Too many headers/);
    assert.ok(parseMessage(many, { limits: { maxHeaders: 40 } }));
  });

  test('line length: a header line, a folded header, the start line', () => {
    const long = request('OPTIONS', [`X-Long: ${'a'.repeat(300)}`]);
    expectLimitError(() => parseMessage(long, { limits: { maxLineLength: 200 } }), /line too long/);
    const folded = request('OPTIONS', ['X-Folded: start', ...Array.from({ length: 10 }, () => ` ${'b'.repeat(50)}`)]);
    expectLimitError(() => parseMessage(folded, { limits: { maxLineLength: 200 } }), /line too long/);
    const uri = `sip:${'u'.repeat(300)}@example.com`;
    expectLimitError(() => parseMessage(request('OPTIONS', [], '', uri), { limits: { maxLineLength: 200 } }), /Start line too long/);
  });

  test('SipLimitError and SipParseError are distinct typed errors', () => {
    const err = expectLimitError(() => parseMessage(request(), { limits: { maxMessageBytes: 10 } }), /too large/);
    assert.equal(err.code, 'SIP_ERR_LIMIT');
    assert.ok(!(err instanceof SipParseError));
    assert.ok(err instanceof SipLimitError);
  });
});

test('SipResponse and SipRequest can be built directly and serialize', () => {
  const res = new SipResponse(180, 'Ringing', [header('Via', 'SIP/2.0/UDP h;branch=z9hG4bK1'), header('CSeq', '1 INVITE'), header('Call-ID', 'c')]);
  assert.equal(res.toString(), 'SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\nCall-ID: c\r\nContent-Length: 0\r\n\r\n');
  assert.equal(parseResponse(res.toBuffer()).status, 180);
});
