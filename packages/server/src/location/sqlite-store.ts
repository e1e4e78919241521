/**
 * The embedded binding store: SQLite (better-sqlite3 12, WAL) with group commit.
 *
 * Reads are served from memory (every binding is loaded at open). Writes are queued and
 * committed together in one transaction at the end of the current event-loop turn; each
 * `apply()` resolves only after its transaction committed, so a 200 OK is never sent for
 * a binding that is not on disk. Under load, thousands of REGISTERs share one commit.
 */

import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { StoreError } from '../errors.js';
import { encodeBinding } from './binding-json.js';
import { MemoryBindingStore, checkAor } from './memory-store.js';
import type { Binding } from './types.js';

/**
 * 2: rows are addressed by SQLite's rowid, which pushcall keeps in memory per binding, and
 * the table has no other index. Every read comes from memory, so an index on the binding id
 * or the AOR was only written, never read: with both, storing a row cost 25-27 µs of CPU;
 * appended by rowid it costs ~7 µs (random ids and AORs, 200,000 rows, group commits of 20).
 * 1: `id TEXT PRIMARY KEY` and an index on `aor` (migrated on open).
 */
const SCHEMA_VERSION = 2;

const CREATE_BINDINGS = `
  CREATE TABLE bindings (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    aor TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    data TEXT NOT NULL
  )`;

/** WAL pages after which the writer checkpoints in its own commit (when no checkpointer thread runs). */
const INLINE_AUTOCHECKPOINT_PAGES = 10_000;

/**
 * The checkpointer thread (CommonJS, evaluated): every `intervalMs` it copies the WAL into
 * the database file on its own connection. PASSIVE never waits for, nor blocks, the writer.
 * It reports the frames it copied, and any error.
 */
const CHECKPOINTER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: 0 });
setInterval(() => {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    if (result.checkpointed > 0) parentPort.postMessage({ checkpointed: result.checkpointed });
  } catch (error) {
    parentPort.postMessage({ error: String((error && error.message) || error) });
  }
}, workerData.intervalMs);
`;

/**
 * A SQLite file (its directory made) in WAL mode with `synchronous = NORMAL`: a committed
 * transaction survives a process crash; only an OS crash can lose the last commits. FULL
 * would fsync every batch.
 */
export function openWalDatabase(file: string): Database.Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

/** Stop a checkpointer thread whose events no longer matter (an unheard 'error' would throw). */
function retire(worker: Worker): Promise<number> {
  worker.removeAllListeners();
  worker.on('error', () => undefined);
  return worker.terminate();
}

interface PendingWrite {
  upsert: Map<string, Binding>;
  remove: Set<string>;
  /**
   * What memory held for every id this group touched, before its first change (null: no
   * binding). Memory changes at once and the disk at the commit; a failed commit puts
   * these back, so that memory never shows a binding the disk does not have (a retransmitted
   * REGISTER would otherwise get a 200 for it) or lacks one it still has.
   */
  before: Map<string, Binding | null>;
  /** Settles when this group's transaction committed (or failed): one promise for the whole group. */
  committed: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class SqliteBindingStore extends MemoryBindingStore {
  private readonly db: Database.Database;
  private readonly insertStmt: Database.Statement;
  private readonly updateStmt: Database.Statement;
  private readonly deleteStmt: Database.Statement;
  /** The rowid of every binding on disk, by binding id. */
  private readonly rowOf = new Map<string, number>();
  private pending: PendingWrite | null = null;
  private closed = false;
  private checkpointer: Worker | undefined;
  private readonly onCheckpointError: ((error: Error) => void) | undefined;
  /** WAL frames the checkpointer thread has copied into the database file. */
  checkpointedFrames = 0;

  /**
   * Group commit window: writes queued within this many ms share one transaction. 0 commits
   * at the end of the event-loop turn. A few ms keeps the per-transaction WAL cost off each
   * REGISTER under load, at the price of that much added response latency.
   */
  private readonly commitDelayMs: number;
  private flushTimer: NodeJS.Timeout | undefined = undefined;

  /**
   * `checkpointIntervalMs`: how often a thread of its own checkpoints the WAL (default 1000;
   * 0: the writer checkpoints inside its commits, as SQLite does by default). A checkpoint
   * copies and syncs up to 40 MB of WAL into the database file; inside a commit it stopped
   * the event loop for 75-290 ms every ~35,000 REGISTERs (bench/register-inprocess.ts).
   * `onCheckpointError`: the thread failed; the writer checkpoints again itself from then on.
   */
  constructor(
    readonly file: string,
    options: { commitDelayMs?: number; checkpointIntervalMs?: number; onCheckpointError?: (error: Error) => void } = {},
  ) {
    super();
    this.commitDelayMs = options.commitDelayMs ?? 0;
    this.onCheckpointError = options.onCheckpointError;
    let db: Database.Database | undefined;
    try {
      this.db = db = openWalDatabase(file);
      // Inline, checkpoint the WAL every ~40 MB instead of ~4 MB: checkpoints then run inside a
      // commit, and under REGISTER load they were a fifth of the store's cost (bench: 21 -> 14
      // µs/row). With the checkpointer thread (below) the writer never checkpoints.
      this.db.pragma(`wal_autocheckpoint = ${INLINE_AUTOCHECKPOINT_PAGES}`);
      this.db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
      const version = this.db.prepare('SELECT value FROM meta WHERE key = ?').get('schema_version') as { value: string } | undefined;
      if (version && Number(version.value) > SCHEMA_VERSION) {
        throw new StoreError(`${file} was written by a newer pushcall (schema ${version.value})`);
      }
      this.db.transaction(() => {
        if (!version) {
          this.db.exec(CREATE_BINDINGS);
          this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema_version', String(SCHEMA_VERSION));
        } else if (Number(version.value) === 1) {
          // Same rows, addressed by rowid, without the write-only indexes.
          this.db.exec(`${CREATE_BINDINGS.replace('TABLE bindings', 'TABLE bindings_v2')};
            INSERT INTO bindings_v2 (id, aor, expires_at, data) SELECT id, aor, expires_at, data FROM bindings;
            DROP TABLE bindings;
            ALTER TABLE bindings_v2 RENAME TO bindings;`);
          this.db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(String(SCHEMA_VERSION), 'schema_version');
        }
      })();
      this.insertStmt = this.db.prepare('INSERT INTO bindings (id, aor, expires_at, data) VALUES (?, ?, ?, ?)');
      this.updateStmt = this.db.prepare('UPDATE bindings SET aor = ?, expires_at = ?, data = ? WHERE row = ?');
      this.deleteStmt = this.db.prepare('DELETE FROM bindings WHERE row = ?');
      const duplicates: number[] = [];
      for (const row of this.db.prepare('SELECT row, data FROM bindings').iterate() as Iterable<{ row: number; data: string }>) {
        const binding = JSON.parse(row.data) as Binding;
        const earlier = this.rowOf.get(binding.id);
        // Only a file edited by hand can hold an id twice: the newest row wins.
        if (earlier !== undefined) duplicates.push(earlier);
        this.rowOf.set(binding.id, row.row);
        this.putSync(binding);
      }
      for (const row of duplicates) this.deleteStmt.run(row);
      const interval = options.checkpointIntervalMs ?? 1000;
      if (file !== ':memory:' && interval > 0) this.startCheckpointer(interval);
    } catch (error) {
      // Do not leak the connection of a store that failed to open (corrupt file, newer schema).
      try {
        db?.close();
      } catch {
        // already unusable
      }
      if (error instanceof StoreError) throw error;
      throw new StoreError(`Cannot open binding store ${file}: ${(error as Error).message}`, { cause: error });
    }
  }

  override async apply(aor: string, changes: { upsert: Binding[]; remove: string[] }): Promise<void> {
    if (this.closed) throw new StoreError('binding store is closed');
    checkAor(aor, changes.upsert);
    const p = this.batch();
    for (const id of changes.remove) {
      const removed = this.removeSync(id);
      if (!p.before.has(id)) p.before.set(id, removed ?? null);
    }
    for (const binding of changes.upsert) {
      const previous = this.putSync(binding);
      if (!p.before.has(binding.id)) p.before.set(binding.id, previous ?? null);
    }
    return this.queue(p, changes.upsert, changes.remove);
  }

  override async remove(id: string): Promise<boolean> {
    const removed = this.removeSync(id);
    if (removed === undefined) return false;
    const p = this.batch();
    if (!p.before.has(id)) p.before.set(id, removed);
    await this.queue(p, [], [id]);
    return true;
  }

  override async sweep(now: number): Promise<Binding[]> {
    // Remove from memory and queue the deletes in the same synchronous step: an `await`
    // between them would let an apply() of the same turn re-create a swept id in memory
    // and then have this delete queued after its upsert (gone on disk, present in memory).
    const expired: Binding[] = [];
    for (const binding of this.byId.values()) if (binding.expiresAt <= now) expired.push(binding);
    if (expired.length === 0) return expired;
    const p = this.batch();
    for (const b of expired) {
      this.removeSync(b.id);
      if (!p.before.has(b.id)) p.before.set(b.id, b);
    }
    await this.queue(p, [], expired.map((b) => b.id));
    return expired;
  }

  /** The group of writes the next commit takes (created, and its commit scheduled, on first use). */
  private batch(): PendingWrite {
    if (this.pending === null) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const committed = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.pending = { upsert: new Map(), remove: new Set(), before: new Map(), committed, resolve, reject };
      if (this.commitDelayMs > 0) {
        this.flushTimer = setTimeout(() => this.flush(), this.commitDelayMs);
      } else setImmediate(() => this.flush());
    }
    return this.pending;
  }

  private queue(p: PendingWrite, upsert: Binding[], remove: string[]): Promise<void> {
    for (const id of remove) {
      p.upsert.delete(id);
      p.remove.add(id);
    }
    for (const b of upsert) {
      p.remove.delete(b.id);
      p.upsert.set(b.id, b);
    }
    return p.committed;
  }

  /** Commit everything queued in one transaction. */
  flush(): void {
    const p = this.pending;
    if (p === null) return;
    this.pending = null;
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    try {
      // Row numbers change in memory only once the transaction committed.
      const removed: string[] = [];
      const inserted: Array<[string, number]> = [];
      this.db.transaction(() => {
        for (const id of p.remove) {
          const row = this.rowOf.get(id);
          if (row === undefined) continue;
          this.deleteStmt.run(row);
          removed.push(id);
        }
        for (const b of p.upsert.values()) {
          const data = encodeBinding(b);
          // Memory holds every binding on disk: one that was not in memory before this batch
          // has no row, and a lookup in the 100,000-entry rowid index would be a certain miss
          // (1.9 % of the main thread at 20,000 REGISTER/s, BENCHMARKS.md).
          const row = p.before.get(b.id) === null ? undefined : this.rowOf.get(b.id);
          if (row !== undefined) this.updateStmt.run(b.aor, b.expiresAt, data, row);
          else inserted.push([b.id, Number(this.insertStmt.run(b.id, b.aor, b.expiresAt, data).lastInsertRowid)]);
        }
      })();
      for (const id of removed) this.rowOf.delete(id);
      for (const [id, row] of inserted) this.rowOf.set(id, row);
      p.resolve();
    } catch (error) {
      // Nothing of the group reached the disk: memory goes back to what the disk has.
      for (const [id, previous] of p.before) {
        this.removeSync(id);
        if (previous !== null) this.putSync(previous);
      }
      const err = new StoreError(`binding store write failed: ${(error as Error).message}`, { cause: error });
      p.reject(err);
    }
  }

  private startCheckpointer(intervalMs: number): void {
    const worker = new Worker(CHECKPOINTER_SOURCE, {
      eval: true,
      workerData: { driver: createRequire(import.meta.url).resolve('better-sqlite3'), file: this.file, intervalMs },
    });
    worker.on('message', (m: { checkpointed?: number; error?: string }) => {
      if (m.error !== undefined) this.checkpointInline(new StoreError(`WAL checkpointer failed: ${m.error}`));
      else this.checkpointedFrames += m.checkpointed ?? 0;
    });
    worker.on('error', (error) => this.checkpointInline(new StoreError(`WAL checkpointer failed: ${error.message}`, { cause: error })));
    worker.on('exit', () => this.checkpointInline(new StoreError('WAL checkpointer stopped')));
    // Never what keeps the process running (after the listeners: adding one refs the worker again).
    worker.unref();
    this.checkpointer = worker;
    this.db.pragma('wal_autocheckpoint = 0');
  }

  /** The checkpointer thread is gone: the writer checkpoints inside its commits again. */
  private checkpointInline(error: StoreError): void {
    const worker = this.checkpointer;
    if (worker === undefined || this.closed) return;
    this.checkpointer = undefined;
    retire(worker);
    try {
      this.db.pragma(`wal_autocheckpoint = ${INLINE_AUTOCHECKPOINT_PAGES}`);
    } catch {
      // The connection itself is gone: its next commit reports that.
    }
    this.onCheckpointError?.(error);
  }

  /** Bytes used by the database file and its WAL (benchmarks). */
  fileSize(): number {
    const row = this.db.prepare('SELECT page_count * page_size AS size FROM pragma_page_count(), pragma_page_size()').get() as { size: number };
    return row.size;
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    const worker = this.checkpointer;
    this.checkpointer = undefined;
    if (worker) await retire(worker);
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}
