/**
 * The embedded SQLite binding store: persistence across close/reopen, group commit (one
 * transaction per event-loop turn, `apply` resolving only after it), sweep, the push-token
 * index, typed errors, and a model-based property test against MemoryBindingStore.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { StoreError, isPushcallError } from '../../src/errors.js';
import { MemoryBindingStore } from '../../src/location/memory-store.js';
import { SqliteBindingStore } from '../../src/location/sqlite-store.js';
import type { Binding } from '../../src/location/types.js';
import { AORS, T0, TOKENS, binding, byId, exerciseTokenIndex, materialize, opArb, push, run, sorted } from '../helpers/bindings.js';

const dirs: string[] = [];
function tempFile(name = 'bindings.sqlite'): string {
  const dir = mkdtempSync(join(tmpdir(), 'pushcall-store-'));
  dirs.push(dir);
  return join(dir, 'nested', name);
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Rows committed to the file, read through a second connection. */
function rowsOnDisk(file: string): Array<{ id: string; aor: string; expires_at: number }> {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT id, aor, expires_at FROM bindings ORDER BY id').all() as Array<{ id: string; aor: string; expires_at: number }>;
  } finally {
    db.close();
  }
}

/** Count the transactions the store runs (wraps its private connection). */
function countTransactions(store: SqliteBindingStore): { count: number } {
  const counter = { count: 0 };
  const db = (store as unknown as { db: Database.Database }).db;
  const original = db.transaction.bind(db);
  db.transaction = ((fn: (...args: unknown[]) => unknown) => {
    const tx = original(fn);
    return (...args: unknown[]) => {
      counter.count++;
      return tx(...args);
    };
  }) as typeof db.transaction;
  return counter;
}

describe('SqliteBindingStore', () => {
  it('bindings survive close and reopen, every field intact (directory created)', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file);
    const full = binding('b1', 'sip:alice@example.com', {
      instanceId: '<urn:uuid:11111111-2222-3333-4444-555555555555>',
      regId: 1,
      q: 0.5,
      path: ['<sip:edge.example.com;lr>'],
      push: { provider: 'apns', prid: 'ab'.repeat(32), param: 'T.b.voip', environment: 'sandbox', alertPrid: 'cd'.repeat(32), form: 'flexisip-multi' },
      pnsreg: true,
      userAgent: 'Linphone/5.2 (iPhone)',
      flow: { protocol: 'tcp', remoteAddress: '2001:db8::1', remotePort: 40000, localAddress: '::1', localPort: 5060, connectionId: 'c-1', nodeId: 'n1' },
    });
    await store.apply(full.aor, { upsert: [full, binding('b2')], remove: [] });
    await store.apply('sip:bob@example.com', { upsert: [binding('b3', 'sip:bob@example.com')], remove: [] });
    await store.close();

    const reopened = new SqliteBindingStore(file);
    assert.deepEqual(await sorted(reopened), [full, binding('b2'), binding('b3', 'sip:bob@example.com')]);
    assert.deepEqual(await reopened.lookup('sip:bob@example.com', T0), [binding('b3', 'sip:bob@example.com')]);
    assert.deepEqual((await reopened.findByPushToken('apns', 'ab'.repeat(32))).map((b) => b.id), ['b1']);
    assert.deepEqual(await reopened.stats(), { bindings: 3, aors: 2, byProvider: { apns: 1, none: 2 } });
    await reopened.close();
  });

  it('close() is idempotent and apply() after close rejects with a StoreError', async () => {
    const store = new SqliteBindingStore(tempFile());
    await store.close();
    await store.close();
    await assert.rejects(store.apply('sip:a@x', { upsert: [binding('z', 'sip:a@x')], remove: [] }), StoreError);
  });

  it('group commit: many apply() calls in one tick share one transaction; each resolves after the commit', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file);
    const tx = countTransactions(store);
    const resolved: number[] = [];
    const promises = Array.from({ length: 200 }, (_, i) =>
      store.apply(`sip:u${i}@example.com`, { upsert: [binding(`b${i}`, `sip:u${i}@example.com`)], remove: [] }).then(() => {
        resolved.push(rowsOnDisk(file).length);
      }),
    );
    // Reads are served from memory at once; nothing is on disk before the turn ends.
    assert.equal((await store.lookup('sip:u7@example.com', T0)).length, 1);
    assert.equal(rowsOnDisk(file).length, 0);
    await Promise.all(promises);
    assert.equal(tx.count, 1, 'one transaction for the whole batch');
    assert.equal(resolved.length, 200);
    assert.ok(resolved.every((n) => n === 200), 'every apply resolved after its rows were committed');

    // The next turn is the next transaction.
    await store.apply('sip:u0@example.com', { upsert: [], remove: ['b0'] });
    assert.equal(tx.count, 2);
    assert.equal(rowsOnDisk(file).length, 199);
    await store.close();
  });

  it('upsert then remove (and remove then upsert) of one id in the same tick: the last one wins on disk', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file);
    await store.apply('sip:alice@example.com', { upsert: [binding('keep')], remove: [] });
    await Promise.all([
      store.apply('sip:alice@example.com', { upsert: [binding('gone')], remove: [] }),
      store.apply('sip:alice@example.com', { upsert: [], remove: ['gone', 'keep'] }),
      store.apply('sip:alice@example.com', { upsert: [binding('keep', 'sip:alice@example.com', { cseq: 9 })], remove: [] }),
    ]);
    assert.deepEqual(rowsOnDisk(file).map((r) => r.id), ['keep']);
    await store.close();
    const reopened = new SqliteBindingStore(file);
    assert.equal((await reopened.get('keep'))?.cseq, 9);
    await reopened.close();
  });

  it('sweep removes expired bindings, returns them, and persists the removal', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file);
    await store.apply('sip:alice@example.com', {
      upsert: [binding('old', 'sip:alice@example.com', { expiresAt: T0 + 1000, push: push('aa'.repeat(32)) }), binding('new', 'sip:alice@example.com', { expiresAt: T0 + 10_000 })],
      remove: [],
    });
    // Expired bindings are hidden from lookups before any sweep.
    assert.deepEqual((await store.lookup('sip:alice@example.com', T0 + 1000)).map((b) => b.id), ['new']);
    const expired = await store.sweep(T0 + 1000);
    assert.deepEqual(expired.map((b) => b.id), ['old']);
    assert.deepEqual(await store.findByPushToken('apns', 'aa'.repeat(32)), []);
    assert.deepEqual(rowsOnDisk(file).map((r) => r.id), ['new']);
    assert.deepEqual(await store.sweep(T0 + 1000), [], 'nothing left to sweep');
    await store.close();
    const reopened = new SqliteBindingStore(file);
    assert.deepEqual((await reopened.all()).map((b) => b.id), ['new']);
    await reopened.close();
  });

  it('a sweep and an apply that re-creates the swept id in the same tick agree in memory and on disk', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file);
    await store.apply('sip:alice@example.com', { upsert: [binding('x', 'sip:alice@example.com', { expiresAt: T0 + 1000 })], remove: [] });
    const sweep = store.sweep(T0 + 1000);
    const apply = store.apply('sip:alice@example.com', { upsert: [binding('x', 'sip:alice@example.com', { expiresAt: T0 + 60_000 })], remove: [] });
    await Promise.all([sweep, apply]);
    assert.equal((await store.get('x'))?.expiresAt, T0 + 60_000);
    assert.deepEqual(rowsOnDisk(file).map((r) => [r.id, r.expires_at]), [['x', T0 + 60_000]]);
    await store.close();
  });

  it('remove(id) persists; removing an unknown id is false', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file);
    await store.apply('sip:alice@example.com', { upsert: [binding('a'), binding('b')], remove: [] });
    assert.equal(await store.remove('a'), true);
    assert.equal(await store.remove('a'), false);
    assert.deepEqual(rowsOnDisk(file).map((r) => r.id), ['b']);
    await store.close();
  });

  it('findByPushToken stays consistent across upsert, replace (new token, same id), move to another AOR, and remove, and after a reopen', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file);
    const { t1, t2 } = await exerciseTokenIndex(store);
    await store.close();
    const reopened = new SqliteBindingStore(file);
    assert.deepEqual((await reopened.findByPushToken('apns', t2)).map((b) => b.id), ['a']);
    assert.deepEqual(await reopened.findByPushToken('apns', t1), []);
    await reopened.close();
  });

  it('findByPurr (RFC 8599 §6.2.3): every kept PURR finds its binding, across a rotation and a reopen; none after removal', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file);
    await store.apply('sip:alice@example.com', { upsert: [binding('a', 'sip:alice@example.com', { push: push('11'.repeat(32)), purrs: ['p1'], purrIssuedAt: T0 })], remove: [] });
    assert.equal((await store.findByPurr('p1'))?.id, 'a');
    await store.apply('sip:alice@example.com', { upsert: [binding('a', 'sip:alice@example.com', { push: push('11'.repeat(32)), purrs: ['p2', 'p1'], purrIssuedAt: T0 + 1 })], remove: [] });
    await store.close();
    const reopened = new SqliteBindingStore(file);
    assert.equal((await reopened.findByPurr('p1'))?.id, 'a');
    assert.equal((await reopened.findByPurr('p2'))?.id, 'a');
    assert.equal(await reopened.findByPurr('p3'), undefined);
    await reopened.remove('a');
    assert.equal(await reopened.findByPurr('p1'), undefined);
    assert.equal(await reopened.findByPurr('p2'), undefined);
    await reopened.close();
  });

  it('apply() rejects a binding of another AOR', async () => {
    const store = new SqliteBindingStore(tempFile());
    await assert.rejects(store.apply('sip:alice@example.com', { upsert: [binding('x', 'sip:bob@example.com')], remove: [] }));
    await store.close();
  });
});

describe('SqliteBindingStore errors are typed StoreErrors, not crashes', () => {
  function assertStoreError(fn: () => unknown, pattern: RegExp) {
    assert.throws(fn, (error: unknown) => {
      assert.ok(error instanceof StoreError, `StoreError, got ${String(error)}`);
      assert.ok(isPushcallError(error));
      assert.equal(error.code, 'PUSHCALL_ERR_STORE');
      assert.match(error.message, pattern);
      return true;
    });
  }

  it('a corrupt file', () => {
    const file = tempFile();
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, Buffer.alloc(8192, 'this is not a sqlite database '));
    assertStoreError(() => new SqliteBindingStore(file), /Cannot open binding store .*bindings\.sqlite/);
  });

  it('a corrupt row', () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file);
    void store.close();
    const db = new Database(file);
    db.prepare('INSERT INTO bindings (id, aor, expires_at, data) VALUES (?, ?, ?, ?)').run('x', 'sip:a@x', 0, '{not json');
    db.close();
    assertStoreError(() => new SqliteBindingStore(file), /Cannot open binding store/);
  });

  it('a path whose parent is a file (unwritable)', () => {
    const file = tempFile();
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(join(file, '..', 'plain-file'), 'x');
    assertStoreError(() => new SqliteBindingStore(join(file, '..', 'plain-file', 'bindings.sqlite')), /Cannot open binding store/);
  });

  it('a path that is a directory', () => {
    const file = tempFile();
    mkdirSync(file, { recursive: true });
    assertStoreError(() => new SqliteBindingStore(file), /Cannot open binding store/);
  });

  it('a file written by a newer schema', () => {
    const file = tempFile();
    void new SqliteBindingStore(file).close();
    const db = new Database(file);
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
    db.close();
    assertStoreError(() => new SqliteBindingStore(file), /newer pushcall \(schema 99\)/);
  });

  it('a failed commit puts memory back to what the disk has (upserts, refreshes, removals and sweeps of the group)', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file);
    const a = binding('a', 'sip:a@x', { push: push('aa'.repeat(32)) });
    const b = binding('b', 'sip:b@x');
    const old = binding('old', 'sip:c@x', { expiresAt: T0 + 1_000 });
    await store.apply('sip:a@x', { upsert: [a], remove: [] });
    await store.apply('sip:b@x', { upsert: [b], remove: [] });
    await store.apply('sip:c@x', { upsert: [old], remove: [] });
    const before = await sorted(store);
    // A disk that refuses writes (disk full, I/O error), simulated from a second connection.
    const other = new Database(file);
    for (const op of ['INSERT', 'UPDATE', 'DELETE']) other.exec(`CREATE TRIGGER fail_${op} BEFORE ${op} ON bindings BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    const results = await Promise.allSettled([
      store.apply('sip:a@x', { upsert: [{ ...a, cseq: 2, push: push('bb'.repeat(32)) }], remove: [] }),
      store.apply('sip:b@x', { upsert: [], remove: ['b'] }),
      store.apply('sip:n@x', { upsert: [binding('new', 'sip:n@x')], remove: [] }),
      store.sweep(T0 + 2_000),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected', 'rejected']);
    assert.deepEqual(await sorted(store), before, 'memory is what the disk has');
    assert.equal((await store.findByPushToken('apns', 'aa'.repeat(32)))[0]?.id, 'a');
    assert.deepEqual(await store.findByPushToken('apns', 'bb'.repeat(32)), []);
    assert.deepEqual((await store.lookup('sip:b@x', T0)).map((x) => x.id), ['b']);
    // The disk recovers: the same changes commit, and a reopen agrees with memory.
    for (const op of ['INSERT', 'UPDATE', 'DELETE']) other.exec(`DROP TRIGGER fail_${op}`);
    other.close();
    await store.apply('sip:b@x', { upsert: [], remove: ['b'] });
    await store.apply('sip:n@x', { upsert: [binding('new', 'sip:n@x')], remove: [] });
    const now = await sorted(store);
    assert.deepEqual(now.map((x) => x.id), ['a', 'new', 'old']);
    await store.close();
    const reopened = new SqliteBindingStore(file);
    assert.deepEqual(await sorted(reopened), now);
    await reopened.close();
  });

  it('a failed commit rejects every waiter of the batch with a StoreError', async () => {
    const store = new SqliteBindingStore(tempFile());
    (store as unknown as { db: Database.Database }).db.close();
    const results = await Promise.allSettled([
      store.apply('sip:a@x', { upsert: [binding('1', 'sip:a@x')], remove: [] }),
      store.apply('sip:b@x', { upsert: [binding('2', 'sip:b@x')], remove: [] }),
    ]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(r.status === 'rejected' && r.reason instanceof StoreError);
      assert.match((r as PromiseRejectedResult).reason.message, /binding store write failed/);
    }
  });
});

// Model-based property: random interleavings of apply/remove/sweep, several per tick, leave
// the SQLite store (after reopen) equal to a MemoryBindingStore fed the same operations.
describe('SqliteBindingStore vs MemoryBindingStore (property)', () => {
  it('random batches of apply/remove/sweep, several per tick, then reopen: equal to the model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }), async (batches) => {
        const file = tempFile();
        const model = new MemoryBindingStore();
        let store = new SqliteBindingStore(file);
        let seq = 0;
        for (const batch of batches) {
          const actions = batch.map((op) => materialize(op, seq++));
          // Every action of a batch starts in the same tick (one group commit), in the same
          // order on both stores.
          const a = actions.map((action) => run(model, action));
          const b = actions.map((action) => run(store, action));
          const [ra, rb] = [await Promise.all(a), await Promise.all(b)];
          assert.deepEqual(rb, ra, 'same results (remove booleans, swept bindings)');
        }
        await store.close();
        store = new SqliteBindingStore(file);
        try {
          assert.deepEqual(await sorted(store), await sorted(model));
          assert.deepEqual(await store.stats(), await model.stats());
          for (const aor of AORS) assert.deepEqual((await store.lookup(aor, T0 + 50_000)).sort(byId), (await model.lookup(aor, T0 + 50_000)).sort(byId));
          for (const token of TOKENS) {
            assert.deepEqual((await store.findByPushToken('apns', token)).sort(byId), (await model.findByPushToken('apns', token)).sort(byId));
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('SqliteBindingStore: schema 2 (rows by rowid, no write-only indexes)', () => {
  it('a refresh rewrites its row in place and a removal deletes it: one row per binding', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file);
    await store.apply('sip:a@x', { upsert: [binding('1', 'sip:a@x'), binding('2', 'sip:a@x')], remove: [] });
    for (let i = 1; i <= 5; i++) {
      await store.apply('sip:a@x', { upsert: [binding('1', 'sip:a@x', { cseq: 1 + i, expiresAt: T0 + 3_600_000 + i })], remove: [] });
    }
    await store.apply('sip:a@x', { upsert: [], remove: ['2'] });
    await store.apply('sip:b@x', { upsert: [binding('3', 'sip:b@x')], remove: [] });
    assert.deepEqual(rowsOnDisk(file).map((r) => [r.id, r.expires_at]), [['1', T0 + 3_600_005], ['3', T0 + 3_600_000]]);
    await store.close();
    const reopened = new SqliteBindingStore(file);
    assert.deepEqual((await sorted(reopened)).map((b) => [b.id, b.cseq]), [['1', 6], ['3', 1]]);
    // After a reopen the rows are still addressed: a refresh and a removal of loaded bindings.
    await reopened.apply('sip:a@x', { upsert: [binding('1', 'sip:a@x', { cseq: 7 })], remove: [] });
    await reopened.remove('3');
    assert.deepEqual(rowsOnDisk(file).map((r) => r.id), ['1']);
    await reopened.close();
    const db = new Database(file, { readonly: true });
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'bindings'").all();
    db.close();
    assert.deepEqual(indexes, [], 'no index on bindings: every read is served from memory');
  });

  it('a schema 1 file (id primary key, aor index) is migrated on open without losing a binding', async () => {
    const file = tempFile();
    mkdirSync(join(file, '..'), { recursive: true });
    const v1 = new Database(file);
    v1.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO meta (key, value) VALUES ('schema_version', '1');
      CREATE TABLE bindings (id TEXT PRIMARY KEY, aor TEXT NOT NULL, expires_at INTEGER NOT NULL, data TEXT NOT NULL);
      CREATE INDEX bindings_aor ON bindings(aor);
    `);
    const insert = v1.prepare('INSERT INTO bindings (id, aor, expires_at, data) VALUES (?, ?, ?, ?)');
    for (const b of [binding('1', 'sip:a@x', { push: push('aa11') }), binding('2', 'sip:a@x'), binding('3', 'sip:b@x')]) insert.run(b.id, b.aor, b.expiresAt, JSON.stringify(b));
    v1.close();

    const store = new SqliteBindingStore(file);
    assert.deepEqual((await sorted(store)).map((b) => b.id), ['1', '2', '3']);
    assert.deepEqual((await store.findByPushToken('apns', 'aa11')).map((b) => b.id), ['1']);
    await store.apply('sip:a@x', { upsert: [binding('2', 'sip:a@x', { cseq: 9 })], remove: ['1'] });
    await store.close();

    const db = new Database(file, { readonly: true });
    const version = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string };
    const columns = (db.prepare('PRAGMA table_info(bindings)').all() as Array<{ name: string }>).map((c) => c.name);
    db.close();
    assert.equal(version.value, '2');
    assert.deepEqual(columns, ['row', 'id', 'aor', 'expires_at', 'data']);
    const reopened = new SqliteBindingStore(file);
    assert.deepEqual((await sorted(reopened)).map((b) => [b.id, b.cseq]), [['2', 9], ['3', 1]]);
    await reopened.close();
  });
});

describe('WAL checkpoints', () => {
  /** WAL pages after which the store's own connection checkpoints inside a commit (0: never). */
  function writerCheckpointPages(store: SqliteBindingStore): unknown {
    return (store as unknown as { db: Database.Database }).db.pragma('wal_autocheckpoint', { simple: true });
  }

  /** Rows in the database file itself, without its WAL: a copy of the file alone, opened apart. */
  function rowsInMainFile(file: string): number {
    const copy = `${file}.copy-${Math.random().toString(36).slice(2)}`;
    writeFileSync(copy, readFileSync(file));
    try {
      const db = new Database(copy);
      try {
        return (db.prepare('SELECT count(*) AS n FROM bindings').get() as { n: number }).n;
      } finally {
        db.close();
      }
    } catch {
      return -1; // caught mid-checkpoint: try again
    } finally {
      rmSync(copy, { force: true });
      rmSync(`${copy}-wal`, { force: true });
      rmSync(`${copy}-shm`, { force: true });
    }
  }

  it('a thread of its own copies the WAL into the database file; the writer never checkpoints in its commits', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file, { checkpointIntervalMs: 20 });
    try {
      assert.equal(writerCheckpointPages(store), 0);
      for (let i = 0; i < 300; i++) await store.apply(`sip:u${i}@example.com`, { upsert: [binding(`b${i}`, `sip:u${i}@example.com`)], remove: [] });
      let rows = rowsInMainFile(file);
      for (const deadline = Date.now() + 5000; rows !== 300 && Date.now() < deadline; rows = rowsInMainFile(file)) await new Promise((r) => setTimeout(r, 20));
      assert.equal(rows, 300, 'every row reached the database file without the writer checkpointing');
      // The thread's report of it comes as a message, which may still be on its way.
      for (const deadline = Date.now() + 5000; store.checkpointedFrames === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
      assert.ok(store.checkpointedFrames > 0);
    } finally {
      await store.close();
    }
  });

  it('checkpointIntervalMs 0: no thread, the writer checkpoints inside its commits as before', async () => {
    const file = tempFile();
    const store = new SqliteBindingStore(file, { checkpointIntervalMs: 0 });
    try {
      assert.equal(writerCheckpointPages(store), 10_000);
      await store.apply('sip:u@example.com', { upsert: [binding('b1', 'sip:u@example.com')], remove: [] });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(store.checkpointedFrames, 0);
    } finally {
      await store.close();
    }
  });

  it('a checkpointer thread that dies: the writer checkpoints in its commits again, and says so', async () => {
    const errors: Error[] = [];
    const store = new SqliteBindingStore(tempFile(), { checkpointIntervalMs: 20, onCheckpointError: (e) => errors.push(e) });
    try {
      assert.equal(writerCheckpointPages(store), 0);
      await (store as unknown as { checkpointer: { terminate(): Promise<number> } }).checkpointer.terminate();
      for (const deadline = Date.now() + 3000; errors.length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof StoreError);
      assert.equal(writerCheckpointPages(store), 10_000);
      await store.apply('sip:u@example.com', { upsert: [binding('b1', 'sip:u@example.com')], remove: [] });
    } finally {
      await store.close();
    }
  });
});
