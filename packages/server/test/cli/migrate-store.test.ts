/**
 * `pushcall migrate-store` as a process: the bindings of a SQLite store file reach the Redis
 * store of a multi-node configuration, stamped with its node (expired ones left out, the
 * file unchanged); a configuration without a Redis store, or a file that does not exist,
 * fail with exit 2 and say so.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type RedisServerHandle, startRedisServer } from '@pushcall/testkit';
import { RedisBindingStore } from '../../src/location/redis-store.js';
import { SqliteBindingStore } from '../../src/location/sqlite-store.js';
import { binding, push } from '../helpers/bindings.js';
import { tempDir } from '../helpers/server.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

let redis: RedisServerHandle;
before(async () => {
  redis = await startRedisServer();
});
after(() => redis.stop());

function migrate(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN, 'migrate-store', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('migrate-store copies every current binding into Redis as the configured node; the SQLite file keeps them', async () => {
  const dir = tempDir();
  const file = join(dir, 'bindings.sqlite');
  const now = Date.now();
  const sqlite = new SqliteBindingStore(file);
  const tcp = { protocol: 'tcp' as const, remoteAddress: '192.0.2.10', remotePort: 40000, localAddress: '127.0.0.1', localPort: 5060, connectionId: 'tcp:3', nodeId: 'node-1' };
  await sqlite.apply('sip:alice@example.com', {
    upsert: [
      binding('a1', 'sip:alice@example.com', { expiresAt: now + 3_600_000, push: push('aa'.repeat(32)), flow: tcp }),
      binding('a2', 'sip:alice@example.com', { expiresAt: now + 3_600_000 }),
    ],
    remove: [],
  });
  await sqlite.apply('sip:bob@example.com', { upsert: [binding('b1', 'sip:bob@example.com', { expiresAt: now - 1000 })], remove: [] });
  await sqlite.close();
  const config = join(dir, 'cluster.yaml');
  writeFileSync(config, `node: { id: sip-a, uri: "sip:10.0.0.11:5060;transport=tcp" }\nstore: { type: redis, redis: { url: "${redis.url}", keyPrefix: "mig:" } }\nauth: { nonceSecret: shared-between-the-nodes-0123 }\n`);

  const result = migrate('--config', config, '--from', file);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /copied 2 bindings of 1 AORs .* as node sip-a; 1 expired ones left out/);

  const target = new RedisBindingStore({ url: redis.url, keyPrefix: 'mig:' });
  try {
    const copied = (await target.lookup('sip:alice@example.com', now)).sort((x, y) => x.id.localeCompare(y.id));
    assert.deepEqual(copied.map((b) => b.id), ['a1', 'a2']);
    // The connection stayed with the old process; the node is the configured one.
    assert.deepEqual(copied[0].flow, { protocol: 'tcp', remoteAddress: '192.0.2.10', remotePort: 40000, localAddress: '127.0.0.1', localPort: 5060, nodeId: 'sip-a', nodeUri: 'sip:10.0.0.11:5060;transport=tcp' });
    assert.equal(copied[0].push?.prid, 'aa'.repeat(32));
    assert.deepEqual((await target.findByPushToken('apns', 'aa'.repeat(32))).map((b) => b.id), ['a1']);
    assert.deepEqual(await target.lookup('sip:bob@example.com', 0), [], 'the expired binding stayed behind');
  } finally {
    await target.close();
  }
  const reopened = new SqliteBindingStore(file);
  assert.equal((await reopened.all()).length, 3, 'the source file is unchanged');
  await reopened.close();
});

test('migrate-store refuses a configuration without a Redis store, and a missing file, with exit 2', () => {
  const dir = tempDir();
  const sqliteConfig = join(dir, 'one-node.yaml');
  writeFileSync(sqliteConfig, 'store: { type: sqlite }\n');
  const wrongStore = migrate('--config', sqliteConfig, '--from', join(dir, 'x.sqlite'));
  assert.equal(wrongStore.status, 2);
  assert.match(wrongStore.stderr, /copies into a Redis store; .* has store.type sqlite/);

  const redisConfig = join(dir, 'cluster.yaml');
  writeFileSync(redisConfig, `node: { id: sip-a, uri: "sip:10.0.0.11:5060" }\nstore: { type: redis, redis: { url: "${redis.url}" } }\nauth: { nonceSecret: shared-between-the-nodes-0123 }\n`);
  const missing = migrate('--config', redisConfig, '--from', join(dir, 'nothing-here.sqlite'));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /nothing-here\.sqlite: no such SQLite store file/);
});
