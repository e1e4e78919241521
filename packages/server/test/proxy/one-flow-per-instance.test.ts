/** RFC 5626 §5.3: one target per device, whatever number of flows it registered. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Binding } from '../../src/location/types.js';
import { deviceTargets } from '../../src/proxy/proxy.js';

function binding(id: string, instanceId: string | undefined, updatedAt: number, aor = 'sip:bob@example.com'): Binding {
  return {
    id,
    aor,
    contact: `sip:bob@192.0.2.10:${5000 + updatedAt}`,
    instanceId,
    regId: instanceId === undefined ? undefined : 1,
    callId: 'c',
    cseq: 1,
    expiresAt: 2_000_000_000_000,
    registeredAt: 1,
    updatedAt,
    path: [],
    flow: { protocol: 'udp', remoteAddress: '192.0.2.10', remotePort: 5000 + updatedAt, localAddress: '127.0.0.1', localPort: 5060, nodeId: 'n1' },
    pnsreg: false,
  };
}

describe('deviceTargets', () => {
  it('keeps the most recently refreshed flow of each instance, every binding without one, in lookup order', () => {
    const a1 = binding('a1', '<urn:uuid:a>', 10);
    const plain = binding('plain', undefined, 5);
    const a2 = binding('a2', '<urn:uuid:a>', 20);
    const b1 = binding('b1', '<urn:uuid:b>', 1);
    const plain2 = binding('plain2', undefined, 1);
    const targets = deviceTargets([a1, plain, a2, b1, plain2]);
    assert.deepEqual(targets.map((t) => t.binding.id), ['plain', 'a2', 'b1', 'plain2']);
    assert.deepEqual(targets.map((t) => t.spares.map((b) => b.id)), [[], ['a1'], [], []], 'the flow left out is the spare');
  });

  it('the same instance id under two AORs is two targets', () => {
    const bob = binding('bob', '<urn:uuid:a>', 1);
    const alice = binding('alice', '<urn:uuid:a>', 2, 'sip:alice@example.com');
    assert.deepEqual(deviceTargets([bob, alice]).map((t) => t.binding.id), ['bob', 'alice']);
  });
});
