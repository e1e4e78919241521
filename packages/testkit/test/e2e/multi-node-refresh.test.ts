/**
 * Refresh pushes (RFC 8599 §5.5) when the node a phone registered through is gone: two
 * pushcall nodes on one real redis-server, a simulated Android phone that registers through
 * node B and sleeps, node B stopped (or a node that crashed, its claim expired). The live
 * node with the lowest id adopts the gone node's bindings and pushes them before they expire,
 * until that node is back or its bindings are gone. Lifetimes are seconds here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type PushcallServer, RedisBindingStore } from '@pushcall/server';
import { type FleetEmulators, SimulatedPhone } from '../../src/index.js';
import { type Cluster, startCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

const fcmType = (payload: unknown) => (payload as { type?: string } | undefined)?.type;

describe('multi-node: the refresh pushes of a node that is gone', () => {
  let emulators: FleetEmulators;
  let nodeA: PushcallServer;
  let nodeB: PushcallServer | undefined;
  const phones: SimulatedPhone[] = [];

  let cluster: Cluster;
  const startNode = (id: string) =>
    cluster.startNode(id, { extra: { registrar: { minPushExpires: 4 }, proxy: { refreshPush: { leadSeconds: 2, retries: 1, retryIntervalSeconds: 1 } } } });

  const adoptedBy = async (node: PushcallServer) => ((await node.summary()).cluster as { adopted: string[] }).adopted;

  before(async () => {
    cluster = await startCluster('rf:');
    emulators = cluster.emulators;
    nodeA = await startNode('node-a');
    nodeB = await startNode('node-b');
  });
  after(async () => {
    for (const p of phones) await p.close();
    await cluster?.close();
  });

  it('node B stops: node A pushes the phone that registered through B before its binding expires, and stops once B is back', async () => {
    const phone = new SimulatedPhone({
      name: 'pixel-b',
      platform: 'android',
      user: 'oli',
      domain: '127.0.0.1',
      server: { protocol: 'udp', address: '127.0.0.1', port: nodeB!.port('udp') },
      fcm: emulators.fcm,
      launchDelayMs: 50,
      registerExpires: 9,
    });
    phones.push(phone);
    await phone.start();
    await phone.sleep();
    const [binding] = await nodeA.store.lookup('sip:oli@127.0.0.1', Date.now());
    assert.equal(binding.flow.nodeId, 'node-b');
    assert.deepEqual(await adoptedBy(nodeA), []);

    const stoppedAt = Date.now();
    await nodeB!.stop();
    nodeB = undefined;
    // Node A reads the nodes every 2 s; node B put its id in the orphans as it stopped.
    await waitFor(async () => (await adoptedBy(nodeA)).includes('node-b'), 5000, 'node A to adopt node B');
    await waitFor(() => emulators.fcm.received.some((m) => m.token === phone.token && fcmType(m.payload) === 'refresh'), 9000, 'the refresh push, from node A');
    const push = emulators.fcm.received.find((m) => m.token === phone.token && fcmType(m.payload) === 'refresh')!;
    assert.ok(push.receivedAt > stoppedAt, 'sent after node B was gone');
    const lead = binding.expiresAt - push.receivedAt;
    assert.ok(lead > 0 && lead <= 2100, `pushed ${lead} ms before expiry (lead 2 s)`);
    assert.match(await nodeA.metrics.registry.getSingleMetricAsString('pushcall_refresh_pushes_total'), /provider="fcm",outcome="ok"\} [1-9]/);

    // A node with B's id is back: its bindings are its own again.
    nodeB = await startNode('node-b');
    await waitFor(async () => (await adoptedBy(nodeA)).length === 0, 5000, 'node A to release node B');
    assert.ok(nodeA.store instanceof RedisBindingStore);
    assert.deepEqual(await nodeA.store.redis.smembers('rf:orphans'), []);
  });

  it('a node that crashed (its claim expired, its bindings left) is adopted, and forgotten once it has no binding left', async () => {
    assert.ok(nodeA.store instanceof RedisBindingStore);
    const redisClient = nodeA.store.redis;
    // What a crashed node leaves: its id in the node set without a live claim, and bindings
    // indexed under it (an index entry is enough to count as one).
    await redisClient.sadd('rf:nodes', 'node-crashed');
    await redisClient.sadd('rf:nb:node-crashed', 'binding-left-behind');
    await waitFor(async () => (await adoptedBy(nodeA)).includes('node-crashed'), 5000, 'node A to adopt the crashed node');
    assert.deepEqual(await redisClient.smembers('rf:orphans'), ['node-crashed']);
    assert.equal(await redisClient.sismember('rf:nodes', 'node-crashed'), 0, 'no longer listed as a node');

    await redisClient.del('rf:nb:node-crashed');
    await waitFor(async () => (await adoptedBy(nodeA)).length === 0, 5000, 'node A to forget the crashed node');
    assert.deepEqual(await redisClient.smembers('rf:orphans'), []);
  });
});
