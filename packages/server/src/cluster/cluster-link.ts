/**
 * What the nodes sharing a Redis store tell each other (DESIGN.md §6):
 * - "this device registered": a call held on node A for a sleeping phone is released when
 *   the phone's REGISTER lands on node B (a load balancer, DNS SRV, or the phone's new
 *   network decides which node it reaches);
 * - "this node id is taken": two nodes with one `node.id` would each believe they own every
 *   connection-oriented flow, so a second one is refused at startup;
 * - "this device was pushed for this call": a PBX that forks one call to two nodes must not
 *   wake the phone twice (`push:<Call-ID>|<device>`, SET NX for the ring timeout);
 * - "this AOR's bindings changed", for AORs some node has a reg-event subscription for
 *   (`regwatch`, RFC 3680): registrations, refreshes and removals of any binding, on the
 *   AOR's channel;
 * - "this caller made N push-triggering calls this minute": the abuse limits count across the
 *   nodes (`lim:callee:<aor>`, `lim:caller:<caller>`), so spreading calls does not multiply them;
 * - "this node is gone, its phones need refresh pushes": refresh pushes (RFC 8599 §5.5) are
 *   sent by the node a binding registered through. A node that stopped or crashed leaves its
 *   id in the `orphans` set; the live node with the lowest id adopts them (its refresher
 *   schedules their bindings) until the node comes back or its bindings are gone. Adoption is
 *   recomputed from Redis every LIVE_NODES_REFRESH_MS, so it survives the adopter's own end.
 *
 * Registrations go to a Redis pub/sub channel per AOR (`<prefix>reg:<aor>`), which a node
 * listens to only while it holds a call for that AOR: no node hears the registrations it
 * does not wait for, whatever the number of nodes (Redis drops a message nobody listens
 * to). A node subscribes when it holds the AOR's first branch, at the time it sends the
 * push; a phone takes hundreds of milliseconds to wake and register, the subscription one
 * round trip to Redis. Delivery is at most once (pub/sub keeps nothing for a node that is
 * reconnecting): a wake missed that way ends as the wake timeout's 480, as when the phone
 * never registers.
 */

import { hostname } from 'node:os';
import type { Clock } from '@pushcall/sip';
import type { Redis } from 'ioredis';
import { StartupError } from '../errors.js';
import { encodeBinding } from '../location/binding-json.js';
import type { Binding } from '../location/types.js';

export interface ClusterLinkOptions {
  /** The store's connection (commands); the link opens a second one to subscribe. */
  redis: Redis;
  keyPrefix: string;
  nodeId: string;
  nodeUri: string;
  clock: Clock;
  /** A device registered through another node (`event`: registered or refreshed). */
  onRemoteRegistered(binding: Binding, fromNode: string, event: 'registered' | 'refreshed'): void;
  /** A binding of an AOR watched for reg events ended at another node. */
  onRemoteRemoved?(binding: Binding, fromNode: string, event: RemovalEvent): void;
  /** This node now sends the refresh pushes of a node that is gone (`nodeId`'s bindings). */
  onAdopt?(nodeId: string): Promise<void>;
  /** …and no longer: the node is back, its bindings are gone, or another node adopts. */
  onRelease?(nodeId: string): void;
  /** How many bindings registered through `nodeId` are left (an orphan with none is forgotten). */
  countBindings?(nodeId: string): Promise<number>;
  onError?(error: Error): void;
}

/** How long a node's claim on its id outlives its last heartbeat (a crashed node's id frees up). */
export const NODE_CLAIM_TTL_MS = 30_000;
const HEARTBEAT_MS = 10_000;
/** How often a node reads which nodes are alive (their claims): a stopped node is known gone within this. */
const LIVE_NODES_REFRESH_MS = 2_000;

/** The abuse limits' window (`limits.perCalleePerMinute`, `perCallerPerMinute`). */
const RATE_WINDOW_MS = 60_000;
/** A fixed window: INCR, the first one sets its expiry; over the limit, the ms left in it. */
const RATE_LIMIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n <= tonumber(ARGV[2]) then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then return 1 end
return left
`;

/** How a binding ended, as reg events (RFC 3680 §5.3) name it. */
export type RemovalEvent = 'unregistered' | 'deactivated' | 'expired';

/**
 * Count a reg-event subscription of an AOR (ARGV[2]: +1 or -1) in the hash KEYS[1]; tell the
 * nodes (channel ARGV[3]) when the AOR becomes watched (`+aor`) or no longer (`-aor`).
 */
const REG_WATCH = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if tonumber(ARGV[2]) < 0 then redis.call('PUBLISH', ARGV[3], '-' .. ARGV[1]) end
elseif n == 1 and tonumber(ARGV[2]) > 0 then
  redis.call('PUBLISH', ARGV[3], '+' .. ARGV[1])
end
return n
`;

export class ClusterLink {
  private subscriber: Redis | undefined;
  private heartbeat: { cancel(): void } | undefined;
  /** `<prefix>reg:`, followed by the AOR. */
  private readonly channelPrefix: string;
  private readonly claimKey: string;
  /** The set of node ids that claimed one (`<prefix>nodes`). */
  private readonly nodesKey: string;
  /** Ids of nodes that are gone and may have left bindings behind (`<prefix>orphans`). */
  private readonly orphansKey: string;
  /** The orphans whose refresh pushes this node sends. */
  private readonly adopted = new Set<string>();
  /** Why this node listens to an AOR's channel: held calls and reg subscriptions, counted. */
  private readonly listening = new Map<string, number>();
  /** `<prefix>regwatch`: reg-event subscriptions per AOR, over every node; and its channel. */
  private readonly regWatchKey: string;
  /** AORs some node has a reg-event subscription for: their every binding change is told. */
  private regWatched = new Set<string>();
  /** Who holds the claim: the node's SIP URI (a restart of the same node may take it over at once) and this process. */
  private readonly claim: string;
  private stopped = false;
  private liveRefresh: { cancel(): void } | undefined;
  /** Ids of the nodes with a live claim, as last read (this node always counts as alive). */
  private live = new Set<string>();
  /** When that read started (ms since the epoch). */
  private liveReadAt = 0;

  constructor(private readonly options: ClusterLinkOptions) {
    this.channelPrefix = `${options.keyPrefix}reg:`;
    this.claimKey = `${options.keyPrefix}node:${options.nodeId}`;
    this.nodesKey = `${options.keyPrefix}nodes`;
    this.orphansKey = `${options.keyPrefix}orphans`;
    this.regWatchKey = `${options.keyPrefix}regwatch`;
    this.claim = `${options.nodeUri} ${hostname()}:${process.pid}`;
  }

  async start(): Promise<void> {
    await this.claimNodeId();
    const subscriber = this.options.redis.duplicate({ enableAutoPipelining: false });
    subscriber.on('error', (error: Error) => this.options.onError?.(error));
    this.subscriber = subscriber;
    subscriber.on('message', (channel: string, message: string) => (channel === this.regWatchKey ? this.onRegWatch(message) : this.onMessage(message)));
    // Resubscribed by the client after a reconnection (ioredis autoResubscribe); what was
    // watched meanwhile is read again.
    subscriber.on('ready', () => void this.readRegWatched());
    await subscriber.subscribe(this.regWatchKey);
    await this.readRegWatched();
    const beat = () => {
      this.heartbeat = this.options.clock.setTimeout(() => {
        const { redis, nodeId } = this.options;
        // Also back in the set, should another node have dropped it while Redis was away.
        void Promise.all([redis.set(this.claimKey, this.claim, 'PX', NODE_CLAIM_TTL_MS), redis.sadd(this.nodesKey, nodeId)]).catch((error: Error) =>
          this.options.onError?.(error),
        );
        if (!this.stopped) beat();
      }, HEARTBEAT_MS);
    };
    beat();
    await this.refreshLiveNodes();
  }

  /**
   * Does `nodeId` hold a live claim (as read at most LIVE_NODES_REFRESH_MS ago)? A node that
   * was heard from at `lastHeardAt` (a binding it wrote) after that read counts as alive: it
   * may have started since.
   */
  isAlive(nodeId: string, lastHeardAt = 0): boolean {
    return nodeId === this.options.nodeId || this.live.has(nodeId) || lastHeardAt >= this.liveReadAt;
  }

  /**
   * Read the live nodes, then again every LIVE_NODES_REFRESH_MS. While Redis does not
   * answer the last answer stands: no node is declared gone for want of news.
   */
  private async refreshLiveNodes(): Promise<void> {
    try {
      const readAt = this.options.clock.now();
      this.live = new Set((await this.nodes()).map((n) => n.id));
      this.liveReadAt = readAt;
      await this.reviewAdoptions();
    } catch (error) {
      this.options.onError?.(error as Error);
    }
    if (!this.stopped) this.liveRefresh = this.options.clock.setTimeout(() => void this.refreshLiveNodes(), LIVE_NODES_REFRESH_MS);
  }

  /**
   * The live node with the lowest id adopts every orphan that is not alive; any other node
   * releases what it had adopted. An orphan with no binding left is forgotten.
   */
  private async reviewAdoptions(): Promise<void> {
    const { redis, nodeId } = this.options;
    const adopter = [...this.live].concat(nodeId).sort()[0] === nodeId;
    const orphans = adopter ? (await redis.smembers(this.orphansKey)).filter((id) => !this.live.has(id) && id !== nodeId) : [];
    const keep = new Set<string>();
    for (const id of orphans) {
      if (this.options.countBindings && (await this.options.countBindings(id)) === 0) {
        await redis.srem(this.orphansKey, id);
        continue;
      }
      keep.add(id);
      if (this.adopted.has(id)) continue;
      try {
        await this.options.onAdopt?.(id);
        this.adopted.add(id);
      } catch (error) {
        this.options.onError?.(error as Error); // tried again at the next review
      }
    }
    for (const id of this.adopted) {
      if (keep.has(id)) continue;
      this.adopted.delete(id);
      this.options.onRelease?.(id);
    }
  }

  /** The ids of gone nodes whose refresh pushes this node sends. */
  get adoptedNodes(): string[] {
    return [...this.adopted].sort();
  }

  /**
   * Take `node:<id>` unless another live node holds it. The same node restarted (same
   * `node.uri`) takes its claim over at once instead of waiting for it to expire.
   */
  private async claimNodeId(): Promise<void> {
    const { redis, nodeId, nodeUri } = this.options;
    const taken = await redis.set(this.claimKey, this.claim, 'PX', NODE_CLAIM_TTL_MS, 'NX');
    const holder = taken === 'OK' ? nodeUri : ((await redis.get(this.claimKey)) ?? '').split(' ')[0];
    if (holder === nodeUri) {
      if (taken !== 'OK') await redis.set(this.claimKey, this.claim, 'PX', NODE_CLAIM_TTL_MS);
      await redis.sadd(this.nodesKey, nodeId);
      // Back: its bindings are its own again.
      await redis.srem(this.orphansKey, nodeId);
      return;
    }
    throw new StartupError(`node.id ${nodeId} is in use by another node (${holder}); every node sharing the Redis store needs its own node.id`);
  }

  /**
   * The live nodes sharing the store, this one included, sorted by id: the members of the
   * `nodes` set whose claim has not expired. Read every 2 s by every node, so it touches
   * only those keys (a SCAN of the keyspace would walk every binding). A member whose
   * claim expired (a node that crashed) is moved to the orphans on the way.
   */
  async nodes(): Promise<Array<{ id: string; uri: string }>> {
    const { redis, keyPrefix } = this.options;
    const ids = await redis.smembers(this.nodesKey);
    const claims = ids.length > 0 ? await redis.mget(...ids.map((id) => `${keyPrefix}node:${id}`)) : [];
    const gone = ids.filter((_, i) => claims[i] === null);
    if (gone.length > 0) {
      await redis.sadd(this.orphansKey, ...gone);
      await redis.srem(this.nodesKey, ...gone);
    }
    const nodes = ids.flatMap((id, i) => (claims[i] ? [{ id, uri: claims[i]!.split(' ')[0] }] : []));
    return nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * This node holds a call for `aor` (its first held branch), or has a reg subscription for
   * it: hear its registrations at other nodes. Counted: the channel is left when neither
   * needs it any more.
   */
  watch(aor: string): void {
    const n = (this.listening.get(aor) ?? 0) + 1;
    this.listening.set(aor, n);
    if (n === 1) void this.subscriber?.subscribe(this.channelPrefix + aor).catch((error: Error) => this.options.onError?.(error));
  }

  /** One reason less to hear `aor`'s registrations. */
  unwatch(aor: string): void {
    const n = (this.listening.get(aor) ?? 0) - 1;
    if (n > 0) return void this.listening.set(aor, n);
    this.listening.delete(aor);
    void this.subscriber?.unsubscribe(this.channelPrefix + aor).catch((error: Error) => this.options.onError?.(error));
  }

  /**
   * A reg-event subscription for `aor` started (+1) or ended (-1) on this node. While any node
   * has one, every node tells every change of the AOR's bindings, not only the registrations
   * a held call waits for.
   */
  regSubscription(aor: string, delta: 1 | -1): void {
    if (delta > 0) {
      this.regWatched.add(aor);
      this.watch(aor);
    } else this.unwatch(aor);
    void this.options.redis.eval(REG_WATCH, 1, this.regWatchKey, aor, delta, this.regWatchKey).catch((error: Error) => this.options.onError?.(error));
  }

  private async readRegWatched(): Promise<void> {
    try {
      const aors = await this.options.redis.hkeys(this.regWatchKey);
      for (const aor of aors) this.regWatched.add(aor);
    } catch (error) {
      this.options.onError?.(error as Error);
    }
  }

  private onRegWatch(message: string): void {
    const aor = message.slice(1);
    if (message[0] === '+') this.regWatched.add(aor);
    else if (!this.listening.has(aor)) this.regWatched.delete(aor);
  }

  /** A binding of `aor` ended here: the nodes watching its reg events hear of it. */
  removed(binding: Binding, event: RemovalEvent): boolean {
    if (this.stopped || !this.regWatched.has(binding.aor)) return false;
    void this.options.redis.publish(this.channelPrefix + binding.aor, `removed ${this.options.nodeId} ${event}\n${encodeBinding(binding)}`).catch((error: Error) => this.options.onError?.(error));
    return true;
  }

  /**
   * Tell the nodes holding a call for the AOR that a device registered here; only bindings a
   * held call could be waiting for (wake.ts matches by push token or instance). True when
   * it was sent.
   */
  registered(binding: Binding, event: 'registered' | 'refreshed' = 'registered'): boolean {
    if (this.stopped || (binding.push === undefined && binding.instanceId === undefined && !this.regWatched.has(binding.aor))) return false;
    void this.options.redis.publish(this.channelPrefix + binding.aor, `registered ${this.options.nodeId} ${event}\n${encodeBinding(binding)}`).catch((error: Error) => this.options.onError?.(error));
    return true;
  }

  /**
   * The first node to claim `key` (a Call-ID and a device) within `ttlMs` pushes the device;
   * the others hold their branch for the registration that push brings.
   */
  async claimPush(key: string, ttlMs: number): Promise<boolean> {
    return (await this.options.redis.set(`${this.options.keyPrefix}push:${key}`, this.options.nodeId, 'PX', ttlMs, 'NX')) === 'OK';
  }

  /**
   * One call against `key`'s one-minute window across the nodes (`lim:<kind>:<key>`); the ms
   * until the window resets once `limit` is passed, else 0.
   */
  async rateLimit(kind: 'callee' | 'caller', key: string, limit: number): Promise<number> {
    const waitMs = await this.options.redis.eval(RATE_LIMIT, 1, `${this.options.keyPrefix}lim:${kind}:${key}`, RATE_WINDOW_MS, limit);
    return Number(waitMs);
  }

  private onMessage(text: string): void {
    const newline = text.indexOf('\n');
    const [kind, from, event] = text.slice(0, newline).split(' ');
    // Its own changes reached this node's registry directly.
    if ((kind !== 'registered' && kind !== 'removed') || from === this.options.nodeId) return;
    let binding: Binding;
    try {
      binding = JSON.parse(text.slice(newline + 1)) as Binding;
    } catch (error) {
      this.options.onError?.(error as Error);
      return;
    }
    if (kind === 'registered') this.options.onRemoteRegistered(binding, from, event === 'refreshed' ? 'refreshed' : 'registered');
    else this.options.onRemoteRemoved?.(binding, from, event === 'unregistered' || event === 'deactivated' ? event : 'expired');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.heartbeat?.cancel();
    this.liveRefresh?.cancel();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber) await subscriber.quit().catch(() => subscriber.disconnect());
    // Free the id for a replacement node; only our own claim. Its bindings' refresh pushes
    // go to an adopter until a node with this id is back.
    const current = await this.options.redis.get(this.claimKey).catch(() => null);
    if (current === this.claim) {
      await this.options.redis.sadd(this.orphansKey, this.options.nodeId).catch(() => undefined);
      await this.options.redis.del(this.claimKey).catch(() => undefined);
      await this.options.redis.srem(this.nodesKey, this.options.nodeId).catch(() => undefined);
    }
  }
}
