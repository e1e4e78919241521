/**
 * RFC 3263 server location against a real DNS server on loopback: SRV by transport when the
 * URI has no port, A records otherwise or when there is no SRV, RFC 2782 selection, the cache,
 * and names that must never reach DNS.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseSipUriStrict } from '@pushcall/sip';
import { SipResolver, chooseSrv, orderSrv } from '../../src/proxy/dns.js';
import { resolveUri, resolveUriAll } from '../../src/proxy/routing.js';
import { createSocket, type Socket } from 'node:dgram';
import { createServer } from 'node:net';
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
  it('orderSrv lists every usable target: priorities in order, "." left out', () => {
    const ordered = orderSrv([r(20, 0, 'c'), r(10, 5, 'a'), r(10, 5, 'b'), r(30, 0, '.')], () => 0.1);
    assert.deepEqual(ordered.map((x) => x.name), ['a', 'b', 'c']);
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
      naptr: {
        'naptr.test': [
          { order: 10, preference: 10, flags: 's', service: 'SIP+D2T', replacement: '_sip._tcp.naptr.test' },
          { order: 20, preference: 10, flags: 's', service: 'SIP+D2U', replacement: '_sip._udp.naptr.test' },
          { order: 5, preference: 10, flags: 's', service: 'SIP+D2S', replacement: '_sip._sctp.naptr.test' },
        ],
      },
      srv: {
        '_sip._udp.pbx.test': [{ priority: 10, weight: 1, port: 5070, target: 'sip1.pbx.test' }],
        '_sips._tcp.pbx.test': [{ priority: 10, weight: 1, port: 5071, target: 'sip1.pbx.test' }],
        '_sip._tcp.naptr.test': [{ priority: 10, weight: 1, port: 5090, target: 'sip1.pbx.test' }],
        '_sip._udp.naptr.test': [{ priority: 10, weight: 1, port: 5091, target: 'sip1.pbx.test' }],
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

  it('NAPTR (§4.1) chooses the transport among those we listen on, and the SRV name to ask', async () => {
    const resolver = new SipResolver({ servers: [dns.address] });
    const tcp = await resolveUriAll(parseSipUriStrict('sip:naptr.test'), undefined, resolver, () => ['udp', 'tcp']);
    assert.deepEqual(tcp.map((d) => [d.protocol, d.address, d.port]), [['tcp', '127.0.0.2', 5090]]);
    const udpOnly = await resolveUriAll(parseSipUriStrict('sip:naptr.test'), undefined, resolver, () => ['udp']);
    assert.deepEqual(udpOnly.map((d) => [d.protocol, d.port]), [['udp', 5091]]);
    // A URI that fixes the transport does not ask NAPTR.
    const queries = dns.queries.filter((q) => q.type === 35).length;
    const fixed = await resolveUriAll(parseSipUriStrict('sip:pbx.test;transport=tcp'), undefined, resolver, () => ['udp', 'tcp']);
    assert.equal(fixed[0].protocol, 'tcp');
    assert.equal(dns.queries.filter((q) => q.type === 35).length, queries);
    // A domain without NAPTR keeps UDP and its SRV.
    const plain = await resolveUriAll(parseSipUriStrict('sip:pbx.test'), undefined, resolver, () => ['udp', 'tcp']);
    assert.deepEqual([plain[0].protocol, plain[0].port], ['udp', 5070]);
  });

  it('a name nobody knows rejects, asked of the configured servers only', async () => {
    const resolver = new SipResolver({ servers: [dns.address] });
    await assert.rejects(resolveUri(parseSipUriStrict('sip:nowhere.test'), undefined, resolver), /nowhere\.test: no A or AAAA record/);
    assert.ok(dns.queries.some((q) => q.name === 'nowhere.test' && q.type === 1));
  });
});

/** A raw SIP peer: records what it gets, and answers requests with `status` (or not at all). */
async function udpPeer(status?: number): Promise<{ socket: Socket; port: number; received: string[] }> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const received: string[] = [];
  socket.on('message', (msg, rinfo) => {
    const text = msg.toString();
    received.push(text);
    if (status === undefined || text.startsWith('SIP/2.0') || text.startsWith('ACK ')) return;
    const copy = text.split('\r\n').filter((l) => /^(via|from|to|call-id|cseq):/i.test(l));
    const reply = [`SIP/2.0 ${status} Busy Here For Now`, ...copy.map((l) => (/^to:/i.test(l) ? `${l};tag=p1` : l)), 'Content-Length: 0', '', ''].join('\r\n');
    socket.send(reply, rinfo.port, rinfo.address);
  });
  return { socket, port: socket.address().port, received };
}

function message(port: number, callId: string): Buffer {
  return Buffer.from(
    [
      'MESSAGE sip:bob@elsewhere.net SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${callId};rport`,
      'Max-Forwards: 70',
      'From: <sip:alice@example.com>;tag=a1',
      'To: <sip:bob@elsewhere.net>',
      `Call-ID: ${callId}`,
      'CSeq: 1 MESSAGE',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

/** Polls `done` every 10 ms for up to 3 s. */
async function until(done: () => boolean): Promise<void> {
  const start = Date.now();
  while (!done() && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 10));
}

/**
 * pushcall in front of `upstream`, a domain whose SRV set `srvName` lists the given ports of
 * 127.0.0.1 in that order (priorities 10, 20, ...), all behind target `sip1.<domain>`.
 */
async function frontOf(upstream: string, srvName: string, ports: number[]) {
  const domain = srvName.split('.').slice(2).join('.');
  const target = `sip1.${domain}`;
  const dns = await TestDnsServer.start({
    srv: { [srvName]: ports.map((port, i) => ({ priority: 10 * (i + 1), weight: 1, port, target })) },
    a: { [target]: '127.0.0.1' },
  });
  const server = await startTestServer({ domains: ['example.com'], auth: { mode: 'open' }, proxy: { upstream }, dns: { servers: [dns.address] } } as never);
  return { dns, server };
}

describe('in front of a PBX named by its domain (proxy.upstream without a port)', () => {
  it('a request for another domain goes to the host and port the SRV record names', async () => {
    const pbx = await udpPeer();
    const { dns, server } = await frontOf('sip:pbx.test', '_sip._udp.pbx.test', [pbx.port]);
    const client = await udpPeer();
    try {
      client.socket.send(message(client.port, 'srv-1@127.0.0.1'), server.port('udp'), '127.0.0.1');
      await until(() => pbx.received.length > 0);
      const received = pbx.received;
      assert.equal(received.length >= 1, true, 'the PBX got the request');
      assert.match(received[0], /^MESSAGE sip:bob@elsewhere\.net SIP\/2\.0\r\n/);
      assert.match(received[0], /\r\nRoute: <sip:pbx\.test;lr>\r\n/);
      assert.ok(dns.queries.some((q) => q.name === '_sip._udp.pbx.test' && q.type === 33));
    } finally {
      await server.stop();
      dns.close();
      for (const p of [pbx, client]) p.socket.close();
    }
  });
});

describe('failover between the servers of an SRV set (RFC 3263 §4.3)', () => {
  it('a 503 from the first server sends the request to the next one, whose answer the caller gets', async () => {
    const busy = await udpPeer(503);
    const good = await udpPeer(200);
    const { dns, server } = await frontOf('sip:cluster.test', '_sip._udp.cluster.test', [busy.port, good.port]);
    const caller = await udpPeer();
    try {
      caller.socket.send(message(caller.port, 'fo-503@127.0.0.1'), server.port('udp'), '127.0.0.1');
      await until(() => caller.received.some((t) => t.startsWith('SIP/2.0 2')));
      assert.equal(busy.received.filter((t) => t.startsWith('MESSAGE')).length, 1, 'tried first');
      assert.equal(good.received.filter((t) => t.startsWith('MESSAGE')).length, 1, 'then the next');
      assert.ok(caller.received.some((t) => t.startsWith('SIP/2.0 200')), caller.received.join('\n'));
      assert.ok(!caller.received.some((t) => / 50\d /.test(t.split('\r\n')[0])), 'the 503 stayed with pushcall');
    } finally {
      await server.stop();
      for (const p of [busy, good, caller]) p.socket.close();
      dns.close();
    }
  });

  it('a refused TCP connection to the first server: the next one gets the request at once', async () => {
    const refused = createServer();
    await new Promise<void>((r) => refused.listen(0, '127.0.0.1', r));
    const deadPort = (refused.address() as { port: number }).port;
    await new Promise<void>((r) => refused.close(() => r()));
    const got: string[] = [];
    const alive = createServer((socket) => socket.on('data', (d) => got.push(d.toString())));
    await new Promise<void>((r) => alive.listen(0, '127.0.0.1', r));
    const { dns, server } = await frontOf('sip:cluster.test;transport=tcp', '_sip._tcp.cluster.test', [deadPort, (alive.address() as { port: number }).port]);
    const caller = await udpPeer();
    try {
      caller.socket.send(message(caller.port, 'fo-tcp@127.0.0.1'), server.port('udp'), '127.0.0.1');
      const start = Date.now();
      await until(() => got.join('').includes('MESSAGE sip:bob@elsewhere.net'));
      assert.ok(got.join('').startsWith('MESSAGE sip:bob@elsewhere.net SIP/2.0'), got.join(''));
      assert.ok(Date.now() - start < 2000, 'no timeout waited');
    } finally {
      await server.stop();
      caller.socket.close();
      await new Promise<void>((r) => alive.close(() => r()));
      dns.close();
    }
  });
});
