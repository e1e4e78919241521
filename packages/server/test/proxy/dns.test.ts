/**
 * RFC 3263 server location against a real DNS server on loopback: SRV by transport when the
 * URI has no port, A records otherwise or when there is no SRV, RFC 2782 selection, the cache,
 * and names that must never reach DNS.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseSipUriStrict } from '@pushcall/sip';
import { SipResolver, chooseSrv } from '../../src/proxy/dns.js';
import { resolveUri } from '../../src/proxy/routing.js';
import { createSocket } from 'node:dgram';
import { TestDnsServer } from '../helpers/dns-server.js';
import { startTestServer } from '../helpers/server.js';

describe('chooseSrv (RFC 2782)', () => {
  const r = (priority: number, weight: number, name: string) => ({ priority, weight, port: 5060, name });
  it('the lowest priority wins, then weights share the picks', () => {
    const records = [r(20, 100, 'backup'), r(10, 30, 'a'), r(10, 10, 'b')];
    const picks = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const name = chooseSrv(records, () => (i + 0.5) / 4000)!.name;
      picks.set(name, (picks.get(name) ?? 0) + 1);
    }
    assert.equal(picks.get('backup'), undefined);
    assert.equal(picks.get('a'), 3000);
    assert.equal(picks.get('b'), 1000);
  });
  it('"." means no service; nothing usable is undefined', () => {
    assert.equal(chooseSrv([r(0, 0, '.')]), undefined);
    assert.equal(chooseSrv([]), undefined);
    assert.equal(chooseSrv([r(5, 0, 'only')])!.name, 'only');
  });
});

describe('SipResolver against a loopback DNS server', () => {
  let dns: TestDnsServer;
  before(async () => {
    dns = await TestDnsServer.start({
      srv: {
        '_sip._udp.pbx.test': [{ priority: 10, weight: 1, port: 5070, target: 'sip1.pbx.test' }],
        '_sips._tcp.pbx.test': [{ priority: 10, weight: 1, port: 5071, target: 'sip1.pbx.test' }],
      },
      a: { 'sip1.pbx.test': '127.0.0.2', 'pbx.test': '127.0.0.3', 'plain.test': '127.0.0.4' },
    });
  });
  after(() => dns.close());

  it('no port: SRV for the URI transport, then the target A record', async () => {
    const resolver = new SipResolver({ servers: [dns.address] });
    assert.deepEqual(await resolveUri(parseSipUriStrict('sip:pbx.test'), undefined, resolver), { protocol: 'udp', address: '127.0.0.2', port: 5070, connectionId: undefined, serverName: 'pbx.test' });
    const tls = await resolveUri(parseSipUriStrict('sips:pbx.test'), undefined, resolver);
    assert.deepEqual([tls.protocol, tls.address, tls.port, tls.serverName], ['tls', '127.0.0.2', 5071, 'pbx.test'], 'TLS is checked against the domain (RFC 5922)');
  });

  it('no SRV for that transport: the host A record and the default port', async () => {
    const resolver = new SipResolver({ servers: [dns.address] });
    const tcp = await resolveUri(parseSipUriStrict('sip:pbx.test;transport=tcp'), undefined, resolver);
    assert.deepEqual([tcp.protocol, tcp.address, tcp.port], ['tcp', '127.0.0.3', 5060]);
    const plain = await resolveUri(parseSipUriStrict('sip:plain.test'), undefined, resolver);
    assert.deepEqual([plain.address, plain.port], ['127.0.0.4', 5060]);
  });

  it('an explicit port skips SRV (RFC 3263 §4.2)', async () => {
    const resolver = new SipResolver({ servers: [dns.address] });
    const before = dns.queries.length;
    const d = await resolveUri(parseSipUriStrict('sip:pbx.test:5099'), undefined, resolver);
    assert.deepEqual([d.address, d.port], ['127.0.0.3', 5099]);
    assert.ok(dns.queries.slice(before).every((q) => q.type !== 33), 'no SRV query');
  });

  it('SRV answers are cached; localhost and .invalid never reach DNS (RFC 6761)', async () => {
    const resolver = new SipResolver({ servers: [dns.address] });
    await resolveUri(parseSipUriStrict('sip:pbx.test'), undefined, resolver);
    const before = dns.queries.filter((q) => q.type === 33).length;
    await resolveUri(parseSipUriStrict('sip:pbx.test'), undefined, resolver);
    assert.equal(dns.queries.filter((q) => q.type === 33).length, before, 'the second lookup came from the cache');
    const queries = dns.queries.length;
    const local = await resolveUri(parseSipUriStrict('sip:localhost'), undefined, resolver);
    assert.equal(local.port, 5060);
    assert.equal(dns.queries.length, queries);
  });

  it('a name nobody knows rejects, asked of the configured servers only', async () => {
    const resolver = new SipResolver({ servers: [dns.address] });
    await assert.rejects(resolveUri(parseSipUriStrict('sip:nowhere.test'), undefined, resolver), /nowhere\.test: no A or AAAA record/);
    assert.ok(dns.queries.some((q) => q.name === 'nowhere.test' && q.type === 1));
  });
});

describe('in front of a PBX named by its domain (proxy.upstream without a port)', () => {
  it('a request for another domain goes to the host and port the SRV record names', async () => {
    const pbx = createSocket('udp4');
    await new Promise<void>((r) => pbx.bind(0, '127.0.0.1', r));
    const received: string[] = [];
    pbx.on('message', (msg) => received.push(msg.toString()));
    const dns = await TestDnsServer.start({
      srv: { '_sip._udp.pbx.test': [{ priority: 10, weight: 1, port: pbx.address().port, target: 'sip1.pbx.test' }] },
      a: { 'sip1.pbx.test': '127.0.0.1' },
    });
    const server = await startTestServer({ domains: ['example.com'], auth: { mode: 'open' }, proxy: { upstream: 'sip:pbx.test' }, dns: { servers: [dns.address] } } as never);
    try {
      const client = createSocket('udp4');
      await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
      const port = client.address().port;
      client.send(
        Buffer.from(
          [
            'MESSAGE sip:bob@elsewhere.net SIP/2.0',
            `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-srv-1;rport`,
            'Max-Forwards: 70',
            'From: <sip:alice@example.com>;tag=a1',
            'To: <sip:bob@elsewhere.net>',
            'Call-ID: srv-1@127.0.0.1',
            'CSeq: 1 MESSAGE',
            'Content-Length: 0',
            '',
            '',
          ].join('\r\n'),
        ),
        server.port('udp'),
        '127.0.0.1',
      );
      const start = Date.now();
      while (received.length === 0 && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 10));
      client.close();
      assert.equal(received.length >= 1, true, 'the PBX got the request');
      assert.match(received[0], /^MESSAGE sip:bob@elsewhere\.net SIP\/2\.0\r\n/);
      assert.match(received[0], /\r\nRoute: <sip:pbx\.test;lr>\r\n/);
      assert.ok(dns.queries.some((q) => q.name === '_sip._udp.pbx.test' && q.type === 33));
    } finally {
      await server.stop();
      dns.close();
      pbx.close();
    }
  });
});
