/**
 * The registration event package (RFC 3680) against pushcall on loopback: a raw UDP
 * subscriber (SUBSCRIBE / NOTIFY by hand, so every header can be checked) and SIP user
 * agents as the devices whose registrations it watches.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { SipRequest } from '@pushcall/sip';
import { type Lab, LAB_FCM_PROJECT, SipUserAgent, startLab } from '../../src/index.js';
import { Subscriber } from '../support/subscriber.js';
import { waitFor } from '../support/wait.js';

const body = (m: SipRequest) => m.body.toString('utf8');

describe('registration event package (RFC 3680)', () => {
  let lab: Lab;
  const closers: Array<() => unknown> = [];

  before(async () => {
    lab = await startLab({ config: { registrar: { regEvent: { minExpires: 1 } } } as never });
  });
  after(async () => {
    for (const close of closers) await close();
    await lab.close();
  });

  async function subscriber(user: string): Promise<Subscriber> {
    const s = new Subscriber(lab.server.port('udp'), user);
    await s.open();
    closers.push(() => s.close());
    return s;
  }

  it('the user watches its AOR: the state at once, then a device registering (push token left out), unregistering, and the end on Expires 0', async () => {
    const sub = await subscriber('tess');
    const ok = await sub.subscribe('sip:tess@127.0.0.1', { expires: 600 });
    assert.equal(ok.status, 200);
    assert.equal(ok.get('expires'), '600');
    const toTag = ok.to.tag!;
    assert.ok(toTag);
    const contact = ok.contacts === '*' ? '' : ok.contacts[0].uri.toString();
    assert.match(contact, new RegExp(`^sip:127\\.0\\.0\\.1:${lab.server.port('udp')}$`));

    assert.match(await lab.server.metrics.registry.getSingleMetricAsString('pushcall_reg_subscriptions'), /pushcall_reg_subscriptions 1/);
    const first = await sub.nextNotify(1);
    assert.equal(first.get('event'), 'reg');
    assert.match(first.get('subscription-state') ?? '', /^active;expires=(600|599)$/);
    assert.equal(first.get('content-type'), 'application/reginfo+xml');
    assert.equal(first.callId, sub.callId);
    assert.equal(first.from.tag, toTag, 'the dialog the 200 made');
    assert.equal(first.to.tag, sub.tag);
    assert.match(body(first), /<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="0" state="full">/);
    assert.match(body(first), /<registration aor="sip:tess@127\.0\.0\.1" id="r[0-9a-f]+" state="init">/);

    // A device of tess registers, with an FCM token.
    const token = randomBytes(24).toString('hex');
    const instanceId = `urn:uuid:${randomUUID()}`;
    const device = new SipUserAgent({ user: 'tess', domain: '127.0.0.1', server: lab.address('udp'), instanceId });
    closers.push(() => device.close());
    device.register({ pnProvider: 'fcm', pnPrid: token, pnParam: LAB_FCM_PROJECT });
    await waitFor(() => device.registered, 3000, 'the device registered');
    const second = await sub.nextNotify(2);
    const xml = body(second);
    assert.match(xml, /version="1" state="full"/);
    assert.match(xml, /<registration [^>]*state="active">/);
    assert.match(xml, /<contact id="[^"]+" state="active" event="registered" expires="\d+"/);
    assert.match(xml, /<uri>sip:tess@127\.0\.0\.1:\d+<\/uri>/);
    assert.match(xml, new RegExp(`<unknown-param name="\\+sip\\.instance">&lt;${instanceId}&gt;</unknown-param>`));
    assert.match(xml, /<unknown-param name="pn-provider">fcm<\/unknown-param>/);
    assert.doesNotMatch(xml, new RegExp(token.slice(0, 16)), 'the push token is a secret');
    assert.equal(second.cseq.seq, first.cseq.seq + 1);

    // It refreshes, then unregisters.
    assert.equal((await device.registerAsync(600)).status, 200);
    assert.match(body(await sub.nextNotify(3)), /state="active" event="refreshed"/);
    assert.equal((await device.registerAsync(0)).status, 200);
    const gone = body(await sub.nextNotify(4));
    assert.match(gone, /<registration [^>]*state="terminated">/);
    assert.match(gone, /<contact id="[^"]+" state="terminated" event="unregistered"/);

    // The subscriber ends its subscription (RFC 6665 §4.1.2.3): a last NOTIFY says so.
    const end = await sub.subscribe('sip:tess@127.0.0.1', { expires: 0, toTag, requestUri: contact });
    assert.equal(end.status, 200);
    assert.match((await sub.nextNotify(5)).get('subscription-state') ?? '', /^terminated;reason=timeout$/);
    assert.equal(lab.server.proxy.regEvents?.size, 0);
    // Its dialog is gone: a refresh now gets 481.
    assert.equal((await sub.subscribe('sip:tess@127.0.0.1', { expires: 600, toTag, requestUri: contact })).status, 481);
  });

  it('another user may not watch an AOR (403); too brief an Expires gets 423 with Min-Expires; an Accept without reginfo 406', async () => {
    const other = await subscriber('ugo');
    const refused = await other.subscribe('sip:tess@127.0.0.1', { expires: 600 });
    assert.equal(refused.status, 403);
    assert.equal(refused.reason, 'Not allowed to watch this user');
    const strict = new Subscriber(lab.server.port('udp'), 'vera');
    await strict.open();
    closers.push(() => strict.close());
    const lab2 = await startLab({ config: { registrar: { regEvent: { minExpires: 120 } } } as never });
    try {
      const s = new Subscriber(lab2.server.port('udp'), 'vera');
      await s.open();
      closers.push(() => s.close());
      const brief = await s.subscribe('sip:vera@127.0.0.1', { expires: 30 });
      assert.equal(brief.status, 423);
      assert.equal(brief.get('min-expires'), '120');
    } finally {
      await lab2.close();
    }
    const wrongType = await strict.subscribe('sip:vera@127.0.0.1', { expires: 600, accept: 'application/pidf+xml' });
    assert.equal(wrongType.status, 406);
    assert.equal(wrongType.get('accept'), 'application/reginfo+xml');
  });

  it('a subscription that is not refreshed ends with NOTIFY terminated;reason=timeout; one whose NOTIFY gets 481 is dropped', async () => {
    const short = await subscriber('wes');
    assert.equal((await short.subscribe('sip:wes@127.0.0.1', { expires: 1 })).status, 200);
    await short.nextNotify(1);
    assert.match((await short.nextNotify(2)).get('subscription-state') ?? '', /^terminated;reason=timeout$/);

    // Its expiry falls while its first NOTIFY is still unanswered: the last NOTIFY follows that one.
    const slow = await subscriber('yul');
    slow.notifyDelayMs = 1500;
    assert.equal((await slow.subscribe('sip:yul@127.0.0.1', { expires: 1 })).status, 200);
    await slow.nextNotify(1);
    const last = await slow.nextNotify(2);
    assert.match(last.get('subscription-state') ?? '', /^terminated;reason=timeout$/);
    assert.equal(last.cseq.seq, 2);

    const rude = await subscriber('xia');
    rude.notifyStatus = 481; // it forgot the subscription
    assert.equal((await rude.subscribe('sip:xia@127.0.0.1', { expires: 600 })).status, 200);
    await rude.nextNotify(1);
    await waitFor(() => lab.server.proxy.regEvents?.size === 0, 2000, `the subscription dropped (${lab.server.proxy.regEvents?.size} left, ${rude.requests.length} NOTIFY)`);
  });
});
