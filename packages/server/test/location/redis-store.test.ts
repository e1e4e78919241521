/**
 * The Redis binding store against a real redis-server on loopback: what one node writes
 * another reads (two store instances, two connections), the indexes stay consistent across
 * replace, move and removal, sweep, stats, a model-based property against
 * MemoryBindingStore, and typed errors (not hangs, not crashes) while Redis is away.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RedisServerHandle, startRedisSentinel, startRedisServer } from '@pushcall/testkit';
import { Redis } from 'ioredis';
import fc from 'fast-check';
import { StoreError } from '../../src/errors.js';
import { MemoryBindingStore } from '../../src/location/memory-store.js';
import { RedisBindingStore } from '../../src/location/redis-store.js';
import { AORS, T0, TOKENS, binding, byId, exerciseTokenIndex, materialize, opArb, push, run, sorted } from '../helpers/bindings.js';

let redis: RedisServerHandle;
const stores: RedisBindingStore[] = [];
let prefixes = 0;

before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await redis.stop();
});

/** A store on its own key prefix (a fresh, empty store), or on `prefix` to share one. */
function open(prefix = `t${++prefixes}:`): RedisBindingStore {
  const store = new RedisBindingStore({ url: redis.url, keyPrefix: prefix });
  stores.push(store);
  return store;
}

describe('RedisBindingStore', () => {
  it('a binding written by one node is read, every field intact, by another', async () => {
    const nodeA = open('shared1:');
    const nodeB = open('shared1:');
    const full = binding('a', 'sip:alice@example.com', {
      instanceId: '<urn:uuid:00000000-0000-4000-8000-000000000001>',
      regId: 1,
      q: 0.5,
      path: ['<sip:edge.example.com;lr>'],
      flow: { protocol: 'tcp', remoteAddress: '192.0.2.10', remotePort: 40000, localAddress: '127.0.0.1', localPort: 5060, connectionId: 'tcp:7', nodeId: 'node-a', nodeUri: 'sip:127.0.0.1:5070;transport=tcp' },
      push: { ...push('ab'.repeat(32))!, alertPrid: 'cd'.repeat(32), environment: 'sandbox', environmentDeclared: true, form: 'flexisip-multi' },
      pnsreg: true,
      purrs: ['purr-2', 'purr-1'],
      purrIssuedAt: T0 + 5,
      userAgent: 'Linphone/5.2 "quoted" \\ and ünïcode',
    });
    await nodeA.apply('sip:alice@example.com', { upsert: [full, binding('b')], remove: [] });
    assert.deepEqual(await nodeB.get('a'), full);
    assert.deepEqual((await nodeB.lookup('sip:alice@example.com', T0)).sort(byId), [full, binding('b')]);
    assert.deepEqual((await nodeB.findByPushToken('apns', 'ab'.repeat(32))).map((b) => b.id), ['a']);
    assert.equal((await nodeB.findByPurr('purr-1'))?.id, 'a');
    assert.deepEqual(await nodeB.stats(), { bindings: 2, aors: 1, byProvider: { apns: 1, none: 1 } });
    assert.equal(await nodeB.get('missing'), undefined);
  });

  it('lookup hides expired bindings before any sweep; sweep removes them, index entries included, and returns them', async () => {
    const store = open();
    await store.apply('sip:alice@example.com', {
      upsert: [binding('old', 'sip:alice@example.com', { expiresAt: T0 + 1000, push: push('aa'.repeat(32)), purrs: ['p-old'] }), binding('new', 'sip:alice@example.com', { expiresAt: T0 + 10_000 })],
      remove: [],
    });
    assert.deepEqual((await store.lookup('sip:alice@example.com', T0 + 1000)).map((b) => b.id), ['new']);
    assert.deepEqual((await store.sweep(T0 + 1000)).map((b) => b.id), ['old']);
    assert.deepEqual(await store.findByPushToken('apns', 'aa'.repeat(32)), []);
    assert.equal(await store.findByPurr('p-old'), undefined);
    assert.deepEqual(await store.sweep(T0 + 1000), [], 'nothing left to sweep');
    assert.deepEqual(await store.stats(), { bindings: 1, aors: 1, byProvider: { none: 1 } });
    assert.deepEqual((await store.sweep(T0 + 10_000)).map((b) => b.id), ['new']);
    assert.deepEqual(await store.stats(), { bindings: 0, aors: 0, byProvider: {} });
  });

  it('sweeps a backlog larger than one script run', async () => {
    const store = open();
    const many = Array.from({ length: 1203 }, (_, i) => binding(`x${i}`, `sip:u${i % 50}@example.com`, { expiresAt: T0 + 1000 }));
    for (let u = 0; u < 50; u++) {
      const aor = `sip:u${u}@example.com`;
      await store.apply(aor, { upsert: many.filter((b) => b.aor === aor), remove: [] });
    }
    assert.equal((await store.sweep(T0 + 2000)).length, 1203);
    assert.deepEqual(await store.stats(), { bindings: 0, aors: 0, byProvider: {} });
  });

  it('findByPushToken stays consistent across upsert, replace (new token, same id), move to another AOR, and remove', async () => {
    const store = open();
    await exerciseTokenIndex(store);
    assert.equal(await store.remove('c'), false, 'removed already');
    assert.deepEqual(await store.stats(), { bindings: 2, aors: 1, byProvider: { apns: 1, none: 1 } });
  });

  it('forNode: the bindings registered through one node, following re-registrations through another, removals and sweeps', async () => {
    const store = open();
    const through = (nodeId: string) => ({ protocol: 'udp' as const, remoteAddress: '192.0.2.10', remotePort: 5062, localAddress: '127.0.0.1', localPort: 5060, nodeId });
    const ids = async (nodeId: string) => (await store.forNode(nodeId)).map((b) => b.id).sort();
    await store.apply('sip:alice@example.com', { upsert: [binding('a1', 'sip:alice@example.com', { flow: through('node-a') }), binding('a2', 'sip:alice@example.com', { flow: through('node-b'), expiresAt: T0 + 1000 })], remove: [] });
    await store.apply('sip:bob@example.com', { upsert: [binding('b1', 'sip:bob@example.com', { flow: through('node-a') })], remove: [] });
    assert.deepEqual(await ids('node-a'), ['a1', 'b1']);
    assert.deepEqual(await ids('node-b'), ['a2']);
    // b1 registers again through node B.
    await store.apply('sip:bob@example.com', { upsert: [binding('b1', 'sip:bob@example.com', { flow: through('node-b') })], remove: [] });
    assert.deepEqual(await ids('node-a'), ['a1']);
    assert.deepEqual(await ids('node-b'), ['a2', 'b1']);
    await store.sweep(T0 + 1000);
    await store.remove('a1');
    assert.deepEqual(await ids('node-a'), []);
    assert.deepEqual(await ids('node-b'), ['b1']);
    // More than one SSCAN page.
    const many = Array.from({ length: 2500 }, (_, i) => binding(`m${i}`, `sip:m${i}@example.com`, { flow: through('node-c') }));
    await Promise.all(many.map((b) => store.apply(b.aor, { upsert: [b], remove: [] })));
    assert.equal((await store.forNode('node-c')).length, 2500);
  });

  it('a PURR found after a rotation; none after removal', async () => {
    const store = open();
    await store.apply('sip:alice@example.com', { upsert: [binding('a', 'sip:alice@example.com', { purrs: ['p1'], purrIssuedAt: T0 })], remove: [] });
    await store.apply('sip:alice@example.com', { upsert: [binding('a', 'sip:alice@example.com', { purrs: ['p2', 'p1'], purrIssuedAt: T0 + 1 })], remove: [] });
    assert.equal((await store.findByPurr('p1'))?.id, 'a');
    assert.equal((await store.findByPurr('p2'))?.id, 'a');
    await store.apply('sip:alice@example.com', { upsert: [], remove: ['a'] });
    assert.equal(await store.findByPurr('p1'), undefined);
  });

  it('apply() rejects a binding of another AOR and changes nothing', async () => {
    const store = open();
    await assert.rejects(store.apply('sip:alice@example.com', { upsert: [binding('ok'), binding('x', 'sip:bob@example.com')], remove: [] }));
    assert.deepEqual(await store.all(), []);
  });
});

describe('RedisBindingStore vs MemoryBindingStore (property)', () => {
  it('random batches of apply/remove/sweep, several at once, leave both equal', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }), async (batches) => {
        const model = new MemoryBindingStore();
        const store = open();
        let seq = 0;
        for (const batch of batches) {
          const actions = batch.map((op) => materialize(op, seq++));
          // Issued together (one pipeline to Redis), in the same order on both stores.
          const results = await Promise.all(actions.map((action) => run(store, action)));
          const expected = await Promise.all(actions.map((action) => run(model, action)));
          const normalise = (r: unknown) => (Array.isArray(r) ? [...r].sort(byId) : r);
          assert.deepEqual(results.map(normalise), expected.map(normalise), 'same results (remove booleans, swept bindings)');
        }
        assert.deepEqual(await sorted(store), await sorted(model));
        assert.deepEqual(await store.stats(), await model.stats());
        for (const aor of AORS) assert.deepEqual((await store.lookup(aor, T0 + 50_000)).sort(byId), (await model.lookup(aor, T0 + 50_000)).sort(byId));
        for (const token of TOKENS) assert.deepEqual((await store.findByPushToken('apns', token)).sort(byId), (await model.findByPushToken('apns', token)).sort(byId));
      }),
      { numRuns: 60 },
    );
  });
});

describe('RedisBindingStore while Redis is away', () => {
  it('operations fail with a typed StoreError within the command timeout, and work again once Redis is back', async () => {
    const own = await startRedisServer();
    const store = new RedisBindingStore({ url: own.url, keyPrefix: 'away:', commandTimeoutMs: 500 });
    try {
      await store.ready();
      await store.apply('sip:alice@example.com', { upsert: [binding('a')], remove: [] });
      await own.stop();
      const started = Date.now();
      await assert.rejects(store.apply('sip:alice@example.com', { upsert: [binding('b')], remove: [] }), (error: unknown) => {
        assert.ok(error instanceof StoreError, String(error));
        assert.equal(error.code, 'PUSHCALL_ERR_STORE');
        return true;
      });
      await assert.rejects(store.lookup('sip:alice@example.com', T0), StoreError);
      assert.ok(Date.now() - started < 5000, `failed in ${Date.now() - started} ms, not after a hang`);
      await own.restart();
      // Nothing was persisted by that redis-server: the store starts empty and is usable again.
      for (let i = 0; ; i++) {
        try {
          await store.apply('sip:alice@example.com', { upsert: [binding('c')], remove: [] });
          break;
        } catch (error) {
          if (i > 50) throw error;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.deepEqual((await store.lookup('sip:alice@example.com', T0)).map((b) => b.id), ['c']);
    } finally {
      await store.close();
      await own.stop();
    }
  });

  it('ready() rejects with a StoreError when nothing listens at the URL', async () => {
    const own = await startRedisServer();
    await own.stop();
    const store = new RedisBindingStore({ url: own.url, commandTimeoutMs: 300 });
    try {
      await assert.rejects(store.ready(), StoreError);
    } finally {
      await store.close();
    }
  });
});

describe('RedisBindingStore through Redis Sentinel', () => {
  it('finds the primary through the Sentinel, and after the primary dies goes on with the promoted replica, bindings included', async () => {
    const primary = await startRedisServer();
    const replica = await startRedisServer({ replicaOf: primary.port });
    const direct = new Redis(replica.url, { lazyConnect: true });
    let sentinel: RedisServerHandle | undefined;
    let store: RedisBindingStore | undefined;
    try {
      await direct.connect();
      await waitUntil(async () => /master_link_status:up/.test(await direct.info('replication')), 'the replica in sync');
      // Started after the replica is attached: it learns of the replica from the primary at once.
      sentinel = await startRedisSentinel({ primaryPort: primary.port, masterName: 'pushcall' });
      store = new RedisBindingStore({ url: 'redis://unused:1', sentinels: [{ host: '127.0.0.1', port: sentinel.port }], masterName: 'pushcall', keyPrefix: 'ha:', commandTimeoutMs: 1000 });
      await store.ready();
      await store.apply('sip:alice@example.com', { upsert: [binding('before')], remove: [] });
      await waitUntil(async () => (await direct.get('ha:b:before')) !== null, 'the binding replicated');

      await primary.stop();
      // Sentinel sees the primary down after 1 s and promotes the replica; the store follows.
      await waitUntil(async () => {
        try {
          await store!.apply('sip:alice@example.com', { upsert: [binding('after')], remove: [] });
          return true;
        } catch (error) {
          assert.ok(error instanceof StoreError, String(error));
          return false;
        }
      }, 'a write after the failover', 30_000);
      assert.match(await direct.info('replication'), /role:master/, 'the replica was promoted');
      assert.deepEqual((await store.lookup('sip:alice@example.com', T0)).map((b) => b.id).sort(), ['after', 'before']);
    } finally {
      await store?.close();
      direct.disconnect();
      await sentinel?.stop();
      await replica.stop();
      await primary.stop();
    }
  });
});

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
