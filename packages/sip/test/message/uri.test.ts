// SIP/SIPS/tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), %-escaping, IPv6 references,
// RFC 3261 §19.1.4 comparison and RFC 8599 push parameters.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SipParseError } from '../../src/errors.js';
import {
  OpaqueUri,
  Params,
  SipUri,
  TelUri,
  escapePercent,
  isValidHost,
  parseSipUriStrict,
  parseUri,
  pushParamsEqual,
  sipUriEquals,
  unescapePercent,
} from '../../src/message/index.js';
import { expectParseError } from './helpers.js';

const sip = (text: string): SipUri => parseSipUriStrict(text);

describe('RFC 3261 §19.1.1 SIP and SIPS URI components', () => {
  test('user, password, host, port, uri-parameters and headers', () => {
    const uri = sip('sips:alice:secretword@atlanta.com:5061;transport=tcp;lr;maddr=239.255.255.1?subject=project%20x&priority=urgent');
    assert.equal(uri.scheme, 'sips');
    assert.equal(uri.isSecure, true);
    assert.equal(uri.user, 'alice');
    assert.equal(uri.password, 'secretword');
    assert.equal(uri.host, 'atlanta.com');
    assert.equal(uri.port, 5061);
    assert.equal(uri.transport, 'tcp');
    assert.equal(uri.params.get('lr'), null, 'a flag parameter has a null value');
    assert.equal(uri.params.get('maddr'), '239.255.255.1');
    assert.equal(uri.headers.get('subject'), 'project%20x');
    assert.equal(uri.headers.get('priority'), 'urgent');
    assert.equal(uri.toString(), 'sips:alice:secretword@atlanta.com:5061;transport=tcp;lr;maddr=239.255.255.1?subject=project%20x&priority=urgent');
  });

  test('the RFC 3261 §19.1.3 example URIs parse and print back unchanged', () => {
    for (const text of [
      'sip:alice@atlanta.com',
      'sip:alice:secretword@atlanta.com;transport=tcp',
      'sips:alice@atlanta.com?subject=project%20x&priority=urgent',
      'sip:+1-212-555-1212:1234@gateway.com;user=phone',
      'sips:1212@gateway.com',
      'sip:alice@192.0.2.4',
      'sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com',
      'sip:alice;day=tuesday@atlanta.com',
    ]) {
      assert.equal(parseUri(text).toString(), text, text);
    }
    const phone = sip('sip:+1-212-555-1212:1234@gateway.com;user=phone');
    assert.equal(phone.user, '+1-212-555-1212');
    assert.equal(phone.password, '1234');
    assert.equal(phone.params.get('user'), 'phone');
    assert.equal(sip('sip:alice;day=tuesday@atlanta.com').user, 'alice;day=tuesday', 'user-unreserved ";" in the user part');
  });

  test('the scheme is case-insensitive; no user part means host only', () => {
    const uri = sip('SIP:Example.COM');
    assert.equal(uri.scheme, 'sip');
    assert.equal(uri.user, undefined);
    assert.equal(uri.hostname, 'example.com');
    assert.equal(uri.portOrDefault, 5060);
    assert.equal(sip('sips:example.com').portOrDefault, 5061);
    assert.equal(sip('sip:example.com;transport=TLS').portOrDefault, 5061);
  });

  test('toAor() gives scheme, unescaped user and lower-cased host (RFC 3261 §10.3)', () => {
    assert.equal(sip('sip:%61lice@AtLanTa.com:5070;transport=tcp?x=y').toAor(), 'sip:alice@atlanta.com');
  });

  test('clone() is deep: editing the clone leaves the original alone', () => {
    const a = sip('sip:bob@biloxi.com;transport=tcp');
    const b = a.clone();
    b.params.set('transport', 'udp');
    b.host = 'example.net';
    assert.equal(a.toString(), 'sip:bob@biloxi.com;transport=tcp');
    assert.equal(b.toString(), 'sip:bob@example.net;transport=udp');
  });

  test('unknown URI parameters are kept exactly as written, in order', () => {
    const text = 'sip:bob@biloxi.com;x-Vendor=AbC%2f;lr;ob;X-flag;transport=udp';
    const uri = sip(text);
    assert.deepEqual(uri.params.names(), ['x-Vendor', 'lr', 'ob', 'X-flag', 'transport']);
    assert.equal(uri.params.get('X-VENDOR'), 'AbC%2f', 'names are case-insensitive, values raw');
    assert.equal(uri.toString(), text);
  });
});

describe('RFC 3261 §19.1.2 %-escaping in URIs', () => {
  test('escaped user part: kept as written, compared and read unescaped', () => {
    const uri = sip('sip:%61lice%20smith@atlanta.com');
    assert.equal(uri.user, '%61lice%20smith');
    assert.equal(uri.userUnescaped, 'alice smith');
    assert.equal(uri.toString(), 'sip:%61lice%20smith@atlanta.com');
  });

  test('escaped parameter values: param() unescapes, params.get() is raw', () => {
    const uri = sip('sip:bob@biloxi.com;x-url=http%3A%2F%2Fexample.com%2Fa%3Bb');
    assert.equal(uri.params.get('x-url'), 'http%3A%2F%2Fexample.com%2Fa%3Bb');
    assert.equal(uri.param('x-url'), 'http://example.com/a;b');
  });

  test('escaped characters that are not UTF-8 decode byte-wise', () => {
    assert.equal(unescapePercent('a%FFb'), 'a\xffb');
    assert.equal(unescapePercent('%00'), '\x00');
  });

  test('a malformed %-escape in a URI parameter is a SipParseError', () => {
    expectParseError(() => parseUri('sip:bob@biloxi.com;x=%zz'), /%-escape/);
    expectParseError(() => parseUri('sip:bob@biloxi.com;x=ab%4'), /%-escape/);
    expectParseError(() => unescapePercent('%G0'), /%-escape/);
  });

  test('a malformed escape in the user part is rejected', () => {
    expectParseError(() => parseUri('sip:al%ZZice@atlanta.com'), /user part/);
  });

  test('escapePercent escapes everything outside unreserved and the allowed set', () => {
    assert.equal(escapePercent('a b;c=d/é', ''), 'a%20b%3Bc%3Dd%2F%C3%A9');
    assert.equal(escapePercent('a:b', ':'), 'a:b');
    assert.equal(unescapePercent(escapePercent('https://x.example/é?q=1&r=2', '')), 'https://x.example/é?q=1&r=2');
  });
});

describe('IPv6 references (RFC 3261 §25.1, RFC 5954)', () => {
  test('a bracketed IPv6 host with port and params', () => {
    const uri = sip('sip:alice@[2001:db8::10]:5070;transport=tcp');
    assert.equal(uri.host, '[2001:db8::10]');
    assert.equal(uri.hostname, '2001:db8::10');
    assert.equal(uri.port, 5070);
    assert.equal(uri.toString(), 'sip:alice@[2001:db8::10]:5070;transport=tcp');
  });

  test('IPv4-mapped IPv6 and no user part', () => {
    const uri = sip('sip:[::ffff:192.0.2.128]');
    assert.equal(uri.hostname, '::ffff:192.0.2.128');
    assert.equal(uri.port, undefined);
  });

  test('an unterminated or malformed IPv6 reference is a SipParseError', () => {
    expectParseError(() => parseUri('sip:alice@[2001:db8::10'), /IPv6/);
    expectParseError(() => parseUri('sip:alice@[2001:zz8::10]'), /host/);
    expectParseError(() => parseUri('sip:alice@2001:db8::10'), /port/);
  });
});

describe('host, port and other malformed URIs', () => {
  test('isValidHost: hostnames, IPv4 (octets ≤ 255), IPv6 references', () => {
    for (const ok of ['example.com', 'example.com.', 'a-b.c', 'x', '192.0.2.1', '255.255.255.255', '[::1]', 'host129.example.com']) assert.ok(isValidHost(ok), ok);
    for (const bad of ['', '-a.com', 'a-.com', 'a..b', '.a', '256.1.1.1', '1.2.3.1000', 'a_b.com', 'a b', '[::1', 'x'.repeat(256)]) assert.ok(!isValidHost(bad), bad);
  });

  test('ports must be 1-5 digits and ≤ 65535', () => {
    assert.equal(sip('sip:a@b.com:65535').port, 65535);
    expectParseError(() => parseUri('sip:a@b.com:65536'), /port/);
    expectParseError(() => parseUri('sip:a@b.com:'), /port/);
    assert.match(expectParseError(() => parseUri('sip:a@b.com:50x'), /Malformed URI/).message, /after host/);
  });

  test('malformed URIs name what is wrong', () => {
    expectParseError(() => parseUri('sip:'), /URI/);
    expectParseError(() => parseUri('nocolon'), /Malformed URI/);
    assert.match(expectParseError(() => parseUri('sip:a b@c.com'), /Malformed URI/).message, /illegal character/);
    expectParseError(() => parseUri('sip:@c.com'), /user part/);
    expectParseError(() => parseUri('<sip:a@b.com>'), /scheme/);
    expectParseError(() => parseSipUriStrict('tel:+1234'), /SIP or SIPS/);
  });

  test('other schemes are kept verbatim as opaque URIs', () => {
    const uri = parseUri('urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6');
    assert.ok(uri instanceof OpaqueUri);
    assert.equal(uri.scheme, 'urn');
    assert.equal(uri.toString(), 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6');
  });
});

describe('tel URIs (RFC 3966)', () => {
  test('global and local numbers with parameters', () => {
    const global = parseUri('tel:+1-201-555-0123;ext=1234');
    assert.ok(global instanceof TelUri);
    assert.equal(global.number, '+1-201-555-0123');
    assert.equal(global.isGlobal, true);
    assert.equal(global.params.get('ext'), '1234');
    assert.equal(global.toString(), 'tel:+1-201-555-0123;ext=1234');
    const local = parseUri('tel:7042;phone-context=example.com') as TelUri;
    assert.equal(local.isGlobal, false);
    assert.equal(local.params.get('phone-context'), 'example.com');
  });

  test('a tel URI with letters outside hex digits is malformed', () => {
    expectParseError(() => parseUri('tel:+1-800-FLOWERZ'), /tel URI/);
  });
});

describe('RFC 3261 §19.1.4 URI comparison', () => {
  const equal: Array<[string, string]> = [
    ['sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;security=on'],
    ['sip:carol@chicago.com;newparam=5', 'sip:carol@chicago.com;security=on'],
    ['sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com', 'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com'],
    ['sip:alice@atlanta.com?subject=project%20x&priority=urgent', 'sip:alice@atlanta.com?priority=urgent&subject=project%20x'],
  ];
  const notEqual: Array<[string, string, string]> = [
    ['SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP', 'different usernames'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060', 'can resolve to different ports'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp', 'can resolve to different transports'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:6000;transport=tcp', 'can resolve to different port and transports'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting', 'different header component'],
    ['sip:bob@phone21.boxesbybob.com', 'sip:bob@192.0.2.4', "even though that's what phone21.boxesbybob.com resolves to"],
    ['sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;security=off', 'a parameter in both must match (not transitive)'],
    ['sip:alice@atlanta.com', 'sips:alice@atlanta.com', 'a SIP and a SIPS URI are never equal'],
    ['sip:alice:pw1@atlanta.com', 'sip:alice:pw2@atlanta.com', 'passwords compare case-sensitively'],
    ['sip:alice@atlanta.com;maddr=239.255.255.1', 'sip:alice@atlanta.com', 'maddr present in one only'],
    ['sip:alice@atlanta.com;user=phone', 'sip:alice@atlanta.com', 'user present in one only'],
  ];

  for (const [a, b] of equal) {
    test(`equal: ${a} = ${b}`, () => {
      assert.ok(sipUriEquals(sip(a), sip(b)));
      assert.ok(sipUriEquals(sip(b), sip(a)), 'symmetric');
    });
  }
  for (const [a, b, why] of notEqual) {
    test(`not equal (${why}): ${a} ≠ ${b}`, () => {
      assert.ok(!sipUriEquals(sip(a), sip(b)));
      assert.ok(!sipUriEquals(sip(b), sip(a)), 'symmetric');
    });
  }

  test('escaped and unescaped unreserved characters are equivalent in headers too', () => {
    assert.ok(sipUriEquals(sip('sip:a@b.com?subject=%61bc'), sip('sip:a@b.com?subject=abc')));
  });
});

// A Web Push subscription endpoint as a pn-prid (RFC 8599 §3.2 leaves the PRID format to
// the PNS; a URL must be %-escaped to be a valid uri-parameter value).
const WEBPUSH_ENDPOINT = 'https://fcm.googleapis.com/fcm/send/dGhpcyBpcyBh:APA91bE-x_y?z=1&w=2;3';

describe('RFC 8599 push parameters (pn-provider, pn-prid, pn-param, pn-purr)', () => {
  test('the push accessor reads the §8.7 parameters, unescaped', () => {
    const uri = sip('sip:alice@198.51.100.7:5060;transport=tcp;pn-provider=apns;pn-param=DEF123GHIJ.com.example.pushcall.voip;pn-prid=00fc13adff78512;pn-purr=ZTY4ZDJlMzODE1NmUgKi0K');
    assert.deepEqual(uri.push, { provider: 'apns', prid: '00fc13adff78512', param: 'DEF123GHIJ.com.example.pushcall.voip', purr: 'ZTY4ZDJlMzODE1NmUgKi0K' });
    assert.equal(sip('sip:alice@example.com').push, undefined, 'no pn-provider: not a push binding');
    assert.deepEqual(sip('sip:alice@example.com;pn-provider').push, { provider: '' }, 'capability query without a value');
  });

  test('pn-prid carrying an escaped Web Push URI round-trips byte-exact and reads back as the URL', () => {
    const escaped = escapePercent(WEBPUSH_ENDPOINT, '');
    const text = `sip:alice@192.0.2.10:43210;transport=ws;pn-provider=webpush;pn-prid=${escaped};pn-param=BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U`;
    const uri = sip(text);
    assert.equal(uri.push?.provider, 'webpush');
    assert.equal(uri.push?.prid, WEBPUSH_ENDPOINT);
    assert.equal(uri.params.get('pn-prid'), escaped, 'kept as written');
    assert.equal(uri.toString(), text);
    assert.equal(sip(uri.toString()).push?.prid, WEBPUSH_ENDPOINT);
    // Unescaped, the URL's "?" would start the URI headers and its ";" a new parameter:
    // the PRID would come back truncated.
    const unescaped = sip(`sip:alice@192.0.2.10;pn-provider=webpush;pn-prid=${WEBPUSH_ENDPOINT}`);
    assert.notEqual(unescaped.push?.prid, WEBPUSH_ENDPOINT);
  });

  test('stripPushParams removes every pn-* parameter and keeps the rest in order', () => {
    const uri = sip('sip:alice@192.0.2.10;transport=tcp;pn-provider=fcm;x=1;pn-prid=abc;pn-param=p;pn-purr=r;pn-type=legacy;ob');
    uri.stripPushParams();
    assert.equal(uri.toString(), 'sip:alice@192.0.2.10;transport=tcp;x=1;ob');
    assert.equal(uri.push, undefined);
  });

  describe('RFC 8599 §5.3 matching: pn-provider, pn-prid and pn-param must be equal, presence included', () => {
    const base = 'sip:alice@192.0.2.10;pn-provider=apns;pn-prid=00fc13adff78512;pn-param=ABC.com.example.voip';
    test('identical push params match', () => {
      assert.ok(pushParamsEqual(sip(base), sip(base)));
      assert.ok(sipUriEquals(sip(base), sip(`${base};pn-purr=xyz`), { pushParamsMustMatch: true }), 'pn-purr is not compared');
    });
    test('escaped and unescaped forms of the same pn-prid match', () => {
      const a = sip('sip:a@b.com;pn-provider=webpush;pn-prid=https%3A%2F%2Fpush.example%2Fx');
      const b = sip('sip:a@b.com;pn-provider=webpush;pn-prid=https%3a%2f%2fpush.example%2fx');
      assert.ok(pushParamsEqual(a, b));
    });
    for (const [what, other] of [
      ['a different pn-prid', base.replace('00fc13adff78512', '00fc13adff78513')],
      ['a different pn-provider', base.replace('apns', 'fcm')],
      ['a different pn-param', base.replace('ABC.com', 'XYZ.com')],
      ['pn-param on one side only', base.replace(';pn-param=ABC.com.example.voip', '')],
      ['no push params on one side', 'sip:alice@192.0.2.10'],
    ] as const) {
      test(`${what} does not match`, () => {
        assert.ok(!pushParamsEqual(sip(base), sip(other)));
        assert.ok(!sipUriEquals(sip(base), sip(other), { pushParamsMustMatch: true }));
      });
    }
    test('without pushParamsMustMatch, §19.1.4 alone ignores the pn-* parameters', () => {
      assert.ok(sipUriEquals(sip(base), sip(base.replace('00fc13adff78512', 'other')), {}));
    });
  });
});

describe('Params', () => {
  test('case-insensitive names, raw values, flags, set/delete/count', () => {
    const p = Params.parse('a=1;B;c="x;y";a=2');
    assert.equal(p.get('A'), '1');
    assert.equal(p.get('b'), null);
    assert.equal(p.get('c'), '"x;y"', 'a quoted value keeps its quotes and inner separator');
    assert.equal(p.unquoted('c'), 'x;y');
    assert.equal(p.count('a'), 2);
    assert.equal(p.get('missing'), undefined);
    p.set('b', 'v').delete('a');
    assert.equal(p.toString(), ';B=v;c="x;y";a=2');
  });

  test('LWS around "=" and ";" is ignored (RFC 4475 wsinv style)', () => {
    const p = Params.parse(' tag  =  abc ;  lr ; x= y');
    assert.deepEqual([...p], [['tag', 'abc'], ['lr', null], ['x', 'y']]);
  });

  test('an empty parameter name and an unterminated quoted value are SipParseErrors', () => {
    assert.throws(() => Params.parse('=x'), SipParseError);
    assert.throws(() => Params.parse('a="x'), SipParseError);
  });
});
