/**
 * The registrar against a real SIP peer: SIPp registers over UDP and TCP with digest auth
 * and RFC 8599 Contact parameters. SIPp checks the responses; the test checks the store.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registerScenario, runSipp, sippAvailable } from '../../../testkit/src/index.js';
import type { PushcallServer } from '../../src/server.js';
import { startTestServer, tempDir, udpExchange } from '../helpers/server.js';

const TOKEN = '00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0';
const PUSH = `pn-provider=apns;pn-prid=${TOKEN};pn-param=ABCDE12345.com.example.app.voip`;
const INSTANCE = '+sip.instance="<urn:uuid:11111111-2222-3333-4444-555555555555>"';

describe('REGISTER from SIPp (RFC 3261 §10.3, RFC 8599 §5.6.1)', () => {
  let server: PushcallServer;
  const dataDir = tempDir();

  before(async () => {
    assert.ok(sippAvailable(), 'sipp must be installed (apt-get install -y sip-tester)');
    // SIPp only implements MD5 digest.
    server = await startTestServer({ auth: { algorithms: ['MD5'] } as never }, { dataDir });
  });
  after(async () => {
    await server.stop();
  });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`authenticates and answers 200 with Feature-Caps +sip.pns over ${transport.toUpperCase()}`, async () => {
      const result = await runSipp({
        remote: `127.0.0.1:${server.port(transport)}`,
        transport,
        scenario: registerScenario({
          user: 'alice',
          password: 'alice-secret',
          contact: `<sip:alice@[local_ip]:[local_port];${PUSH}>;${INSTANCE};+sip.pnsreg`,
          expires: 3600,
          expect: 200,
          expectHeaders: ['Feature-Caps: \\*;\\+sip\\.pns="apns";\\+sip\\.pnsreg="130"', 'Contact: <sip:alice@.*>;expires=(3600|3599)'],
        }),
      });
      assert.equal(result.exitCode, 0, result.errors);
      assert.equal(result.successful, 1);
      const bindings = (await server.store.all()).filter((b) => b.aor === 'sip:alice@127.0.0.1');
      assert.equal(bindings.length, 1, 'one device, one binding');
      assert.equal(bindings[0].push?.provider, 'apns');
      assert.equal(bindings[0].push?.prid, TOKEN);
      assert.equal(bindings[0].push?.environment, 'production');
      assert.equal(bindings[0].flow.protocol, transport, 'the binding remembers its flow');
      assert.equal(bindings[0].pnsreg, true);
    });
  }

  it('answers 555 to an unsupported push provider and stores nothing', async () => {
    const before = (await server.store.all()).length;
    const result = await runSipp({
      remote: `127.0.0.1:${server.port('udp')}`,
      scenario: registerScenario({
        user: 'bob',
        password: 'bob-secret',
        contact: '<sip:bob@[local_ip]:[local_port];pn-provider=acme;pn-prid=abc123;pn-param=x>',
        expires: 600,
        expect: 555,
      }),
    });
    assert.equal(result.exitCode, 0, result.errors);
    assert.equal((await server.store.all()).length, before);
  });

  it('answers 423 with Min-Expires when a push binding asks for too short an expiry', async () => {
    const result = await runSipp({
      remote: `127.0.0.1:${server.port('udp')}`,
      scenario: registerScenario({
        user: 'bob',
        password: 'bob-secret',
        contact: `<sip:bob@[local_ip]:[local_port];${PUSH.replace(TOKEN, TOKEN.replace('00fc', 'bbbb'))}>`,
        expires: 30,
        expect: 423,
        expectHeaders: ['Min-Expires: 180'],
      }),
    });
    assert.equal(result.exitCode, 0, result.errors);
    assert.equal((await server.store.all()).filter((b) => b.aor === 'sip:bob@127.0.0.1').length, 0);
  });

  it('replaces the binding when the same +sip.instance registers from a new port (a woken phone)', async () => {
    const first = (await server.store.all()).find((b) => b.aor === 'sip:alice@127.0.0.1');
    assert.ok(first);
    const result = await runSipp({
      remote: `127.0.0.1:${server.port('udp')}`,
      scenario: registerScenario({
        user: 'alice',
        password: 'alice-secret',
        contact: `<sip:alice@[local_ip]:[local_port];${PUSH}>;${INSTANCE}`,
        expires: 3600,
        expect: 200,
      }),
    });
    assert.equal(result.exitCode, 0, result.errors);
    const now = (await server.store.all()).filter((b) => b.aor === 'sip:alice@127.0.0.1');
    assert.equal(now.length, 1);
    assert.equal(now[0].id, first.id, 'same binding, refreshed');
    assert.notEqual(now[0].contact, first.contact, 'new contact port');
    assert.equal(now[0].flow.protocol, 'udp');
  });

  it('keeps bindings across a restart (SQLite)', async () => {
    const beforeRestart = await server.store.all();
    assert.ok(beforeRestart.length > 0);
    await server.stop();
    server = await startTestServer({ auth: { algorithms: ['MD5'] } as never }, { dataDir });
    const afterRestart = await server.store.all();
    assert.deepEqual(
      afterRestart.map((b) => [b.id, b.aor, b.contact, b.push?.prid]).sort(),
      beforeRestart.map((b) => [b.id, b.aor, b.contact, b.push?.prid]).sort(),
    );
  });
});

describe('bad REGISTERs from SIPp get a precise 4xx and leave the store unchanged', () => {
  let server: PushcallServer;
  before(async () => {
    server = await startTestServer({ auth: { algorithms: ['MD5'] } as never });
  });
  after(async () => {
    await server.stop();
  });

  const cases: Array<{ name: string; user?: string; password?: string; contact: string; expires?: string; expect: number; reason?: string; extra?: string[] }> = [
    { name: 'malformed Contact', contact: '<sip:alice@[local_ip]:[local_port];pn-provider=apns', expect: 400, reason: 'Malformed' },
    { name: 'huge Expires', contact: `<sip:alice@[local_ip]:[local_port]>`, expires: '999999999999', expect: 400, reason: 'Malformed Expires header' },
    { name: 'duplicate push params', contact: `<sip:alice@[local_ip]:[local_port];${PUSH};pn-prid=abcdef0123456789abcdef0123456789>`, expires: '600', expect: 400, reason: 'Duplicate pn-prid parameter' },
    { name: 'wrong credentials', password: 'not-the-password', contact: `<sip:alice@[local_ip]:[local_port]>`, expires: '600', expect: 403, reason: 'Invalid credentials' },
    { name: "another user's credentials", user: 'alice', password: 'bob-secret', contact: `<sip:alice@[local_ip]:[local_port]>`, expires: '600', expect: 403 },
    { name: 'Contact * without Expires: 0', contact: '*', expires: '600', expect: 400, reason: 'Contact \\* requires Expires: 0' },
    { name: 'APNs token that is not hex', contact: '<sip:alice@[local_ip]:[local_port];pn-provider=apns;pn-prid=not-a-token;pn-param=T.b.voip>', expires: '600', expect: 400, reason: 'Malformed pn-prid' },
  ];

  for (const c of cases) {
    it(`${c.name} → ${c.expect}`, async () => {
      const before = JSON.stringify(await server.store.all());
      const result = await runSipp({
        remote: `127.0.0.1:${server.port('udp')}`,
        scenario: registerScenario({
          user: c.user ?? 'alice',
          password: c.password ?? 'alice-secret',
          contact: c.contact,
          expires: c.expires,
          expect: c.expect,
          expectHeaders: c.reason ? [`SIP/2.0 ${c.expect} ${c.reason}`] : undefined,
        }),
      });
      assert.equal(result.exitCode, 0, result.errors);
      assert.equal(JSON.stringify(await server.store.all()), before);
    });
  }

  // Raw UDP: SIPp cannot pair a response that lacks Call-ID/CSeq with its call.
  const raw = (drop: string | undefined, replace: [RegExp, string] = [/$^/, '']) =>
    [
      'REGISTER sip:127.0.0.1 SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKraw${Math.random().toString(36).slice(2)};rport`,
      'Max-Forwards: 70',
      'From: <sip:alice@127.0.0.1>;tag=1',
      'To: <sip:alice@127.0.0.1>',
      'Call-ID: raw-1',
      'CSeq: 1 REGISTER',
      'Contact: <sip:alice@127.0.0.1:9>',
      'Content-Length: 0',
    ]
      .filter((l) => !drop || !l.startsWith(`${drop}:`))
      .map((l) => l.replace(replace[0], replace[1]))
      .join('\r\n') + '\r\n\r\n';

  for (const [name, text, reason] of [
    ['malformed Max-Forwards', raw(undefined, [/^Max-Forwards: 70$/, 'Max-Forwards: lots']), 'Malformed Max-Forwards header'],
    ['CSeq method that is not the request method', raw(undefined, [/^CSeq: 1 REGISTER$/, 'CSeq: 1 INVITE']), 'CSeq method does not match the request method'],
    ['malformed Request-URI', raw(undefined, [/^REGISTER sip:127.0.0.1 /, 'REGISTER sip:127.0.0.1:99999 ']), 'Malformed URI port'],
  ] as const) {
    it(`${name} → 400 "${reason}" over a raw UDP socket`, async () => {
      const reply = await udpExchange(server.port('udp'), text);
      assert.ok(reply, 'a reply');
      assert.match(reply, new RegExp(`^SIP/2.0 400 ${reason}\r\n`));
      assert.equal((await server.store.all()).length, 0);
    });
  }

  // RFC 3261 §8.2.6.2: a response copies Via, From, To, Call-ID and CSeq; without one of
  // them no valid response can be built, so the request is dropped (and logged).
  for (const missing of ['Call-ID', 'CSeq', 'From', 'To'] as const) {
    it(`missing ${missing}: no response can be built, the request is dropped`, async () => {
      const reply = await udpExchange(server.port('udp'), raw(missing), 300);
      assert.equal(reply, undefined);
      assert.equal((await server.store.all()).length, 0);
    });
  }
});
