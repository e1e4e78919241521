/**
 * The shared binding store for several pushcall nodes (DESIGN.md §6): every node reads and
 * writes the same bindings in one Redis (a primary, with Sentinel or a managed failover
 * for availability; Redis Cluster is not supported, the scripts touch keys they compute).
 *
 * Layout under `keyPrefix` (default `pushcall:`):
 *   b:<id>      the binding's JSON (binding-json.ts, the text the SQLite store keeps)
 *   aor:<aor>   set of binding ids          tok:<prid>  set of binding ids
 *   purr:<purr> binding id                  exp         sorted set id -> expiresAt
 *   prov        hash provider -> bindings   naor        AORs with a binding
 *   nb:<node>   set of the ids registered through that node (flow.nodeId)
 * Every change runs as one Lua script, so the indexes never disagree with the bindings and
 * a change set of one AOR is atomic (the BindingStore contract), whichever node writes it.
 */

import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';
import { StoreError } from '../errors.js';
import { encodeBinding } from './binding-json.js';
import { checkAor } from './memory-store.js';
import type { Binding, BindingStore, StoreStats } from './types.js';

/** Shared by the scripts: remove a binding and its index entries; returns its JSON or false. */
const UNINDEX = `
local P = ARGV[1]
local function unindex(id)
  local key = P .. 'b:' .. id
  local json = redis.call('GET', key)
  if not json then return false end
  local b = cjson.decode(json)
  redis.call('DEL', key)
  redis.call('ZREM', P .. 'exp', id)
  local aorKey = P .. 'aor:' .. b.aor
  if redis.call('SREM', aorKey, id) == 1 and redis.call('EXISTS', aorKey) == 0 then redis.call('DECR', P .. 'naor') end
  local provider = 'none'
  if type(b.push) == 'table' then
    provider = b.push.provider
    redis.call('SREM', P .. 'tok:' .. b.push.prid, id)
  end
  redis.call('HINCRBY', P .. 'prov', provider, -1)
  redis.call('SREM', P .. 'nb:' .. b.flow.nodeId, id)
  if type(b.purrs) == 'table' then
    for _, purr in ipairs(b.purrs) do
      local purrKey = P .. 'purr:' .. purr
      if redis.call('GET', purrKey) == id then redis.call('DEL', purrKey) end
    end
  end
  return json
end
`;

/** ARGV: prefix, removal count, the ids to remove, then (id, json, expiresAt) per upsert. */
const APPLY = `${UNINDEX}
local removals = tonumber(ARGV[2])
for i = 3, 2 + removals do unindex(ARGV[i]) end
for i = 3 + removals, #ARGV, 3 do
  local id, json, expiresAt = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  unindex(id)
  local b = cjson.decode(json)
  redis.call('SET', P .. 'b:' .. id, json)
  redis.call('ZADD', P .. 'exp', expiresAt, id)
  local aorKey = P .. 'aor:' .. b.aor
  if redis.call('SADD', aorKey, id) == 1 and redis.call('SCARD', aorKey) == 1 then redis.call('INCR', P .. 'naor') end
  local provider = 'none'
  if type(b.push) == 'table' then
    provider = b.push.provider
    redis.call('SADD', P .. 'tok:' .. b.push.prid, id)
  end
  redis.call('HINCRBY', P .. 'prov', provider, 1)
  redis.call('SADD', P .. 'nb:' .. b.flow.nodeId, id)
  if type(b.purrs) == 'table' then
    for _, purr in ipairs(b.purrs) do redis.call('SET', P .. 'purr:' .. purr, id) end
  end
end
return true
`;

/** ARGV: prefix, id. */
const REMOVE = `${UNINDEX}
return unindex(ARGV[2])
`;

/** ARGV: prefix, now, limit: the JSON of each expired binding removed. */
const SWEEP = `${UNINDEX}
local ids = redis.call('ZRANGEBYSCORE', P .. 'exp', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local json = unindex(id)
  if json then out[#out + 1] = json else redis.call('ZREM', P .. 'exp', id) end
end
return out
`;

/** ARGV: prefix, index key suffix (aor:<aor> or tok:<prid>): the JSON of every member. */
const MEMBERS = `
local ids = redis.call('SMEMBERS', ARGV[1] .. ARGV[2])
if #ids == 0 then return {} end
local keys = {}
for i, id in ipairs(ids) do keys[i] = ARGV[1] .. 'b:' .. id end
return redis.call('MGET', unpack(keys))
`;

/** ARGV: prefix, purr. */
const BY_PURR = `
local id = redis.call('GET', ARGV[1] .. 'purr:' .. ARGV[2])
if not id then return false end
return redis.call('GET', ARGV[1] .. 'b:' .. id)
`;

/** Expired bindings removed per sweep script run (keeps one script short on a large backlog). */
const SWEEP_BATCH = 500;

type ScriptedRedis = Redis & {
  pcApply(...args: string[]): Promise<unknown>;
  pcRemove(prefix: string, id: string): Promise<string | null>;
  pcSweep(prefix: string, now: string, limit: string): Promise<string[]>;
  pcMembers(prefix: string, key: string): Promise<Array<string | null>>;
  pcByPurr(prefix: string, purr: string): Promise<string | null>;
};

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
  url: string;
  /** Redis Sentinel: ask these for the primary of `masterName` (`url` then gives only credentials and db). */
  sentinels?: Array<{ host: string; port: number }>;
  masterName?: string;
  keyPrefix?: string;
  /** A command unanswered this long fails (the REGISTER gets 503) instead of waiting for Redis to return. */
  commandTimeoutMs?: number;
  /** The client's connection, events and retries (tests). */
  redisOptions?: RedisOptions;
}

export class RedisBindingStore implements BindingStore {
  readonly redis: ScriptedRedis;
  private readonly prefix: string;
  private closed = false;

  constructor(options: RedisStoreOptions) {
    this.prefix = options.keyPrefix ?? 'pushcall:';
    const common: RedisOptions = {
      // Concurrent REGISTERs share round trips: commands issued in one event-loop turn go as
      // one pipeline (ioredis auto-pipelining).
      enableAutoPipelining: true,
      commandTimeout: options.commandTimeoutMs ?? 2000,
      // While Redis is unreachable, a request fails after one retry instead of queueing
      // without bound; the client keeps reconnecting in the background.
      maxRetriesPerRequest: 1,
      lazyConnect: false,
      ...options.redisOptions,
    };
    // Loaded when a Redis store is made: a single node never pays for the client's modules.
    const { Redis: RedisClient } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    const redis = options.sentinels
      ? new RedisClient({ ...credentialsOf(options.url), sentinels: options.sentinels, name: options.masterName, ...common })
      : new RedisClient(options.url, common);
    // Connection errors surface as failed commands (typed below); an unheard 'error' event
    // would crash the process.
    redis.on('error', () => undefined);
    redis.defineCommand('pcApply', { numberOfKeys: 0, lua: APPLY });
    redis.defineCommand('pcRemove', { numberOfKeys: 0, lua: REMOVE });
    redis.defineCommand('pcSweep', { numberOfKeys: 0, lua: SWEEP });
    redis.defineCommand('pcMembers', { numberOfKeys: 0, lua: MEMBERS });
    redis.defineCommand('pcByPurr', { numberOfKeys: 0, lua: BY_PURR });
    this.redis = redis as ScriptedRedis;
  }

  /** Resolves once Redis answers (startup: fail fast with a clear error instead of at the first REGISTER). */
  async ready(): Promise<void> {
    await this.run('connect', () => this.redis.ping());
  }

  async lookup(aor: string, now: number): Promise<Binding[]> {
    return current(await this.run('lookup', () => this.redis.pcMembers(this.prefix, `aor:${aor}`)), now);
  }

  async apply(aor: string, changes: { upsert: Binding[]; remove: string[] }): Promise<void> {
    checkAor(aor, changes.upsert);
    if (changes.upsert.length === 0 && changes.remove.length === 0) return;
    const args = [this.prefix, String(changes.remove.length), ...changes.remove];
    for (const b of changes.upsert) args.push(b.id, encodeBinding(b), String(b.expiresAt));
    await this.run('apply', () => this.redis.pcApply(...args));
  }

  async findByPushToken(provider: string, prid: string): Promise<Binding[]> {
    const found = parseAll(await this.run('findByPushToken', () => this.redis.pcMembers(this.prefix, `tok:${prid}`)));
    return found.filter((b) => b.push?.provider === provider);
  }

  async findByPurr(purr: string): Promise<Binding | undefined> {
    return parseOne(await this.run('findByPurr', () => this.redis.pcByPurr(this.prefix, purr)));
  }

  async get(id: string): Promise<Binding | undefined> {
    return parseOne(await this.run('get', () => this.redis.get(`${this.prefix}b:${id}`)));
  }

  async remove(id: string): Promise<boolean> {
    return (await this.run('remove', () => this.redis.pcRemove(this.prefix, id))) !== null;
  }

  async sweep(now: number): Promise<Binding[]> {
    const swept: Binding[] = [];
    for (;;) {
      const batch = await this.run('sweep', () => this.redis.pcSweep(this.prefix, String(now), String(SWEEP_BATCH)));
      swept.push(...parseAll(batch));
      if (batch.length < SWEEP_BATCH) return swept;
    }
  }

  async stats(): Promise<StoreStats> {
    const [bindings, aors, providers] = await this.run('stats', () =>
      Promise.all([this.redis.zcard(`${this.prefix}exp`), this.redis.get(`${this.prefix}naor`), this.redis.hgetall(`${this.prefix}prov`)]),
    );
    const byProvider: Record<string, number> = {};
    for (const [provider, count] of Object.entries(providers)) if (Number(count) > 0) byProvider[provider] = Number(count);
    return { bindings, aors: Number(aors ?? 0), byProvider };
  }

  async all(): Promise<Binding[]> {
    return this.bindingsOf('all', await this.run('all', () => this.redis.zrange(`${this.prefix}exp`, 0, -1)));
  }

  /** How many bindings registered through `nodeId` (its index's size). */
  async countForNode(nodeId: string): Promise<number> {
    return this.run('countForNode', () => this.redis.scard(`${this.prefix}nb:${nodeId}`));
  }

  async forNode(nodeId: string): Promise<Binding[]> {
    const ids: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.run('forNode', () => this.redis.sscan(`${this.prefix}nb:${nodeId}`, cursor, 'COUNT', 1000));
      cursor = next;
      ids.push(...batch);
    } while (cursor !== '0');
    return this.bindingsOf('forNode', ids);
  }

  /** The bindings of `ids`, read a thousand at a time (one MGET each). */
  private async bindingsOf(operation: string, ids: readonly string[]): Promise<Binding[]> {
    const out: Binding[] = [];
    for (let i = 0; i < ids.length; i += 1000) {
      const keys = ids.slice(i, i + 1000).map((id) => `${this.prefix}b:${id}`);
      out.push(...parseAll(await this.run(operation, () => this.redis.mget(...keys))));
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Every write was acknowledged by Redis before its REGISTER was answered: nothing to flush.
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private async run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError(`Redis store ${operation}: the store is closed`);
    try {
      return await command();
    } catch (error) {
      throw new StoreError(`Redis store ${operation} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}

/** The user, password and db of a `redis://` URL (with Sentinel, its host is not used). */
function credentialsOf(url: string): RedisOptions {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  return {
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) ? db : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

/** The store `store.redis` of a configuration describes (standalone, or through Sentinel). */
export function redisStoreFor(redis: { url: string; keyPrefix: string; commandTimeoutMs: number; sentinels?: string[]; masterName?: string }): RedisBindingStore {
  return new RedisBindingStore({
    url: redis.url,
    keyPrefix: redis.keyPrefix,
    commandTimeoutMs: redis.commandTimeoutMs,
    masterName: redis.masterName,
    sentinels: redis.sentinels?.map((hostPort) => {
      const i = hostPort.lastIndexOf(':');
      return { host: hostPort.slice(0, i), port: Number(hostPort.slice(i + 1)) };
    }),
  });
}

function parseOne(json: string | null | undefined): Binding | undefined {
  return json ? (JSON.parse(json) as Binding) : undefined;
}

function parseAll(jsons: ReadonlyArray<string | null>): Binding[] {
  const out: Binding[] = [];
  for (const json of jsons) if (json) out.push(JSON.parse(json) as Binding);
  return out;
}

function current(jsons: ReadonlyArray<string | null>, now: number): Binding[] {
  return parseAll(jsons).filter((b) => b.expiresAt > now);
}
