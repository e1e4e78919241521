/**
 * Offline messages end to end (proxy.offlineMessages): pushcall with its SQLite stores, the
 * FCM emulator, SIP user agents as the apps. A MESSAGE for devices that sleep through the
 * push is answered 202 Accepted and kept; each device gets it when its app registers again.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { PushContactParams } from '@pushcall/client';
import { type Lab, LAB_FCM_PROJECT, SipUserAgent, startLab } from '../../src/index.js';
import { waitFor } from '../support/wait.js';

interface Received {
  from: string;
  body: string;
  callId: string;
}

describe('offline messages: kept for a device that slept through the push, delivered when it registers', () => {
  let lab: Lab;
  const agents: SipUserAgent[] = [];

  before(async () => {
    lab = await startLab({
      config: {
        proxy: { wakeTimeoutSeconds: 2, offlineMessages: { acceptAfterSeconds: 1, maxPerUser: 2 } } as never,
        limits: { perCalleePerMinute: 1000, perCallerPerMinute: 1000 } as never,
      },
    });
  });
  after(async () => {
    for (const a of agents) await a.close();
    await lab.close();
  });

  /** An app on a device: its instance id and FCM token stay the same across launches. */
  function device(user: string) {
    const instanceId = `urn:uuid:${randomUUID()}`;
    const push: PushContactParams = { pnProvider: 'fcm', pnPrid: randomBytes(20).toString('hex'), pnParam: LAB_FCM_PROJECT };
    return {
      instanceId,
      token: push.pnPrid,
      /** The app launches and registers; what it receives is collected. */
      async launch(): Promise<{ ua: SipUserAgent; received: Received[] }> {
        const ua = new SipUserAgent({ user, domain: '127.0.0.1', server: lab.address('udp'), instanceId });
        agents.push(ua);
        const received: Received[] = [];
        ua.events.onMessage = (from, body, callId) => received.push({ from, body, callId });
        ua.register(push);
        await waitFor(() => ua.registered, 3000, `${user} registered`);
        return { ua, received };
      },
    };
  }

  function sender(user: string): SipUserAgent {
    const ua = new SipUserAgent({ user, domain: '127.0.0.1', server: lab.address('udp'), instanceId: `urn:uuid:${randomUUID()}` });
    agents.push(ua);
    return ua;
  }

  it('202 Accepted after acceptAfterSeconds, one alert push; the phone gets the message when its app registers again, once', async () => {
    const phone = device('kai');
    const first = await phone.launch();
    await first.ua.sleep(); // killed: the push below reaches no running app

    const startedAt = Date.now();
    const response = await sender('lou').message('sip:kai@127.0.0.1', 'See you at 8 \u2014 Lou');
    assert.equal(response.status, 202, `${response.status} ${response.reason}`);
    assert.equal(response.reason, 'Accepted');
    assert.ok(Date.now() - startedAt >= 900, 'after about acceptAfterSeconds');
    const pushes = lab.fcm.received.filter((m) => m.token === phone.token);
    assert.equal(pushes.length, 1);
    assert.equal((pushes[0].payload as { type: string }).type, 'message');
    const timeline = lab.server.timelines.list(20).find((t) => t.callId === response.callId)!;
    assert.equal(timeline.outcome, 'kept-offline');
    assert.ok(timeline.events.some((e) => e.kind === 'kept-offline'));
    assert.equal((await lab.server.summary()).offlineMessages, 1);

    // Later the user opens the app: it registers, and the message follows.
    const later = await phone.launch();
    await waitFor(() => later.received.length === 1, 3000, 'the kept message');
    assert.equal(later.received[0].body, 'See you at 8 \u2014 Lou');
    assert.match(later.received[0].from, /sip:lou@127\.0\.0\.1/);
    assert.equal(later.received[0].callId, response.callId, 'the sender\'s Call-ID: the app can tell a repeat');
    await waitFor(async () => (await lab.server.summary()).offlineMessages === 0, 2000, 'the message to be gone');
    assert.match(await lab.server.metrics.registry.getSingleMetricAsString('pushcall_offline_messages_total'), /event="delivered"\} 1/);

    // Registering again brings nothing more.
    assert.equal((await later.ua.registerAsync(600)).status, 200);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(later.received.length, 1);
  });

  it('a user with a phone and a tablet: each gets the message when it comes back; it is kept until both have it', async () => {
    const phone = device('mia');
    const tablet = device('mia');
    for (const d of [phone, tablet]) await (await d.launch()).ua.sleep();

    const response = await sender('ned').message('sip:mia@127.0.0.1', 'Dinner?');
    assert.equal(response.status, 202);
    const onPhone = await phone.launch();
    await waitFor(() => onPhone.received.length === 1, 3000, 'the message on the phone');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await lab.server.proxy.offline!.store.forAor('sip:mia@127.0.0.1', Date.now())).length, 1, 'still owed to the tablet');
    const onTablet = await tablet.launch();
    await waitFor(() => onTablet.received.length === 1, 3000, 'the message on the tablet');
    assert.equal(onTablet.received[0].body, 'Dinner?');
    await waitFor(async () => (await lab.server.proxy.offline!.store.forAor('sip:mia@127.0.0.1', Date.now())).length === 0, 2000, 'the message to be gone');
  });

  it('past maxPerUser kept messages the sender gets the 480 it would have had', async () => {
    const phone = device('ola');
    await (await phone.launch()).ua.sleep();
    const from = sender('pat');
    assert.equal((await from.message('sip:ola@127.0.0.1', 'one')).status, 202);
    assert.equal((await from.message('sip:ola@127.0.0.1', 'two')).status, 202);
    const third = await from.message('sip:ola@127.0.0.1', 'three');
    assert.equal(third.status, 480, `${third.status} ${third.reason}`);
    const back = await phone.launch();
    await waitFor(() => back.received.length === 2, 3000, 'the two kept messages');
    assert.deepEqual(back.received.map((m) => m.body), ['one', 'two'], 'oldest first');
  });

  it('a MESSAGE for a device that wakes in time is delivered at once with 200, and nothing is kept', async () => {
    const phone = device('quin');
    const app = await phone.launch();
    // Awake (registered, socket open) but a push binding over UDP: pushed, and it registers
    // again at once, as an app woken by the push does.
    lab.fcm.subscribe(phone.token, () => void app.ua.registerAsync(600));
    const response = await sender('rae').message('sip:quin@127.0.0.1', 'quick');
    assert.equal(response.status, 200);
    assert.deepEqual(app.received.map((m) => m.body), ['quick']);
    assert.deepEqual(await lab.server.proxy.offline!.store.forAor('sip:quin@127.0.0.1', Date.now()), []);
  });
});

describe('offline messages: a slow store and the wake timeout', () => {
  let lab: Lab;
  const agents: SipUserAgent[] = [];
  before(async () => {
    // acceptAfterSeconds above the wake timeout: the message is kept when the wake times out.
    lab = await startLab({ config: { proxy: { wakeTimeoutSeconds: 1, offlineMessages: { acceptAfterSeconds: 5 } } } as never });
  });
  after(async () => {
    for (const a of agents) await a.close();
    await lab.close();
  });

  it('the wake timeout falling while the message is being written does not answer 480 for a message that was kept', async () => {
    const store = lab.server.proxy.offline!.store;
    const add = store.add.bind(store);
    // A store that takes its time (Redis far away, a slow disk).
    store.add = async (...args) => {
      await new Promise((r) => setTimeout(r, 300));
      return add(...args);
    };
    const push: PushContactParams = { pnProvider: 'fcm', pnPrid: randomBytes(20).toString('hex'), pnParam: LAB_FCM_PROJECT };
    const instanceId = `urn:uuid:${randomUUID()}`;
    const app = () => {
      const ua = new SipUserAgent({ user: 'sal', domain: '127.0.0.1', server: lab.address('udp'), instanceId });
      agents.push(ua);
      return ua;
    };
    const first = app();
    first.register(push);
    await waitFor(() => first.registered, 3000, 'sal registered');
    await first.sleep();
    const sender = new SipUserAgent({ user: 'tom', domain: '127.0.0.1', server: lab.address('udp'), instanceId: `urn:uuid:${randomUUID()}` });
    agents.push(sender);
    const response = await sender.message('sip:sal@127.0.0.1', 'slowly');
    assert.equal(response.status, 202, `${response.status} ${response.reason}`);
    const later = app();
    const received: string[] = [];
    later.events.onMessage = (_from, body) => received.push(body);
    later.register(push);
    await waitFor(() => received.length === 1, 3000, 'the kept message');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(received, ['slowly'], 'once');
  });
});
