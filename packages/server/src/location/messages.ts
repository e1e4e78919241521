/**
 * Offline messages: a MESSAGE (RFC 3428) for a device that slept through its push is kept
 * here and delivered when the device registers again (the proxy answered the sender 202
 * Accepted). Each message remembers the devices it is still owed to, so that a user's
 * phone and tablet both get it; it goes once none is left, or when it expires.
 *
 * Three stores, chosen with the binding store: in memory, a SQLite file next to the binding
 * store's (`messages.sqlite`: its writes are rare, and it keeps the binding store's group
 * commit to itself), and Redis (shared by every node).
 */

import type Database from 'better-sqlite3';
import type { Redis } from 'ioredis';
import { StoreError } from '../errors.js';
import { openWalDatabase } from './sqlite-store.js';

export interface StoredMessage {
  id: string;
  /** The AOR it was sent to. */
  aor: string;
  storedAt: number;
  expiresAt: number;
  /** The devices it is still owed to: their `+sip.instance`, else their binding id. */
  devices: string[];
  /** The request as received, latin1 (every byte kept). */
  request: string;
}

export interface MessageStore {
  /** Keep `message` unless its AOR already has `maxPerAor` current ones (then false). */
  add(message: StoredMessage, maxPerAor: number, now: number): Promise<boolean>;
  /** The AOR's current messages, oldest first. */
  forAor(aor: string, now: number): Promise<StoredMessage[]>;
  /** `device` has it: forget it for that device, and the message once no device is left. */
  delivered(message: StoredMessage, device: string): Promise<void>;
  /** Drop expired messages; returns how many. */
  sweep(now: number): Promise<number>;
  /** Current messages (the admin summary). */
  count(now: number): Promise<number>;
  /**
   * False when the AOR certainly has no message, answered from memory: a registration then
   * costs the store nothing. Stores that cannot tell without asking leave it out.
   */
  mayHold?(aor: string): boolean;
  close(): Promise<void>;
}

function withoutDevice(message: StoredMessage, device: string): StoredMessage {
  return { ...message, devices: message.devices.filter((d) => d !== device) };
}

export class MemoryMessageStore implements MessageStore {
  private readonly byAor = new Map<string, StoredMessage[]>();

  async add(message: StoredMessage, maxPerAor: number, now: number): Promise<boolean> {
    const current = (this.byAor.get(message.aor) ?? []).filter((m) => m.expiresAt > now);
    if (current.length >= maxPerAor) return false;
    let at = current.length;
    while (at > 0 && current[at - 1].storedAt > message.storedAt) at--;
    current.splice(at, 0, message);
    this.byAor.set(message.aor, current);
    return true;
  }

  async forAor(aor: string, now: number): Promise<StoredMessage[]> {
    return (this.byAor.get(aor) ?? []).filter((m) => m.expiresAt > now);
  }

  mayHold(aor: string): boolean {
    return this.byAor.has(aor);
  }

  async delivered(message: StoredMessage, device: string): Promise<void> {
    const list = this.byAor.get(message.aor);
    if (!list) return;
    const index = list.findIndex((m) => m.id === message.id);
    if (index === -1) return;
    const left = withoutDevice(list[index], device);
    if (left.devices.length > 0) list[index] = left;
    else list.splice(index, 1);
    if (list.length === 0) this.byAor.delete(message.aor);
  }

  async sweep(now: number): Promise<number> {
    let dropped = 0;
    for (const [aor, list] of this.byAor) {
      const kept = list.filter((m) => m.expiresAt > now);
      dropped += list.length - kept.length;
      if (kept.length === 0) this.byAor.delete(aor);
      else this.byAor.set(aor, kept);
    }
    return dropped;
  }

  async count(now: number): Promise<number> {
    let n = 0;
    for (const list of this.byAor.values()) for (const m of list) if (m.expiresAt > now) n++;
    return n;
  }

  async close(): Promise<void> {}
}

export class SqliteMessageStore implements MessageStore {
  private readonly db: Database.Database;
  private readonly statements: {
    countAor: Database.Statement<[string, number]>;
    insert: Database.Statement<[string, string, number, number, string, Buffer]>;
    forAor: Database.Statement<[string, number]>;
    setDevices: Database.Statement<[string, string]>;
    remove: Database.Statement<[string]>;
    sweep: Database.Statement<[number]>;
    count: Database.Statement<[number]>;
  };
  private readonly addTx: (message: StoredMessage, maxPerAor: number, now: number) => boolean;
  /** AORs that may have a message (rebuilt at open and by each sweep; a delivery does not shrink it). */
  private aors = new Set<string>();

  constructor(file: string) {
    try {
      this.db = openWalDatabase(file);
      this.db.exec(`CREATE TABLE IF NOT EXISTS messages (
        id TEXT PRIMARY KEY, aor TEXT NOT NULL, stored_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        devices TEXT NOT NULL, request BLOB NOT NULL)`);
      this.db.exec('CREATE INDEX IF NOT EXISTS messages_aor ON messages (aor, stored_at)');
    } catch (error) {
      throw new StoreError(`Cannot open the message store ${file}: ${(error as Error).message}`, { cause: error });
    }
    this.statements = {
      countAor: this.db.prepare('SELECT count(*) AS n FROM messages WHERE aor = ? AND expires_at > ?'),
      insert: this.db.prepare('INSERT INTO messages (id, aor, stored_at, expires_at, devices, request) VALUES (?, ?, ?, ?, ?, ?)'),
      forAor: this.db.prepare('SELECT id, aor, stored_at, expires_at, devices, request FROM messages WHERE aor = ? AND expires_at > ? ORDER BY stored_at, rowid'),
      setDevices: this.db.prepare('UPDATE messages SET devices = ? WHERE id = ?'),
      remove: this.db.prepare('DELETE FROM messages WHERE id = ?'),
      sweep: this.db.prepare('DELETE FROM messages WHERE expires_at <= ?'),
      count: this.db.prepare('SELECT count(*) AS n FROM messages WHERE expires_at > ?'),
    };
    this.addTx = this.db.transaction((message: StoredMessage, maxPerAor: number, now: number) => {
      const { n } = this.statements.countAor.get(message.aor, now) as { n: number };
      if (n >= maxPerAor) return false;
      this.statements.insert.run(message.id, message.aor, message.storedAt, message.expiresAt, JSON.stringify(message.devices), Buffer.from(message.request, 'latin1'));
      return true;
    });
    this.readAors();
  }

  private readAors(): void {
    this.aors = new Set((this.db.prepare('SELECT DISTINCT aor FROM messages').all() as Array<{ aor: string }>).map((r) => r.aor));
  }

  mayHold(aor: string): boolean {
    return this.aors.has(aor);
  }

  async add(message: StoredMessage, maxPerAor: number, now: number): Promise<boolean> {
    const added = this.guard('add', () => this.addTx(message, maxPerAor, now));
    if (added) this.aors.add(message.aor);
    return added;
  }

  async forAor(aor: string, now: number): Promise<StoredMessage[]> {
    const rows = this.guard('forAor', () => this.statements.forAor.all(aor, now)) as Array<{ id: string; aor: string; stored_at: number; expires_at: number; devices: string; request: Buffer }>;
    return rows.map((r) => ({ id: r.id, aor: r.aor, storedAt: r.stored_at, expiresAt: r.expires_at, devices: JSON.parse(r.devices) as string[], request: r.request.toString('latin1') }));
  }

  async delivered(message: StoredMessage, device: string): Promise<void> {
    const left = withoutDevice(message, device);
    this.guard('delivered', () => (left.devices.length > 0 ? this.statements.setDevices.run(JSON.stringify(left.devices), message.id) : this.statements.remove.run(message.id)));
  }

  async sweep(now: number): Promise<number> {
    return this.guard('sweep', () => {
      const dropped = this.statements.sweep.run(now).changes;
      this.readAors();
      return dropped;
    });
  }

  async count(now: number): Promise<number> {
    return this.guard('count', () => (this.statements.count.get(now) as { n: number }).n);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private guard<T>(operation: string, run: () => T): T {
    try {
      return run();
    } catch (error) {
      throw new StoreError(`Message store ${operation} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}

/**
 * Keep a message unless its AOR has ARGV[3] current ones already, and tell every node the
 * AOR has one. KEYS: the AOR's index, the message, the index of all messages, the AORs with
 * messages. ARGV: id, json, max, expiresAt, now, aor, channel.
 */
const ADD = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PXAT', ARGV[4])
local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], latest[2])
redis.call('SADD', KEYS[4], ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[6])
return 1
`;

/** Forget a delivered message; the AOR leaves the AORs with messages with its last. KEYS: message, AOR's index, all, AORs. ARGV: id, aor. */
const REMOVE = `
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[2]) end
return 1
`;

/** Drop from `maors` (KEYS[1]) the AORs whose messages all expired. ARGV: prefix, now. */
const SWEEP_AORS = `
for _, aor in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('ZCOUNT', ARGV[1] .. 'maor:' .. aor, '(' .. ARGV[2], '+inf') == 0 then redis.call('SREM', KEYS[1], aor) end
end
return 1
`;

/**
 * Layout under the binding store's prefix: `msg:<id>` the message's JSON (expiring with it),
 * `maor:<aor>` the AOR's message ids by expiry (expiring with the last), `mall` every
 * message id by expiry (for the count), `maors` the AORs that have messages, and the channel
 * `msgs` on which a node says "this AOR has one now". Redis drops expired messages by itself.
 *
 * Every push REGISTER asks "does this device have messages?". So that the answer is not a
 * Redis command per REGISTER, each node keeps the AORs with messages in memory (`mayHold`):
 * read from `maors` when its subscription is (re)established, grown by the channel, so it
 * may say yes for an AOR whose messages are gone (one read), never no for one that has some.
 * While the subscription is down it says "ask".
 */
export class RedisMessageStore implements MessageStore {
  private readonly subscriber: Redis;
  private readonly channel: string;
  /** AORs that may have messages; meaningful while `synced`. */
  private aors = new Set<string>();
  private synced = false;
  /** AORs heard of while a resync reads `maors` (its answer may predate them). */
  private heardDuringResync: Set<string> | undefined;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.channel = `${prefix}msgs`;
    this.subscriber = redis.duplicate({ enableAutoPipelining: false });
    this.subscriber.on('error', () => undefined); // the command connection reports Redis trouble
    this.subscriber.on('message', (_channel: string, aor: string) => {
      this.aors.add(aor);
      this.heardDuringResync?.add(aor);
    });
    this.subscriber.on('close', () => {
      this.synced = false;
    });
    this.subscriber.on('ready', () => void this.resync());
  }

  /** Subscribe, then read the AORs with messages: from then on `mayHold` answers from memory. */
  private async resync(): Promise<void> {
    this.synced = false;
    const heard = (this.heardDuringResync = new Set());
    try {
      await this.subscriber.subscribe(this.channel);
      const members = await this.redis.smembers(`${this.prefix}maors`);
      if (this.closed) return;
      this.aors = new Set([...members, ...heard]);
      this.synced = true;
    } catch {
      // Not synced: every registration asks Redis until the next 'ready'.
    } finally {
      if (this.heardDuringResync === heard) this.heardDuringResync = undefined;
    }
  }

  mayHold(aor: string): boolean {
    return !this.synced || this.aors.has(aor);
  }

  async add(message: StoredMessage, maxPerAor: number, now: number): Promise<boolean> {
    const p = this.prefix;
    const added = await this.run('add', () =>
      this.redis.eval(ADD, 4, `${p}maor:${message.aor}`, `${p}msg:${message.id}`, `${p}mall`, `${p}maors`, message.id, JSON.stringify(message), maxPerAor, message.expiresAt, now, message.aor, this.channel),
    );
    if (added !== 1) return false;
    this.aors.add(message.aor);
    return true;
  }
  async forAor(aor: string, now: number): Promise<StoredMessage[]> {
    const ids = await this.run('forAor', () => this.redis.zrangebyscore(`${this.prefix}maor:${aor}`, `(${now}`, '+inf'));
    if (ids.length === 0) return [];
    const jsons = await this.run('forAor', () => this.redis.mget(...ids.map((id) => `${this.prefix}msg:${id}`)));
    const messages = jsons.flatMap((json) => (json ? [JSON.parse(json) as StoredMessage] : []));
    return messages.filter((m) => m.expiresAt > now).sort((a, b) => a.storedAt - b.storedAt);
  }

  async delivered(message: StoredMessage, device: string): Promise<void> {
    const left = withoutDevice(message, device);
    const p = this.prefix;
    const key = `${p}msg:${message.id}`;
    await this.run<unknown>('delivered', () =>
      left.devices.length > 0
        ? this.redis.set(key, JSON.stringify(left), 'PXAT', message.expiresAt, 'XX')
        : this.redis.eval(REMOVE, 4, key, `${p}maor:${message.aor}`, `${p}mall`, `${p}maors`, message.id, message.aor),
    );
  }

  /** Expired messages are gone by themselves; AORs left with none leave `maors`. */
  async sweep(now: number): Promise<number> {
    await this.run('sweep', () => this.redis.eval(SWEEP_AORS, 1, `${this.prefix}maors`, this.prefix, now));
    return 0;
  }

  async count(now: number): Promise<number> {
    return this.run('count', () => this.redis.zcount(`${this.prefix}mall`, `(${now}`, '+inf'));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.synced = false;
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }

  private async run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw new StoreError(`Redis message store ${operation} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
