/**
 * pushcall as the RFC 8599 push proxy in front of another registrar (RFC 8599 §5.6, the
 * "mid-registrar" layout): the phone registers through pushcall, which adds
 * Feature-Caps +sip.pns and a Path and forwards to the registrar (here a second pushcall
 * without push credentials, standing in for a PBX's registrar). A call to the registrar
 * comes back through the Path with the pn-* parameters, and pushcall wakes the phone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryBindingStore, PushcallServer, Registrar, createLogger, validateConfig } from '@pushcall/server';
import { FakeClock, type Flow, type SipRequest, type SipResponse, createResponse, parseMessage } from '@pushcall/sip';
import { type Lab, SimulatedPhone, SipUserAgent, startLab } from '../../src/index.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('push proxy in front of another registrar (RFC 8599 §5.6.1, §5.6.2)', () => {
  let registrar: PushcallServer;
  let lab: Lab;
  let phone: SimulatedPhone;

  before(async () => {
    registrar = new PushcallServer({
      config: validateConfig({
        listen: ['udp:127.0.0.1:0'],
        dataDir: mkdtempSync(join(tmpdir(), 'pushcall-upstream-')),
        auth: { mode: 'open' },
        // Grants less than the phone's 3600 s: pushcall must keep the binding as long as this.
        registrar: { maxExpires: 900 },
        admin: { enabled: false },
        log: { level: 'silent' },
      }),
      logger: createLogger('silent'),
    });
    await registrar.start();
    lab = await startLab({ config: { registrar: { upstream: `sip:127.0.0.1:${registrar.port('udp')}` } as never } });
    phone = new SimulatedPhone({
      name: 'iphone',
      platform: 'ios',
      user: 'zoe',
      ...lab.phoneWiring(),
      launchDelayMs: 100,
      answer: { kind: 'answer', afterMs: 200 },
    });
    await phone.start();
    await phone.sleep();
  });
  after(async () => {
    await phone.close();
    await lab.close();
    await registrar.stop();
  });

  it('forwards the REGISTER with +sip.pns and a Path; both keep a binding', async () => {
    const upstreamBindings = await registrar.store.all();
    assert.equal(upstreamBindings.length, 1);
    const b = upstreamBindings[0];
    assert.equal(b.aor, 'sip:zoe@127.0.0.1');
    assert.equal(b.push, undefined, 'the registrar leaves pushing to the proxy that added +sip.pns');
    assert.match(b.contact, /pn-provider=apns/);
    assert.equal(b.path.length, 1, 'the registrar routes to the device through pushcall');
    assert.match(b.path[0], new RegExp(`127\\.0\\.0\\.1:${lab.server.port('udp')}`));
    // The phone asked for outbound (reg-id, Supported: outbound): pushcall, its edge, says it
    // supports it (RFC 5626 §5.1), so the registrar keeps the flow's reg-id instead of a 439.
    assert.match(b.path[0], /;ob>$/);
    assert.equal(b.regId, 1);
    const local = await lab.server.store.all();
    assert.equal(local.length, 1);
    assert.equal(local[0].push?.prid, phone.token);
  });

  it('a call to the registrar comes back through pushcall, which pushes, holds and delivers it', async () => {
    const caller = new SipUserAgent({ user: 'yann', domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: registrar.port('udp') }, instanceId: 'urn:uuid:00000000-0000-4000-8000-0000000000aa' });
    try {
      const response = await caller.call('sip:zoe@127.0.0.1');
      assert.equal(response.status, 200, `${response.status} ${response.reason}`);
    } finally {
      await caller.close();
    }
    assert.equal(lab.apns.received.length, 1, 'one VoIP push, from the push proxy');
    const invite = phone.ua.received.find((r) => r.method === 'INVITE');
    assert.ok(invite);
    assert.doesNotMatch(invite.uriText, /pn-/, 'the phone gets the INVITE without pn-*');
    assert.equal(phone.coordinator.calls()[0]?.state, 'active');
    assert.equal((phone.os as { kills: number }).kills, 0);
  });

  it('keeps the binding for the expiry the registrar granted, not the one requested', async () => {
    const [local] = await lab.server.store.all();
    assert.ok(local);
    const remaining = (local.expiresAt - lab.server.clock.now()) / 1000;
    assert.ok(remaining > 880 && remaining <= 900, `local binding expires in ${remaining} s, the registrar granted 900`);
  });

  it('a removal without pn-* (matched by +sip.instance) removes the push binding here too (§5.5)', async () => {
    const response = await phone.ua.registerAsync(0);
    assert.equal(response.status, 200);
    assert.equal((await registrar.store.all()).length, 0);
    assert.deepEqual(await lab.server.store.all(), [], 'no push binding left to push to');
  });
});

/**
 * The same, in process: a Registrar with `registrar.upstream` whose forwardRegister is a stub
 * registrar that echoes each Contact with the expiry it grants.
 */
describe('push proxy: removals, expiry and Max-Forwards (RFC 8599 §5.5, §5.6.1.1; RFC 3261 §16.3)', () => {
  const TOKEN = '00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0';
  const PUSH = `<sip:alice@192.0.2.10:5062;pn-provider=apns;pn-prid=${TOKEN};pn-param=ABCDE12345.com.example.app.voip>`;
  const INSTANCE = '+sip.instance="<urn:uuid:11111111-2222-3333-4444-555555555555>";reg-id=1';
  const FLOW: Flow = { protocol: 'udp', localAddress: '127.0.0.1', localPort: 5060, remoteAddress: '192.0.2.10', remotePort: 5062 };
  let branch = 0;

  function register(o: { cseq: number; contacts: string[]; expires?: number; maxForwards?: number }): SipRequest {
    const lines = [
      'REGISTER sip:example.com SIP/2.0',
      `Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-pp${++branch};rport`,
      `Max-Forwards: ${o.maxForwards ?? 70}`,
      `From: <sip:alice@example.com>;tag=f${branch}`,
      'To: <sip:alice@example.com>',
      'Call-ID: push-proxy-1',
      `CSeq: ${o.cseq} REGISTER`,
      ...o.contacts.map((c) => `Contact: ${c}`),
      ...(o.expires !== undefined ? [`Expires: ${o.expires}`] : []),
      'Content-Length: 0',
      '',
      '',
    ];
    return parseMessage(Buffer.from(lines.join('\r\n'))) as SipRequest;
  }

  function proxy() {
    const clock = new FakeClock();
    const store = new MemoryBindingStore();
    const forwarded: SipRequest[] = [];
    const upstream = { grant: 3600 };
    const registrar = new Registrar({
      config: validateConfig({ auth: { mode: 'open' }, registrar: { upstream: 'sip:pbx.example.com:5060', lastHop: false } }),
      store,
      clock,
      nodeId: 'n',
      supportedProviders: () => ['apns'],
      forwardRegister: async (r: SipRequest): Promise<SipResponse> => {
        forwarded.push(r);
        const headers: Array<[string, string]> = [];
        const contacts = r.contacts;
        if (contacts !== '*') for (const c of contacts) if ((c.expires ?? r.expires) !== 0) headers.push(['Contact', `${c.toString().replace(/;expires=\d+/, '')};expires=${upstream.grant}`]);
        return createResponse(r, 200, { headers });
      },
    });
    const remaining = async () => (await store.all()).map((b) => (b.expiresAt - clock.now()) / 1000);
    return { registrar, store, forwarded, upstream, remaining };
  }

  it('Contact: * removes the push binding kept here', async () => {
    const p = proxy();
    assert.equal((await p.registrar.handle(register({ cseq: 1, contacts: [PUSH], expires: 3600 }), FLOW)).status, 200);
    assert.equal((await p.store.all()).length, 1);
    const response = await p.registrar.handle(register({ cseq: 2, contacts: ['*'], expires: 0 }), FLOW);
    assert.equal(response.status, 200);
    assert.deepEqual(await p.store.all(), []);
  });

  it('a refresh without pn-* (same instance) leaves no push data here', async () => {
    const p = proxy();
    await p.registrar.handle(register({ cseq: 1, contacts: [`${PUSH};${INSTANCE}`], expires: 3600 }), FLOW);
    assert.ok((await p.store.all())[0]?.push);
    const response = await p.registrar.handle(register({ cseq: 2, contacts: [`<sip:alice@192.0.2.10:5062>;${INSTANCE}`], expires: 3600 }), FLOW);
    assert.equal(response.status, 200);
    assert.deepEqual(response.getAll('feature-caps'), []);
    const bindings = await p.store.all();
    assert.equal(bindings.length, 1);
    assert.equal(bindings[0].push, undefined, 'no push to a binding that no longer asks for it');
  });

  it('a plain REGISTER for an AOR with nothing kept here is only forwarded', async () => {
    const p = proxy();
    const response = await p.registrar.handle(register({ cseq: 1, contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 3600 }), FLOW);
    assert.equal(response.status, 200);
    assert.equal(p.forwarded.length, 1);
    assert.deepEqual(await p.store.all(), []);
  });

  it('a push expiry below minPushExpires gets 423 before anything is forwarded', async () => {
    const p = proxy();
    const response = await p.registrar.handle(register({ cseq: 1, contacts: [PUSH], expires: 100 }), FLOW);
    assert.equal(response.status, 423);
    assert.equal(response.get('min-expires'), '180');
    assert.equal(p.forwarded.length, 0, 'the registrar never hears +sip.pns for a binding nobody would push');
    assert.deepEqual(await p.store.all(), []);
  });

  it('the binding kept here lives for the expiry the registrar granted', async () => {
    const p = proxy();
    p.upstream.grant = 600;
    const response = await p.registrar.handle(register({ cseq: 1, contacts: [PUSH], expires: 3600 }), FLOW);
    assert.equal(response.status, 200);
    assert.deepEqual(response.getAll('feature-caps'), ['*;+sip.pns="apns"']);
    assert.deepEqual(await p.remaining(), [600]);
  });

  it('a granted expiry too short to push in time: 2xx without +sip.pns, nothing kept here (§5.6.1.1 step 5)', async () => {
    const p = proxy();
    await p.registrar.handle(register({ cseq: 1, contacts: [PUSH], expires: 3600 }), FLOW);
    assert.deepEqual(await p.remaining(), [3600]);
    p.upstream.grant = 60;
    const response = await p.registrar.handle(register({ cseq: 2, contacts: [PUSH], expires: 3600 }), FLOW);
    assert.equal(response.status, 200);
    assert.deepEqual(response.getAll('feature-caps'), []);
    assert.deepEqual(await p.store.all(), [], 'the earlier binding is not pushed past what the registrar keeps');
  });

  it('Max-Forwards: 0 gets 483 and is not forwarded', async () => {
    const p = proxy();
    const response = await p.registrar.handle(register({ cseq: 1, contacts: [PUSH], expires: 3600, maxForwards: 0 }), FLOW);
    assert.equal(response.status, 483);
    assert.equal(p.forwarded.length, 0);
    await p.registrar.handle(register({ cseq: 2, contacts: [PUSH], expires: 3600, maxForwards: 1 }), FLOW);
    assert.equal(p.forwarded[0]?.get('max-forwards'), '0');
  });
});
