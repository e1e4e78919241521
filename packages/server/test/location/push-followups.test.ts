/**
 * Push follow-ups act on the binding as it is now, not on the copy taken when the push
 * started: the device may have registered again (same id, new contact, rotated token)
 * while the push was in flight.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBindingStore } from '../../src/location/memory-store.js';
import { removeIfTokenUnchanged, setPushEnvironment } from '../../src/location/push-followups.js';
import type { Binding } from '../../src/location/types.js';

const AOR = 'sip:bob@example.com';
const OLD = 'aa'.repeat(32);
const NEW = 'bb'.repeat(32);

function binding(prid: string, port: number, environment?: 'production' | 'sandbox'): Binding {
  return {
    id: 'b1',
    aor: AOR,
    contact: `sip:bob@192.0.2.10:${port}`,
    callId: 'c1',
    cseq: 1,
    expiresAt: 2_000_000_000_000,
    registeredAt: 1,
    updatedAt: 1,
    path: [],
    flow: { protocol: 'udp', remoteAddress: '192.0.2.10', remotePort: port, localAddress: '127.0.0.1', localPort: 5060, nodeId: 'n1' },
    push: { provider: 'apns', prid, param: 'TEAM.com.example.voip', environment, form: 'rfc8599' },
    pnsreg: false,
  };
}

describe('push follow-ups', () => {
  it('a 410 for the pushed token removes the binding while it still carries that token', async () => {
    const store = new MemoryBindingStore();
    const pushed = binding(OLD, 5062);
    await store.apply(AOR, { upsert: [pushed], remove: [] });
    assert.equal(await removeIfTokenUnchanged(store, pushed), true);
    assert.equal(await store.get('b1'), undefined);
  });

  it('a late 410 for the old token leaves the registration the device made with a rotated one', async () => {
    const store = new MemoryBindingStore();
    const pushed = binding(OLD, 5062);
    await store.apply(AOR, { upsert: [pushed], remove: [] });
    const renewed = binding(NEW, 6000);
    await store.apply(AOR, { upsert: [renewed], remove: [] });
    assert.equal(await removeIfTokenUnchanged(store, pushed), false);
    assert.deepEqual(await store.get('b1'), renewed);
  });

  it('the APNs environment is recorded on the current binding, keeping its new contact and expiry', async () => {
    const store = new MemoryBindingStore();
    const pushed = binding(OLD, 5062);
    await store.apply(AOR, { upsert: [pushed], remove: [] });
    const refreshed = { ...binding(OLD, 6000), expiresAt: 2_000_000_999_000 };
    await store.apply(AOR, { upsert: [refreshed], remove: [] });
    assert.equal(await setPushEnvironment(store, pushed, 'sandbox'), true);
    const now = await store.get('b1');
    assert.equal(now?.contact, 'sip:bob@192.0.2.10:6000');
    assert.equal(now?.expiresAt, 2_000_000_999_000);
    assert.equal(now?.push?.environment, 'sandbox');
  });

  it('no environment change for a binding whose token rotated or which is gone', async () => {
    const store = new MemoryBindingStore();
    const pushed = binding(OLD, 5062);
    await store.apply(AOR, { upsert: [binding(NEW, 6000)], remove: [] });
    assert.equal(await setPushEnvironment(store, pushed, 'sandbox'), false);
    assert.equal((await store.get('b1'))?.push?.environment, undefined);
    await store.remove('b1');
    assert.equal(await setPushEnvironment(store, pushed, 'sandbox'), false);
    assert.equal(await store.get('b1'), undefined);
  });
});
