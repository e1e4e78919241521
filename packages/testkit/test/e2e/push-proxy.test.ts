/**
 * pushcall as the RFC 8599 push proxy in front of another registrar (RFC 8599 §5.6, the
 * "mid-registrar" layout): the phone registers through pushcall, which adds
 * Feature-Caps +sip.pns and a Path and forwards to the registrar (here a second pushcall
 * without push credentials, standing in for a PBX's registrar). A call to the registrar
 * comes back through the Path with the pn-* parameters, and pushcall wakes the phone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PushcallServer, createLogger, validateConfig } from '@pushcall/server';
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
});
