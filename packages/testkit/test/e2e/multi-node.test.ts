/**
 * Two pushcall nodes sharing one real redis-server (DESIGN.md §6, store.type redis): the
 * phone registers through node B over TCP and sleeps; a call reaches node A. Node A finds
 * the binding in Redis, pushes, holds the call; the phone wakes and registers at node B
 * again, on a new connection; node B tells node A, and node A sends the INVITE through
 * node B, the only node holding the phone's connection. The dialog (ACK, BYE) follows the
 * same way. SIPp is the caller.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type PushcallServer, RedisBindingStore, StartupError, createLogger, createPushcall, validateConfig } from '@pushcall/server';
import {
  type FleetEmulators,
  type RedisServerHandle,
  SimulatedPhone,
  type SimulatedPhoneOptions,
  SipUserAgent,
  freePort,
  runSipp,
  scenario,
} from '../../src/index.js';
import { type Cluster, CLUSTER_SECRET, startCluster } from '../support/cluster.js';
import { Subscriber } from '../support/subscriber.js';
import { waitFor } from '../support/wait.js';

describe('two nodes sharing a Redis store (multi-node)', () => {
  let redis: RedisServerHandle;
  let emulators: FleetEmulators;
  let nodeA: PushcallServer;
  let nodeB: PushcallServer;
  const phones: SimulatedPhone[] = [];

  let cluster: Cluster;
  const startNode = (id: string) => cluster.startNode(id, { tcp: true, extra: { proxy: { wakeTimeoutSeconds: 5, offlineMessages: { acceptAfterSeconds: 1 } } } });

  before(async () => {
    cluster = await startCluster('mn:');
    ({ redis, emulators } = cluster);
    nodeA = await startNode('node-a');
    nodeB = await startNode('node-b');
  });
  after(async () => {
    for (const p of phones) await p.close();
    await cluster?.close();
  });

  /** An iPhone whose app registers through node B over TCP, then is suspended (its connection closes). */
  async function sleepingPhoneOnB(name: string, user: string, extra: Partial<SimulatedPhoneOptions> = {}): Promise<SimulatedPhone> {
    const phone = new SimulatedPhone({
      name,
      platform: 'ios',
      user,
      domain: '127.0.0.1',
      server: { protocol: 'tcp', address: '127.0.0.1', port: nodeB.port('tcp') },
      apns: emulators.apns,
      apnsSandbox: emulators.apnsSandbox,
      launchDelayMs: 100,
      answer: { kind: 'answer', afterMs: 200 },
      ...extra,
    });
    phones.push(phone);
    await phone.start();
    await phone.sleep();
    return phone;
  }

  it('a call at node A wakes a phone registered at node B and connects through B; ACK and BYE follow', async () => {
    const phone = await sleepingPhoneOnB('iphone-b', 'bob');
    const onA = await nodeA.store.lookup('sip:bob@127.0.0.1', Date.now());
    assert.equal(onA.length, 1, 'node A reads the binding node B wrote');
    assert.equal(onA[0].flow.nodeId, 'node-b');
    assert.equal(onA[0].flow.protocol, 'tcp');

    const pushesBefore = emulators.apns.received.length;
    const result = await runSipp({
      remote: `127.0.0.1:${nodeA.port('udp')}`,
      scenario: scenario('uac-call', { callee: 'bob', talk_ms: 300 }),
      timeoutMs: 15_000,
    });
    assert.equal(result.exitCode, 0, `${result.errors}\n${JSON.stringify(nodeA.timelines.list(1), null, 1)}`);
    assert.equal(emulators.apns.received.length, pushesBefore + 1, 'one VoIP push, from node A');

    // The phone re-registered through node B (a new connection); node A heard of it from B.
    assert.equal(phone.ua.received.filter((r) => r.method === 'INVITE').length, 1);
    const invite = phone.ua.received.find((r) => r.method === 'INVITE')!;
    const routeSet = invite.getAll('record-route').join(',');
    assert.match(routeSet, new RegExp(`127\\.0\\.0\\.1:${nodeB.port('tcp')}`), 'node B record-routed (it holds the flow)');
    assert.match(routeSet, new RegExp(`127\\.0\\.0\\.1:${nodeA.port('udp')}`), 'node A record-routed');
    assert.doesNotMatch(invite.uriText, /pn-/);
    await waitFor(() => phone.ua.received.some((r) => r.method === 'BYE'), 5000, 'BYE at the phone, through A and B');
    await waitFor(() => phone.coordinator.calls()[0]?.state === 'ended', 5000, 'call end');
    assert.equal(phone.coordinator.calls()[0].endReason, 'remoteEnded');

    // Node A listened for bob's registrations only while it held his call.
    assert.ok(nodeA.store instanceof RedisBindingStore);
    assert.deepEqual(await nodeA.store.redis.pubsub('CHANNELS', 'mn:reg:*'), [], 'no subscription left once the call is delivered');
    const timeline = nodeA.timelines.list(1)[0];
    assert.equal(timeline.outcome, 'answered');
    assert.ok(timeline.events.some((e) => e.kind === 'device-registered'), 'node A released the held call on B\'s news');
    const a = await nodeA.metrics.registry.getSingleMetricAsString('pushcall_node_relays_total');
    assert.match(a, /direction="out"} [1-9]/, a);
    const b = await nodeB.metrics.registry.getSingleMetricAsString('pushcall_node_relays_total');
    assert.match(b, /direction="in"} [1-9]/, b);
    assert.match(await nodeA.metrics.registry.getSingleMetricAsString('pushcall_cluster_events_total'), /direction="in"} [1-9]/);
    assert.match(await nodeB.metrics.registry.getSingleMetricAsString('pushcall_cluster_events_total'), /direction="out"} [1-9]/);
  });

  it('ghost call across nodes: the caller hangs up at A before the phone is back on B; the phone still gets INVITE then CANCEL', async () => {
    const phone = await sleepingPhoneOnB('iphone-ghost', 'dave', { launchDelayMs: 1200, answer: { kind: 'ignore' } });
    const result = await runSipp({
      remote: `127.0.0.1:${nodeA.port('udp')}`,
      scenario: scenario('uac-cancel', { callee: 'dave', ring_ms: 100 }),
      timeoutMs: 10_000,
    });
    assert.equal(result.exitCode, 0, result.errors);
    await waitFor(() => phone.ua.received.some((r) => r.method === 'CANCEL'), 6000, 'CANCEL at the phone');
    const invite = phone.ua.received.find((r) => r.method === 'INVITE');
    const cancel = phone.ua.received.find((r) => r.method === 'CANCEL');
    assert.ok(invite && cancel);
    assert.equal(cancel.callId, invite.callId);
    await waitFor(() => phone.coordinator.calls()[0]?.state === 'ended', 3000, 'CallKit call end');
    assert.equal(phone.coordinator.calls()[0].endReason, 'remoteEnded');
  });

  it('desk phone on node A answers first: the iPhone woken through node B gets CANCEL with Reason cause=200 (answered elsewhere)', async () => {
    const phone = await sleepingPhoneOnB('iphone-elsewhere', 'carol', { launchDelayMs: 1200, answer: { kind: 'ignore' } });
    const desk = new SipUserAgent({ user: 'carol', domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: nodeA.port('udp') }, instanceId: `urn:uuid:${randomUUID()}`, autoAnswerMs: 200 });
    const caller = new SipUserAgent({ user: 'kim', domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: nodeA.port('udp') }, instanceId: `urn:uuid:${randomUUID()}` });
    try {
      assert.equal((await desk.registerAsync(600)).status, 200);
      const ok = await caller.call('sip:carol@127.0.0.1');
      assert.equal(ok.status, 200, `${ok.status} ${ok.reason}`);
      // The iPhone was pushed at the same time; it registers through node B after the desk
      // phone answered, and still learns the call is over, and why.
      await waitFor(() => phone.ua.received.some((r) => r.method === 'CANCEL'), 6000, 'CANCEL at the iPhone');
      assert.equal(phone.ua.received.find((r) => r.method === 'CANCEL')!.get('reason'), 'SIP;cause=200;text="Call completed elsewhere"');
      await waitFor(() => phone.coordinator.calls()[0]?.state === 'ended', 3000, 'CallKit call end');
      assert.equal(phone.coordinator.calls()[0].endReason, 'answeredElsewhere');
    } finally {
      await Promise.all([desk.close(), caller.close()]);
    }
  });

  it('a phone that moves to the other node mid-call (network handover) gets the caller\'s BYE there', async () => {
    const instanceId = `urn:uuid:${randomUUID()}`;
    const onB = new SipUserAgent({ user: 'gil', domain: '127.0.0.1', server: { protocol: 'tcp', address: '127.0.0.1', port: nodeB.port('tcp') }, instanceId, autoAnswerMs: 20 });
    const caller = new SipUserAgent({ user: 'hal', domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: nodeA.port('udp') }, instanceId: `urn:uuid:${randomUUID()}` });
    let onA: SipUserAgent | undefined;
    try {
      assert.equal((await onB.registerAsync(600)).status, 200);
      const callId = `move-${randomUUID()}`;
      const ok = await caller.call('sip:gil@127.0.0.1', { callId });
      assert.equal(ok.status, 200, `${ok.status} ${ok.reason}`);
      await waitFor(() => onB.received.some((r) => r.method === 'ACK' && r.callId === callId), 3000, 'ACK at the phone on B');

      // The same device registers through node A from its new network.
      onA = new SipUserAgent({ user: 'gil', domain: '127.0.0.1', server: { protocol: 'tcp', address: '127.0.0.1', port: nodeA.port('tcp') }, instanceId });
      assert.equal((await onA.registerAsync(600)).status, 200);
      const [binding] = await nodeA.store.lookup('sip:gil@127.0.0.1', Date.now());
      assert.equal(binding.flow.nodeId, 'node-a');

      caller.hangup(callId);
      await waitFor(() => onA!.received.some((r) => r.method === 'BYE' && r.callId === callId), 3000, 'BYE at the phone, now on node A');
      assert.equal(onB.received.filter((r) => r.method === 'BYE').length, 0, 'not on the connection the phone left');
    } finally {
      await Promise.all([onB.close(), caller.close(), onA?.close()]);
    }
  });

  it('each node\'s summary (admin /api/summary) lists the live nodes', async () => {
    const expected = [
      { id: 'node-a', uri: `sip:127.0.0.1:${nodeA.port('tcp')};transport=tcp` },
      { id: 'node-b', uri: `sip:127.0.0.1:${nodeB.port('tcp')};transport=tcp` },
    ];
    // A node that crashed: still in the set, its claim expired.
    assert.ok(nodeA.store instanceof RedisBindingStore);
    await nodeA.store.redis.sadd('mn:nodes', 'node-crashed');
    // Nothing to adopt from it: it left no binding behind.
    assert.deepEqual((await nodeA.summary()).cluster, { nodes: expected, adopted: [] });
    assert.deepEqual((await nodeB.summary()).cluster, { nodes: expected, adopted: [] });
    assert.equal(await nodeA.store.redis.sismember('mn:nodes', 'node-crashed'), 0, 'dropped from the set on the way');
  });

  it('a second node with a node.id already in use is refused at startup', async () => {
    await assert.rejects(startNode('node-a'), (error: unknown) => {
      assert.ok(error instanceof StartupError, String(error));
      assert.match(error.message, /node\.id node-a is in use by another node/);
      return true;
    });
  });

  it('a node that cannot reach Redis does not start, and its error leaves the Redis password out', async () => {
    const port = await freePort();
    const config = validateConfig({
      node: { id: 'node-x', uri: 'sip:127.0.0.1:5999' },
      listen: ['udp:127.0.0.1:0'],
      store: { type: 'redis', redis: { url: `redis://:very-secret-password@127.0.0.1:${port}/0`, commandTimeoutMs: 300 } },
      auth: { mode: 'open', nonceSecret: CLUSTER_SECRET },
      admin: { enabled: false },
      log: { level: 'silent' },
    });
    const server = await createPushcall({ config, logger: createLogger('silent') });
    await assert.rejects(server.start(), (error: unknown) => {
      assert.ok(error instanceof StartupError, String(error));
      assert.match(error.message, new RegExp(`Cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0`));
      assert.doesNotMatch(error.message, /very-secret-password/);
      return true;
    });
  });

  it('the same call forked to both nodes (a PBX with both in its dial string) pushes the phone once', async () => {
    const phone = await sleepingPhoneOnB('iphone-fork', 'nia');
    await phone.close();
    const callId = `fork-${randomUUID()}@pbx`;
    const invite = (branch: string) =>
      Buffer.from(
        [
          'INVITE sip:nia@127.0.0.1 SIP/2.0',
          `Via: SIP/2.0/UDP 127.0.0.1:9;branch=${branch};rport`,
          'Max-Forwards: 70',
          'From: <sip:pbx@127.0.0.1>;tag=fork',
          'To: <sip:nia@127.0.0.1>',
          `Call-ID: ${callId}`,
          'CSeq: 1 INVITE',
          'Contact: <sip:pbx@127.0.0.1:9>',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
    const { createSocket } = await import('node:dgram');
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    const send = (data: Buffer, port: number) => new Promise<void>((r) => socket.send(data, port, '127.0.0.1', () => r()));
    try {
      // Both at once, as a parallel fork sends them: each node's local memory says "first".
      await Promise.all([send(invite('z9hG4bKforkA'), nodeA.port('udp')), send(invite('z9hG4bKforkB'), nodeB.port('udp'))]);
      const held = (node: PushcallServer) => node.timelines.list(50).find((t) => t.callId === callId);
      await waitFor(() => [nodeA, nodeB].every((n) => held(n)?.events.some((e) => e.kind === 'push-sent' || e.kind === 'push-deduplicated')), 3000, 'both nodes to decide');
      await new Promise((r) => setTimeout(r, 200));
      const pushes = emulators.apns.received.filter((p) => (p.payload as { pushcall?: { call_id?: string } }).pushcall?.call_id === callId);
      assert.equal(pushes.length, 1, 'one VoIP push for the call, whichever node sent it');
      const kinds = [nodeA, nodeB].map((n) => held(n)!.events.filter((e) => e.kind.startsWith('push-')).map((e) => e.kind)[0]).sort();
      assert.deepEqual(kinds, ['push-deduplicated', 'push-sent']);
    } finally {
      socket.close();
    }
  });

  it('a MESSAGE kept at node A for a sleeping phone (202) is delivered by node B when the phone registers there', async () => {
    const instanceId = `urn:uuid:${randomUUID()}`;
    const push = { pnProvider: 'fcm', pnPrid: randomUUID().replaceAll('-', ''), pnParam: 'pushcall-lab' };
    const app = () => new SipUserAgent({ user: 'rio', domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: nodeB.port('udp') }, instanceId });
    const first = app();
    const sender = new SipUserAgent({ user: 'sid', domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: nodeA.port('udp') }, instanceId: `urn:uuid:${randomUUID()}` });
    const later = app();
    try {
      first.register(push);
      await waitFor(() => first.registered, 3000, 'rio registered at B');
      await first.sleep();
      const response = await sender.message('sip:rio@127.0.0.1', 'kept in Redis');
      assert.equal(response.status, 202, `${response.status} ${response.reason}`);
      assert.ok(nodeA.store instanceof RedisBindingStore);
      assert.equal(await nodeA.store.redis.zcard('mn:mall'), 1, 'kept in the shared Redis');

      const received: string[] = [];
      later.events.onMessage = (_from, body) => received.push(body);
      later.register(push);
      await waitFor(() => received.length === 1, 3000, 'the kept message, from node B');
      assert.deepEqual(received, ['kept in Redis']);
      const redisClient = nodeA.store.redis;
      await waitFor(async () => (await redisClient.zcard('mn:mall')) === 0, 2000, 'the message to be gone');
    } finally {
      await Promise.all([first.close(), sender.close(), later.close()]);
    }
  });

  it('reg events across nodes: a subscriber at node A hears a plain device register and unregister at node B', async () => {
    const sub = new Subscriber(nodeA.port('udp'), 'yan');
    await sub.open();
    const device = new SipUserAgent({ user: 'yan', domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: nodeB.port('udp') }, instanceId: `urn:uuid:${randomUUID()}` });
    try {
      const ok = await sub.subscribe('sip:yan@127.0.0.1', { expires: 600 });
      assert.equal(ok.status, 200);
      assert.match((await sub.nextNotify(1)).body.toString(), /state="init"/);
      assert.ok(nodeA.store instanceof RedisBindingStore);
      const redisClient = nodeA.store.redis;
      await waitFor(async () => (await redisClient.hget('mn:regwatch', 'sip:yan@127.0.0.1')) === '1', 2000, 'the AOR watched in the cluster');

      assert.equal((await device.registerAsync(600)).status, 200);
      const registered = (await sub.nextNotify(2)).body.toString();
      assert.match(registered, /<registration [^>]*state="active">/);
      assert.match(registered, /state="active" event="registered"/);
      assert.equal((await device.registerAsync(0)).status, 200);
      assert.match((await sub.nextNotify(3)).body.toString(), /state="terminated" event="unregistered"/);

      assert.equal((await sub.subscribe('sip:yan@127.0.0.1', { expires: 0, toTag: ok.to.tag, requestUri: (ok.contacts as Array<{ uri: unknown }>)[0].uri!.toString() })).status, 200);
      await waitFor(async () => (await redisClient.hlen('mn:regwatch')) === 0, 2000, 'no AOR watched any more');
    } finally {
      sub.close();
      await device.close();
    }
  });

  // Stops node B: the tests after it use node A alone.
  it('once the node a desk phone registered through is gone, calls reach the phone directly', async () => {
    const desk = new SipUserAgent({ user: 'lou', domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: nodeB.port('udp') }, instanceId: `urn:uuid:${randomUUID()}`, autoAnswerMs: 20 });
    const caller = new SipUserAgent({ user: 'max', domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: nodeA.port('udp') }, instanceId: `urn:uuid:${randomUUID()}` });
    try {
      assert.equal((await desk.registerAsync(600)).status, 200);
      await nodeB.stop();
      // Node A reads the live nodes every 2 s; node B gave its claim up as it stopped.
      await waitFor(() => nodeA.proxy.nodeAlive?.('node-b', 0) === false, 6000, 'node A to see node B gone');
      const ok = await caller.call('sip:lou@127.0.0.1');
      assert.equal(ok.status, 200, `${ok.status} ${ok.reason}`);
      assert.equal(desk.received.filter((r) => r.method === 'INVITE').length, 1);
      assert.equal(desk.received.find((r) => r.method === 'INVITE')!.vias.length, 2, 'node A and the caller: not through node B');
    } finally {
      await Promise.all([desk.close(), caller.close()]);
    }
  });

  // Last: it takes the shared Redis away.
  it('while Redis is away a REGISTER gets 503 with Retry-After (the node stays up); once Redis is back, registrations work again', async () => {
    const ua = new SipUserAgent({ user: 'ivy', domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: nodeA.port('udp') }, instanceId: `urn:uuid:${randomUUID()}` });
    try {
      await redis.stop();
      const refused = await ua.registerAsync(600);
      assert.equal(refused.status, 503, `${refused.status} ${refused.reason}`);
      assert.equal(refused.reason, 'Binding store unavailable');
      assert.equal(refused.get('retry-after'), '5');
      assert.match(await nodeA.metrics.registry.getSingleMetricAsString('pushcall_store_unavailable_total'), /operation="register"} 1/);
      await redis.restart();
      let accepted = await ua.registerAsync(600);
      for (let i = 0; accepted.status !== 200 && i < 50; i++) {
        await new Promise((r) => setTimeout(r, 100));
        accepted = await ua.registerAsync(600);
      }
      assert.equal(accepted.status, 200, `${accepted.status} ${accepted.reason}`);
      assert.equal((await nodeA.store.lookup('sip:ivy@127.0.0.1', Date.now())).length, 1);
    } finally {
      await ua.close();
    }
  });
});
