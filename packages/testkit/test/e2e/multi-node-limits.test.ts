/**
 * The abuse limits across nodes: two pushcall nodes on one real redis-server, a sleeping
 * phone, a caller that spreads its push-triggering requests over both nodes. Each node's own
 * limit would let it through; the cluster's count does not.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { PushcallServer } from '@pushcall/server';
import { SipUserAgent } from '../../src/index.js';
import { type Cluster, startCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

describe('multi-node: the abuse limits count across the nodes', () => {
  const agents: SipUserAgent[] = [];

  let cluster: Cluster;
  const startNode = (id: string) =>
    cluster.startNode(id, { extra: { proxy: { offlineMessages: { acceptAfterSeconds: 0.2 } }, limits: { perCalleePerMinute: 2, perCallerPerMinute: 100 } } });

  const ua = (user: string, node: PushcallServer) => {
    const agent = new SipUserAgent({ user, domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: node.port('udp') }, instanceId: `urn:uuid:${randomUUID()}` });
    agents.push(agent);
    return agent;
  };

  before(async () => {
    cluster = await startCluster('ml:');
  });
  after(async () => {
    for (const a of agents) await a.close();
    await cluster?.close();
  });

  it('two messages to a sleeping user through node A and one through node B: the third gets 486 with Retry-After', async () => {
    const a = await startNode('lim-a');
    const b = await startNode('lim-b');
    const phone = ua('una', a);
    phone.register({ pnProvider: 'fcm', pnPrid: randomUUID().replaceAll('-', ''), pnParam: 'pushcall-lab' });
    await waitFor(() => phone.registered, 3000, 'una registered');
    await phone.sleep();

    const viaA = ua('vic', a);
    const viaB = ua('vic', b);
    assert.equal((await viaA.message('sip:una@127.0.0.1', 'one')).status, 202);
    assert.equal((await viaB.message('sip:una@127.0.0.1', 'two')).status, 202);
    // Node A has seen one of these: its own limit (2) would let this through.
    const third = await viaA.message('sip:una@127.0.0.1', 'three');
    assert.equal(third.status, 486, `${third.status} ${third.reason}`);
    assert.equal(third.reason, 'Too many calls to this user');
    const retryAfter = Number(third.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal(a.timelines.list(10).find((t) => t.callId === third.callId)?.outcome, 'refused');
  });
});
