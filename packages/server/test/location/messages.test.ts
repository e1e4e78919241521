/**
 * The offline-message stores (memory, SQLite, Redis against a real redis-server): one
 * contract, run against each; SQLite's messages outlive a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RedisServerHandle, startRedisServer } from '@pushcall/testkit';
import { Redis } from 'ioredis';
import { MemoryMessageStore, type MessageStore, RedisMessageStore, SqliteMessageStore, type StoredMessage } from '../../src/location/messages.js';

// Logical time a minute ahead of the clock: Redis expires keys in real time (PXAT), so nothing
// the test reads may expire while it runs; the stores' reads take `now` from the test.
const T0 = Date.now() + 60_000;
const HOUR = 3_600_000;
const SHORT = 10_000;

function message(id: string, aor: string, storedAt: number, devices: string[], ttl = HOUR): StoredMessage {
  // Every byte value survives: the request is kept as latin1 text.
  const body = `hello ${id} \u00e9\u00ff`;
  return { id, aor, storedAt, expiresAt: storedAt + ttl, devices, request: `MESSAGE sip:${aor.slice(4)} SIP/2.0\r\nContent-Length: ${body.length}\r\n\r\n${body}` };
}

function contract(name: string, open: () => Promise<MessageStore>): void {
  describe(`${name} message store`, () => {
    let store: MessageStore;
    before(async () => {
      store = await open();
    });
    after(async () => store.close());

    it('keeps messages per AOR, oldest first, up to the limit, and only current ones', async () => {
      assert.equal(await store.add(message('m2', 'sip:ann@x', T0 + 2, ['phone']), 3, T0), true);
      assert.equal(await store.add(message('m1', 'sip:ann@x', T0 + 1, ['phone', 'tablet']), 3, T0), true);
      assert.equal(await store.add(message('m3', 'sip:ann@x', T0 + 3, ['phone'], SHORT), 3, T0), true);
      assert.equal(await store.add(message('m4', 'sip:ann@x', T0 + 4, ['phone']), 3, T0), false, 'the AOR has its three');
      assert.equal(await store.add(message('b1', 'sip:bob@x', T0, ['pc']), 3, T0), true, 'another AOR has its own limit');
      assert.deepEqual((await store.forAor('sip:ann@x', T0 + 5)).map((m) => m.id), ['m1', 'm2', 'm3']);
      const [m1] = await store.forAor('sip:ann@x', T0 + 5);
      assert.deepEqual(m1, message('m1', 'sip:ann@x', T0 + 1, ['phone', 'tablet']), 'every field, every byte');
      // Once m3 expired it is gone from reads, and its room is free again.
      const later = T0 + SHORT + 10;
      assert.deepEqual((await store.forAor('sip:ann@x', later)).map((m) => m.id), ['m1', 'm2']);
      assert.equal(await store.count(later), 3);
      assert.equal(await store.add(message('m5', 'sip:ann@x', later + 1, ['phone']), 3, later + 1), true);
      assert.notEqual(store.mayHold?.('sip:ann@x'), false, 'never "no" for an AOR with messages');
    });

    it('a message goes once every device it was owed to has it', async () => {
      const now = T0 + SHORT + 30;
      const [m1] = await store.forAor('sip:ann@x', now);
      await store.delivered(m1, 'phone');
      const left = (await store.forAor('sip:ann@x', now)).find((m) => m.id === 'm1');
      assert.deepEqual(left?.devices, ['tablet']);
      await store.delivered(left!, 'tablet');
      assert.deepEqual((await store.forAor('sip:ann@x', now)).map((m) => m.id), ['m2', 'm5']);
    });

    it('sweeps what expired', async () => {
      assert.equal(await store.add(message('s1', 'sip:sam@x', T0, ['pc'], SHORT), 3, T0), true);
      const now = T0 + SHORT + 100;
      await store.sweep(now);
      assert.deepEqual(await store.forAor('sip:sam@x', now), []);
      assert.equal(await store.count(now), 3, 'm2, m5 and b1 are left');
    });
  });
}

contract('in-memory', async () => new MemoryMessageStore());

const dir = mkdtempSync(join(tmpdir(), 'pushcall-messages-'));
after(() => rmSync(dir, { recursive: true, force: true }));
contract('SQLite', async () => new SqliteMessageStore(join(dir, 'contract.sqlite')));

let redis: RedisServerHandle;
let client: Redis;
contract('Redis', async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url, { lazyConnect: false });
  return new RedisMessageStore(client, 'mt:');
});
after(async () => {
  client?.disconnect();
  await redis?.stop();
});

describe('SQLite message store across a restart', () => {
  it('messages written before a restart are read after it, with what they are owed', async () => {
    const file = join(dir, 'restart.sqlite');
    const first = new SqliteMessageStore(file);
    await first.add(message('r1', 'sip:rae@x', T0, ['phone', 'tablet']), 10, T0);
    const [r1] = await first.forAor('sip:rae@x', T0);
    await first.delivered(r1, 'phone');
    await first.close();
    const second = new SqliteMessageStore(file);
    assert.equal(second.mayHold('sip:rae@x'), true, 'known to hold one at open');
    assert.deepEqual(await second.forAor('sip:rae@x', T0), [{ ...message('r1', 'sip:rae@x', T0, ['tablet']) }]);
    await second.close();
  });
});

describe('Redis message store: which AORs have messages, known on every node without a read per REGISTER', () => {
  let server: RedisServerHandle;
  const clients: Redis[] = [];
  const stores: RedisMessageStore[] = [];
  before(async () => {
    server = await startRedisServer();
  });
  after(async () => {
    for (const s of stores) await s.close();
    for (const c of clients) c.disconnect();
    await server?.stop();
  });
  function node(): RedisMessageStore {
    const client = new Redis(server.url);
    clients.push(client);
    const store = new RedisMessageStore(client, 'mh:');
    stores.push(store);
    return store;
  }
  const synced = async (store: RedisMessageStore) => {
    for (let i = 0; i < 200 && store.mayHold('sip:nobody@x'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(store.mayHold('sip:nobody@x'), false, 'synced: answers from memory');
  };

  it('a message kept on one node is known on the others at once; a node started later reads it; the last delivery forgets the AOR', async () => {
    const a = node();
    const b = node();
    await synced(a);
    await synced(b);
    assert.equal(await a.add(message('x1', 'sip:zoe@x', T0, ['phone']), 5, T0), true);
    for (let i = 0; i < 100 && !b.mayHold('sip:zoe@x'); i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(b.mayHold('sip:zoe@x'), true, 'heard on the channel');
    const c = node();
    await synced(c);
    assert.equal(c.mayHold('sip:zoe@x'), true, 'read from maors at its start');

    const [x1] = await b.forAor('sip:zoe@x', T0);
    await b.delivered(x1, 'phone');
    const d = node();
    await synced(d);
    assert.equal(d.mayHold('sip:zoe@x'), false, 'gone from maors with its last message');
    assert.equal(await clients[0].scard('mh:maors'), 0);
  });
});
