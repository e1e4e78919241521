/** The Request Push Bucket (RFC 8599 §5.2) releases a held branch only for its own device. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Binding } from '../../src/location/types.js';
import { type WakeWaiter, WakeRegistry } from '../../src/proxy/wake.js';

const TOKEN = 'ab'.repeat(32);

function binding(id: string, aor: string, instanceId?: string): Binding {
  return {
    id,
    aor,
    contact: `sip:x@192.0.2.10:5062`,
    instanceId,
    callId: 'c',
    cseq: 1,
    expiresAt: 2_000_000_000_000,
    registeredAt: 1,
    updatedAt: 1,
    path: [],
    flow: { protocol: 'udp', remoteAddress: '192.0.2.10', remotePort: 5062, localAddress: '127.0.0.1', localPort: 5060, nodeId: 'n1' },
    push: { provider: 'apns', prid: TOKEN, param: 'TEAM.com.example.voip', form: 'rfc8599' },
    pnsreg: false,
  };
}

function waiter(b: Binding, woken: Binding[]): WakeWaiter {
  return { binding: b, wake: (by) => woken.push(by) };
}

describe('WakeRegistry', () => {
  it("another user's REGISTER with the same push token does not release the held branch", () => {
    const registry = new WakeRegistry();
    const woken: Binding[] = [];
    registry.add(waiter(binding('bob-1', 'sip:bob@example.com'), woken));
    assert.equal(registry.registered(binding('mallory-1', 'sip:mallory@example.com')), 0);
    assert.deepEqual(woken, []);
    assert.equal(registry.size, 1);
  });

  it('the same user registering with the same token under a new id and instance releases it (reinstall)', () => {
    const registry = new WakeRegistry();
    const woken: Binding[] = [];
    registry.add(waiter(binding('bob-1', 'sip:bob@example.com', '<urn:uuid:1>'), woken));
    const reinstalled = binding('bob-2', 'sip:bob@example.com', '<urn:uuid:2>');
    assert.equal(registry.registered(reinstalled), 1);
    assert.deepEqual(woken, [reinstalled]);
    assert.equal(registry.size, 0);
    assert.equal(registry.countForAor('sip:bob@example.com'), 0);
  });

  it('tells its watcher when an AOR gets its first held branch and when its last one goes (multi-node subscriptions)', () => {
    const registry = new WakeRegistry();
    const told: string[] = [];
    registry.watcher = { watch: (aor) => told.push(`watch ${aor}`), unwatch: (aor) => told.push(`unwatch ${aor}`) };
    const woken: Binding[] = [];
    const first = waiter(binding('bob-1', 'sip:bob@example.com'), woken);
    const second = waiter(binding('bob-2', 'sip:bob@example.com', '<urn:uuid:2>'), woken);
    registry.add(first);
    registry.add(second);
    registry.add(waiter(binding('carol-1', 'sip:carol@example.com'), woken));
    assert.deepEqual(told, ['watch sip:bob@example.com', 'watch sip:carol@example.com']);
    registry.remove(first);
    assert.equal(told.length, 2, 'bob still has a held branch');
    registry.registered(binding('bob-2', 'sip:bob@example.com', '<urn:uuid:2>'));
    assert.deepEqual(told.slice(2), ['unwatch sip:bob@example.com']);
  });
});
