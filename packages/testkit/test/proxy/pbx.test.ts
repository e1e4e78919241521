/**
 * In front of a PBX: `domains` names pushcall's own domain, `proxy.upstream` the PBX
 * (outbound proxy for everything else), `auth.trustedPeers` the PBX's address. SIPp stands
 * in for Asterisk on both sides.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Lab, SimulatedPhone, SipUserAgent, freePort, runSipp, scenario, sippAvailable, startLab } from '../../src/index.js';
import type { SipResponse } from '@pushcall/sip';
import { RawUdpPeer, pushUa, rawCall, sleep, waitFor } from './helpers.js';

const DOMAIN = 'pushcall.test';
/** The PBX sends from this loopback address; only it is trusted. */
const PBX_ADDRESS = '127.0.0.3';

describe('in front of a PBX (proxy.upstream, auth.trustedPeers)', () => {
  let lab: Lab;
  let pbxPort: number;
  const closers: Array<() => unknown> = [];

  before(async () => {
    assert.ok(sippAvailable(), 'sipp must be installed (apt-get install -y sip-tester)');
    pbxPort = await freePort();
    lab = await startLab({
      users: [
        { username: 'alice', password: 'alice-pw' },
        { username: 'ext201', password: 'ext201-pw' },
      ],
      config: {
        domains: [DOMAIN],
        auth: { trustedPeers: [PBX_ADDRESS] } as never,
        proxy: { upstream: `sip:127.0.0.1:${pbxPort}`, wakeTimeoutSeconds: 5, ringTimeoutSeconds: 20 } as never,
      },
    });
  });
  after(async () => {
    for (const c of closers) await c();
    await lab.close();
  });

  it('a registered device dials a non-local number: INVITE goes to the upstream with Route and Record-Route; ACK and BYE follow', async () => {
    const pbx = runSipp({
      remote: `127.0.0.1:${lab.server.port('udp')}`,
      localPort: pbxPort,
      scenario: scenario('pbx-uas', { dialled: '100', caller: 'alice', pbx_port: pbxPort, pushcall_port: lab.server.port('udp'), answer_ms: 200 }),
      timeoutMs: 15_000,
    });
    await sleep(300); // SIPp binds its socket
    const alice = new SipUserAgent({
      user: 'alice',
      password: 'alice-pw',
      domain: DOMAIN,
      server: lab.address('udp'),
      instanceId: 'urn:uuid:00000000-0000-4000-8000-0000000a11ce',
    });
    closers.push(() => alice.close());
    assert.equal((await alice.registerAsync(600)).status, 200);
    const response = await alice.call('sip:100@pbx.test');
    assert.equal(response.status, 200, `${response.status} ${response.reason}`);
    assert.equal(response.recordRoutes.length, 1, 'pushcall stays on the path');
    await sleep(100);
    alice.hangup(response.callId);
    const result = await pbx;
    assert.equal(result.exitCode, 0, `PBX side: ${result.errors}`);
  });

  it('a stranger cannot use pushcall to reach the PBX: 407', async () => {
    const mallory = new SipUserAgent({ user: 'mallory', domain: DOMAIN, server: lab.address('udp'), instanceId: 'urn:uuid:00000000-0000-4000-8000-00000000bad0' });
    closers.push(() => mallory.close());
    const response = await mallory.call('sip:100@pbx.test');
    assert.equal(response.status, 407);
  });

  it('the PBX calls a sleeping local user (wake path, not challenged), then cancels with cause=200: the woken phone ends answeredElsewhere', async () => {
    const iphone = new SimulatedPhone({
      name: 'ext201-iphone',
      platform: 'ios',
      user: 'ext201',
      password: 'ext201-pw',
      ...lab.phoneWiring(),
      domain: DOMAIN,
      launchDelayMs: 1200,
      answer: { kind: 'ignore' },
    });
    closers.push(() => iphone.close());
    await iphone.start();
    await iphone.sleep();
    const result = await runSipp({
      remote: `127.0.0.1:${lab.server.port('udp')}`,
      scenario: scenario('pbx-cancel-elsewhere', { callee: 'ext201', domain: DOMAIN, ring_ms: 200 }),
      extraArgs: ['-i', PBX_ADDRESS],
      timeoutMs: 10_000,
    });
    assert.equal(result.exitCode, 0, result.errors);
    assert.equal(lab.apns.received.filter((p) => p.token === iphone.token).length, 1, 'one VoIP push');
    await waitFor(() => iphone.ua.received.some((r) => r.method === 'CANCEL'), 5000, 'CANCEL at the woken phone');
    const cancel = iphone.ua.received.find((r) => r.method === 'CANCEL')!;
    assert.equal(cancel.get('reason'), 'SIP;cause=200;text="Call completed elsewhere"');
    await waitFor(() => iphone.coordinator.calls()[0]?.state === 'ended', 3000, 'CallKit call end');
    assert.equal(iphone.coordinator.calls()[0].endReason, 'answeredElsewhere');
    const timeline = lab.server.timelines.get(cancel.callId)!;
    const invite = timeline.events.find((e) => e.kind === 'invite-in')!;
    assert.equal(invite.detail?.caller, `trusted:${PBX_ADDRESS}`);
    assert.equal(timeline.outcome, 'cancelled');
  });
});

describe('calls relayed to the upstream: CANCEL and failures', () => {
  let lab: Lab;
  let pbx: RawUdpPeer;
  let caller: RawUdpPeer;

  before(async () => {
    pbx = await RawUdpPeer.open();
    caller = await RawUdpPeer.open();
    lab = await startLab({ config: { domains: [DOMAIN], proxy: { upstream: `sip:127.0.0.1:${pbx.port}` } as never } });
  });
  after(async () => {
    pbx.close();
    caller.close();
    await lab.close();
  });

  it('the caller hangs up while the PBX rings: the CANCEL (with its Reason) is passed on and the 487 comes back', async () => {
    // The PBX only rings; it answers a CANCEL with 200 and the INVITE with 487.
    pbx.onRequest = (r) => {
      if (r.method === 'INVITE') void pbx.respond(r, 180, { toTag: 'pbxtag' });
      if (r.method === 'CANCEL') {
        void pbx.respond(r, 200);
        const invite = pbx.requests('INVITE').find((i) => i.callId === r.callId)!;
        void pbx.respond(invite, 487, { toTag: 'pbxtag' });
      }
    };
    const call = await rawCall(lab, caller, 'sip:100@pbx.test');
    await call.ringing();
    const cancelled = await call.cancel('SIP;cause=16;text="Normal call clearing"');
    assert.equal(cancelled.status, 200);
    assert.equal((await call.final).status, 487);
    const cancel = pbx.requests('CANCEL').find((r) => r.callId === call.callId);
    assert.ok(cancel, 'the PBX got the CANCEL');
    const invite = pbx.requests('INVITE').find((r) => r.callId === call.callId)!;
    assert.equal(cancel.via.branch, invite.via.branch, 'for the branch pushcall created (§16.10)');
    assert.equal(cancel.get('reason'), 'SIP;cause=16;text="Normal call clearing"');
  });

  it('a 503 from the PBX reaches the device as 500 (§16.7 step 6)', async () => {
    pbx.onRequest = (r) => {
      if (r.method === 'INVITE') void pbx.respond(r, 503, { headers: [['Retry-After', '60']] });
    };
    const call = await rawCall(lab, caller, 'sip:101@pbx.test');
    assert.equal((await call.final).status, 500);
  });
});

describe('a trusted PBX and the per-caller limit', () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({
      config: {
        auth: { trustedPeers: ['127.0.0.2'] } as never,
        proxy: { wakeTimeoutSeconds: 1 } as never,
        limits: { perCallerPerMinute: 2, perCalleePerMinute: 1000 } as never,
      },
    });
  });
  after(async () => lab.close());

  it('is limited per calling party it asserts, not as one caller', async () => {
    const token = (await import('node:crypto')).randomBytes(32).toString('hex');
    lab.apns.registerDevice({ token, bundleId: 'com.example.pushcall', environment: 'production' });
    const { ua } = await pushUa(lab, 'sales', { provider: 'apns', prid: token });
    await ua.close();
    const trunk = await RawUdpPeer.open('127.0.0.2');
    try {
      const finals: Array<Promise<SipResponse>> = [];
      for (const from of ['201', '202', '203', '201']) {
        const call = await rawCall(lab, trunk, 'sip:sales@127.0.0.1', { fromUser: from, fromHost: 'pbx.test' });
        await call.ringing();
        finals.push(call.final);
      }
      const third = await rawCall(lab, trunk, 'sip:sales@127.0.0.1', { fromUser: '201', fromHost: 'pbx.test' });
      const refused = await third.final;
      assert.equal(refused.status, 503, 'the third call from 201 within a minute');
      for (const f of finals) assert.equal((await f).status, 480);
    } finally {
      trunk.close();
    }
  });
});
