/**
 * Bindings for the store tests, and the model-based property's operations: random
 * interleavings of apply/remove/sweep that a store must handle exactly as MemoryBindingStore
 * (the model) does.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Binding, BindingStore } from '../../src/location/types.js';

export const T0 = 1_700_000_000_000;

export function binding(id: string, aor = 'sip:alice@example.com', extra: Partial<Binding> = {}): Binding {
  return {
    id,
    aor,
    contact: `sip:${id}@192.0.2.10:5062`,
    callId: `call-${id}`,
    cseq: 1,
    expiresAt: T0 + 3_600_000,
    registeredAt: T0,
    updatedAt: T0,
    path: [],
    flow: { protocol: 'udp', remoteAddress: '192.0.2.10', remotePort: 5062, localAddress: '127.0.0.1', localPort: 5060, nodeId: 'n1' },
    pnsreg: false,
    ...extra,
  };
}

export function push(prid: string, provider = 'apns'): Binding['push'] {
  return { provider, prid, param: 'TEAM.com.example.voip', environment: 'production', form: 'rfc8599' };
}

export const byId = (a: Binding, b: Binding) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
export async function sorted(store: BindingStore): Promise<Binding[]> {
  return (await store.all()).sort(byId);
}

export type Op =
  | { kind: 'apply'; aor: number; upsert: Array<{ id: number; expires: number; token: number | null }>; remove: number[] }
  | { kind: 'remove'; id: number }
  | { kind: 'sweep'; at: number };

export const AORS = ['sip:a@x.test', 'sip:b@x.test', 'sip:c@x.test'];
export const TOKENS = ['aa'.repeat(32), 'bb'.repeat(32), 'cc'.repeat(32)];

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('apply' as const),
      aor: fc.nat({ max: AORS.length - 1 }),
      upsert: fc.array(fc.record({ id: fc.nat({ max: 9 }), expires: fc.integer({ min: 1, max: 100 }), token: fc.option(fc.nat({ max: TOKENS.length - 1 })) }), { maxLength: 3 }),
      remove: fc.array(fc.nat({ max: 9 }), { maxLength: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), id: fc.nat({ max: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweep' as const), at: fc.integer({ min: 0, max: 100 }) }) },
);

export type Action = { kind: 'apply'; aor: string; upsert: Binding[]; remove: string[] } | { kind: 'remove'; id: string } | { kind: 'sweep'; now: number };

/** Concrete operations (the same Binding values go to both stores). */
export function materialize(op: Op, seq: number): Action {
  switch (op.kind) {
    case 'apply': {
      const aor = AORS[op.aor];
      // The id space is shared by every AOR: a binding "moves" when re-upserted elsewhere.
      const upsert = op.upsert.map((u, i) =>
        binding(`id${u.id}`, aor, { expiresAt: T0 + u.expires * 1000, cseq: seq * 10 + i, ...(u.token === null ? {} : { push: push(TOKENS[u.token]) }) }),
      );
      return { kind: 'apply', aor, upsert, remove: op.remove.map((r) => `id${r}`) };
    }
    case 'remove':
      return { kind: 'remove', id: `id${op.id}` };
    case 'sweep':
      return { kind: 'sweep', now: T0 + op.at * 1000 };
  }
}

export function run(store: BindingStore, a: Action): Promise<unknown> {
  switch (a.kind) {
    case 'apply':
      return store.apply(a.aor, { upsert: a.upsert, remove: a.remove });
    case 'remove':
      return store.remove(a.id);
    case 'sweep':
      return store.sweep(a.now);
  }
}


/**
 * The push-token index through upsert, a replaced token (same id), a dropped push, another
 * provider's identical token, a move to another AOR and removal: what every store must keep
 * consistent. Leaves alice with `a` (token t2) and `b` (no push); t1 finds nothing.
 */
export async function exerciseTokenIndex(store: BindingStore): Promise<{ t1: string; t2: string }> {
  const t1 = '11'.repeat(32);
  const t2 = '22'.repeat(32);
  const ids = async (prid: string, provider = 'apns') => (await store.findByPushToken(provider, prid)).map((b) => b.id).sort();
  await store.apply('sip:alice@example.com', { upsert: [binding('a', 'sip:alice@example.com', { push: push(t1) }), binding('b', 'sip:alice@example.com', { push: push(t1) })], remove: [] });
  await store.apply('sip:bob@example.com', { upsert: [binding('c', 'sip:bob@example.com', { push: push(t1) })], remove: [] });
  assert.deepEqual(await ids(t1), ['a', 'b', 'c']);
  assert.deepEqual(await ids(t1, 'fcm'), [], 'the provider is part of the key');
  await store.apply('sip:dave@example.com', { upsert: [binding('d', 'sip:dave@example.com', { push: push(t1, 'fcm') })], remove: [] });
  assert.deepEqual(await ids(t1, 'fcm'), ['d'], 'the same token under another provider is another token');
  assert.deepEqual(await ids(t1), ['a', 'b', 'c']);
  await store.apply('sip:dave@example.com', { upsert: [], remove: ['d'] });
  // Same id, new token.
  await store.apply('sip:alice@example.com', { upsert: [binding('a', 'sip:alice@example.com', { push: push(t2) })], remove: [] });
  assert.deepEqual(await ids(t1), ['b', 'c']);
  assert.deepEqual(await ids(t2), ['a']);
  // Same id, push dropped.
  await store.apply('sip:alice@example.com', { upsert: [binding('b')], remove: [] });
  assert.deepEqual(await ids(t1), ['c']);
  // The same id registered under another AOR leaves the first one's list.
  await store.apply('sip:carol@example.com', { upsert: [binding('c', 'sip:carol@example.com', { push: push(t1) })], remove: [] });
  assert.deepEqual(await store.lookup('sip:bob@example.com', T0), []);
  assert.deepEqual((await store.lookup('sip:carol@example.com', T0)).map((b) => b.id), ['c']);
  await store.apply('sip:carol@example.com', { upsert: [], remove: ['c'] });
  assert.deepEqual(await ids(t1), []);
  return { t1, t2 };
}
