/**
 * PushcallServer wires the layers: transports → transaction layer → core (registrar,
 * proxy) → location store and push gateway, plus the admin HTTP server. It owns the
 * lifecycle: start listening, stop cleanly (store flushed) on SIGTERM.
 */

import { dirname, join } from 'node:path';
import {
  type Clock,
  type Flow,
  type InviteServerTransaction,
  type ServerTransaction,
  type SipRequest,
  type SipResponse,
  type StatelessReply,
  SipUri,
  TransactionLayer,
  type TransactionLayerUser,
  UdpTransport,
  createResponse,
  createTransport,
  parseSipUriStrict,
  systemClock,
} from '@pushcall/sip';
import { recordRouteFor } from './proxy/routing.js';

import { type AdminServer, startAdminServer } from './admin/http.js';
import { DigestAuthenticator } from './auth/digest.js';
import { AuthFailureLimiter } from './auth/failure-limit.js';
import type { PushcallConfig } from './config/schema.js';
import { StartupError, StoreError } from './errors.js';
import { ClusterLink, type RemovalEvent } from './cluster/cluster-link.js';
import { MemoryBindingStore } from './location/memory-store.js';
import { RedisBindingStore, redisStoreFor } from './location/redis-store.js';
import { SqliteBindingStore } from './location/sqlite-store.js';
import { MemoryMessageStore, type MessageStore, RedisMessageStore, SqliteMessageStore } from './location/messages.js';
import type { Binding, BindingStore } from './location/types.js';
import { type Logger, createLogger } from './observability/logger.js';
import { ServerMetrics } from './observability/metrics.js';
import { redactToken, redactUrl } from './observability/redact.js';
import { Registrar, hasOptionTag, outboundEdgeFor } from './registrar/registrar.js';
import type { Pusher } from './proxy/call.js';
import { ProxyCore, STORE_UNAVAILABLE, unavailableFor } from './proxy/proxy.js';
import { OfflineMessages } from './proxy/offline-messages.js';
import { RegEventNotifier } from './registrar/reg-event.js';
import { BindingRefresher } from './proxy/refresh.js';

export interface ServerOptions {
  config: PushcallConfig;
  clock?: Clock;
  logger?: Logger;
  /** Providers the registrar accepts before a push gateway is attached (tests). */
  supportedProviders?: readonly string[];
  /** Use this store instead of the configured one. */
  store?: BindingStore;
  /** Use this store for offline messages instead of the configured one. */
  messages?: MessageStore;
}

/** Methods the core answers (Allow header, RFC 3261 §20.5). */
export const ALLOWED_METHODS = ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'REGISTER', 'MESSAGE', 'INFO', 'UPDATE', 'PRACK', 'REFER', 'NOTIFY', 'SUBSCRIBE'];

export class PushcallServer implements TransactionLayerUser {
  readonly config: PushcallConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: ServerMetrics;
  readonly layer: TransactionLayer;
  readonly store: BindingStore;
  readonly registrar: Registrar;
  readonly auth: DigestAuthenticator | undefined;
  /** The proxy core (wake-on-call); requests other than REGISTER/OPTIONS go there. */
  readonly proxy: ProxyCore;
  /** Refresh pushes before push bindings expire (RFC 8599 §5.5); undefined when disabled. */
  readonly refresher: BindingRefresher | undefined;
  private admin: AdminServer | undefined;
  private sweepTimer: { cancel(): void } | undefined;
  /** The other nodes sharing the Redis store; undefined for one node. */
  private cluster: ClusterLink | undefined;
  private supported: readonly string[];
  private stopped = false;

  constructor(options: ServerOptions) {
    this.config = options.config;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? createLogger(this.config.log.level);
    this.metrics = new ServerMetrics({ processMetrics: this.config.admin.enabled ? { eventLoopSampleMs: this.config.admin.eventLoopSampleMs } : undefined });
    this.supported = options.supportedProviders ?? [];
    this.layer = new TransactionLayer(this, { clock: this.clock, advertisedHost: this.config.advertisedHost });
    this.store = options.store ?? this.openStore();
    const realm = this.config.auth.realm ?? this.config.domains[0] ?? 'pushcall';
    this.auth =
      this.config.auth.mode === 'digest'
        ? new DigestAuthenticator({
            realm,
            users: this.config.auth.users,
            algorithms: this.config.auth.algorithms,
            nonceTtlSeconds: this.config.auth.nonceTtlSeconds,
            secret: this.config.auth.nonceSecret,
            clock: this.clock,
          })
        : undefined;
    const authFailures = this.auth
      ? new AuthFailureLimiter({
          ...this.config.auth.failureLimit,
          clock: this.clock,
          onBlock: (address) => {
            this.metrics.authBlocks.inc();
            this.logger.warn({ address, blockSeconds: this.config.auth.failureLimit.blockSeconds }, 'address blocked after repeated failed authentications');
          },
        })
      : undefined;
    this.registrar = new Registrar({
      config: this.config,
      store: this.store,
      clock: this.clock,
      nodeId: this.config.node.id,
      nodeUri: this.config.node.uri,
      auth: this.auth,
      authFailures,
      supportedProviders: () => this.supported,
      vapidPublicKey: (provider) => this.proxy.pusher?.vapidPublicKey?.(provider),
      forwardRegister: this.config.registrar.upstream ? (request) => this.forwardRegister(request) : undefined,
      hooks: {
        onOutcome: (status) => this.metrics.countRegister(status),
        onRegistered: (event) => {
          this.refresher?.track(event.binding);
          this.proxy.regEvents?.changed(event.binding.aor, event.binding, event.previous ? 'refreshed' : 'registered');
          // Built only when someone reads it: this runs for every REGISTER.
          if (!this.logger.isLevelEnabled('debug')) return;
          const { binding, previous } = event;
          this.logger.debug(
            { aor: binding.aor, binding: binding.id, provider: binding.push?.provider, token: redactToken(binding.push?.prid), refreshed: previous !== undefined },
            'registered',
          );
        },
        onAccepted: (event) => {
          this.proxy.onRegistered(event.binding, event.receivedAt);
          this.deliverOfflineMessages(event.binding);
          if (this.cluster?.registered(event.binding, event.previous ? 'refreshed' : 'registered')) this.metrics.clusterEvents.inc({ direction: 'out' });
        },
        onRemoved: (binding, reason) => {
          this.refresher?.untrack(binding.id);
          // Removed by its UA, or replaced by the registrar (same instance or token, RFC 3680 §5.3 "deactivated").
          this.bindingEnded(binding, reason === 'unregistered' ? 'unregistered' : 'deactivated');
          this.logger.debug({ aor: binding.aor, binding: binding.id, reason }, 'binding removed');
        },
      },
    });
    this.metrics.bindingCounts = async () => (await this.store.stats()).byProvider;
    this.proxy = new ProxyCore({
      config: this.config,
      layer: this.layer,
      store: this.store,
      clock: this.clock,
      logger: this.logger,
      metrics: this.metrics,
      auth: this.auth,
      authFailures,
      isLocalDomain: (host) => this.registrar.isLocalDomain(host),
    });
    const regEvent = this.config.registrar.regEvent;
    if (regEvent.enabled) {
      const notifier = new RegEventNotifier({ layer: this.layer, store: this.store, clock: this.clock, logger: this.logger, settings: regEvent });
      this.proxy.regEvents = notifier;
      this.metrics.regSubscriptionCount = () => notifier.size;
    }
    if (this.config.proxy.offlineMessages.enabled) {
      this.proxy.offline = new OfflineMessages(this.proxy, options.messages ?? this.openMessageStore(options.store !== undefined));
    }
    const refresh = this.config.proxy.refreshPush;
    if (refresh.enabled) {
      const refresher = new BindingRefresher({
        ...refresh,
        store: this.store,
        clock: this.clock,
        logger: this.logger,
        metrics: this.metrics,
        nodeId: this.config.node.id,
        pusher: () => this.proxy.pusher,
      });
      this.refresher = refresher;
      this.metrics.refreshScheduledCount = () => refresher.size;
    }
  }

  /**
   * Offline messages live where the bindings do: in memory, in `messages.sqlite` next to the
   * SQLite binding store, or in the same Redis. With a binding store handed in (tests), in memory.
   */
  private openMessageStore(storeGiven: boolean): MessageStore {
    const store = this.config.store;
    if (storeGiven || store.type === 'memory') return new MemoryMessageStore();
    if (this.store instanceof RedisBindingStore) return new RedisMessageStore(this.store.redis, store.redis.keyPrefix);
    return new SqliteMessageStore(join(dirname(this.bindingsFile()), 'messages.sqlite'));
  }

  /** The SQLite binding store's file (`store.file`, else in `dataDir`). */
  private bindingsFile(): string {
    return this.config.store.file ?? join(this.config.dataDir, 'bindings.sqlite');
  }

  /** A binding ended here: its reg-event subscribers hear of it, on this node and (multi-node) the others. */
  private bindingEnded(binding: Binding, event: RemovalEvent): void {
    this.proxy.regEvents?.changed(binding.aor, binding, event);
    if (this.cluster?.removed(binding, event)) this.metrics.clusterEvents.inc({ direction: 'out' });
  }

  /** A push device registered: send it the offline messages it is owed (only pushed devices are owed any). */
  private deliverOfflineMessages(binding: Binding): void {
    const offline = this.proxy.offline;
    if (!offline || binding.push === undefined || offline.store.mayHold?.(binding.aor) === false) return;
    offline.deliverTo(binding).catch((error: unknown) => this.logger.warn({ err: (error as Error).message, aor: binding.aor }, 'cannot read offline messages'));
  }

  private openStore(): BindingStore {
    const store = this.config.store;
    switch (store.type) {
      case 'memory':
        return new MemoryBindingStore();
      case 'redis':
        return redisStoreFor(store.redis);
      case 'sqlite':
        return new SqliteBindingStore(this.bindingsFile(), {
          commitDelayMs: store.commitDelayMs,
          checkpointIntervalMs: store.checkpointIntervalMs,
          onCheckpointError: (error) => this.logger.warn({ err: error.message }, 'WAL checkpoints back in the writer'),
        });
    }
  }

  /**
   * Multi-node (store.type redis): check Redis answers and this node's id is its own, and
   * hear the other nodes' registrations, before any listener opens.
   */
  private async joinCluster(): Promise<void> {
    const store = this.store;
    if (!(store instanceof RedisBindingStore)) return;
    try {
      await store.ready();
    } catch (error) {
      throw new StartupError(`Cannot reach Redis at ${redactUrl(this.config.store.redis.url)}: ${(error as Error).message}`, { cause: error });
    }
    const link = new ClusterLink({
      redis: store.redis,
      keyPrefix: this.config.store.redis.keyPrefix,
      nodeId: this.config.node.id,
      nodeUri: this.config.node.uri!,
      clock: this.clock,
      onRemoteRegistered: (binding, _from, event) => {
        this.metrics.clusterEvents.inc({ direction: 'in' });
        this.proxy.onRegistered(binding);
        this.proxy.regEvents?.changed(binding.aor, binding, event);
      },
      onRemoteRemoved: (binding, _from, event) => {
        this.metrics.clusterEvents.inc({ direction: 'in' });
        this.proxy.regEvents?.changed(binding.aor, binding, event);
      },
      onAdopt: async (nodeId) => {
        const count = (await this.refresher?.adopt(nodeId)) ?? 0;
        this.logger.info({ node: nodeId, bindings: count }, 'sending the refresh pushes of a node that is gone');
      },
      onRelease: (nodeId) => this.refresher?.release(nodeId),
      countBindings: (nodeId) => store.countForNode(nodeId),
      onError: (error) => this.logger.warn({ err: error.message }, 'cluster link'),
    });
    await link.start();
    this.cluster = link;
    this.proxy.wake.watcher = link;
    this.proxy.nodeAlive = (nodeId, lastHeardAt) => link.isAlive(nodeId, lastHeardAt);
    this.proxy.claimPushInCluster = (key, ttlMs) => link.claimPush(key, ttlMs);
    this.proxy.rateLimitInCluster = (kind, key, limit) => link.rateLimit(kind, key, limit);
    if (this.proxy.regEvents) {
      this.proxy.regEvents.watcher = { subscribed: (aor) => link.regSubscription(aor, 1), unsubscribed: (aor) => link.regSubscription(aor, -1) };
    }
  }

  /**
   * Push-proxy mode: REGISTER to the real registrar with a Path to us (RFC 3327), so the
   * requests it routes to the device come through pushcall (RFC 8599 §5.6.2).
   */
  private async forwardRegister(request: SipRequest): Promise<SipResponse> {
    const upstream = parseSipUriStrict(this.config.registrar.upstream ?? '');
    const destination = await this.proxy.locate(upstream);
    const transport = this.layer.requireTransport(destination);
    // RFC 5626 §5.1: as the UA's edge, say so (`ob`) when it asked for outbound, or an
    // outbound registrar answers 439.
    const path = recordRouteFor(this.layer, transport, this.proxy.routeSigner);
    request.prepend('Path', outboundEdgeFor(request) ? `${path.slice(0, -1)};ob>` : path);
    if (!hasOptionTag(request.supported, 'path')) request.append('Supported', 'path');
    return new Promise((resolve) => {
      this.layer.request(request, destination, {
        onResponse: (response) => {
          if (response.status >= 200) resolve(response);
        },
        onTimeout: () => resolve(createResponse(request, 408, { reason: 'Registrar did not answer' })),
        onTransportError: () => resolve(createResponse(request, 503, { reason: 'Registrar unreachable' })),
      });
    });
  }

  /** Providers the registrar accepts (the push gateway's configured ones). */
  setSupportedProviders(providers: readonly string[]): void {
    this.supported = providers;
  }

  /** Attach the push gateway: its providers become the ones the registrar accepts. */
  private pushGateway: (Pusher & { close(): Promise<void> }) | undefined;

  setPusher(pusher: Pusher & { close?(): Promise<void> }): void {
    if (pusher.close) this.pushGateway = pusher as Pusher & { close(): Promise<void> };
    this.proxy.pusher = pusher;
    this.supported = pusher.supportedProviders();
  }

  get supportedProviders(): readonly string[] {
    return this.supported;
  }

  async start(): Promise<void> {
    try {
      await this.joinCluster();
    } catch (error) {
      // Nothing listens yet: release the stores' connections, or the process would not exit.
      await this.proxy.offline?.store.close().catch(() => undefined);
      await this.store.close().catch(() => undefined);
      throw error;
    }
    for (const spec of this.config.listen) {
      const [protocol, ...rest] = spec.split(':');
      const port = Number(rest.pop());
      let address = rest.join(':');
      if (address.startsWith('[')) address = address.slice(1, -1);
      const p = protocol as 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
      if ((p === 'tls' || p === 'wss') && !this.config.tls) {
        throw new StartupError(`${spec}: tls/wss listeners need tls.certFile and tls.keyFile in the config`);
      }
      this.layer.addTransport((events) =>
        createTransport(
          {
            protocol: p,
            address,
            port,
            clock: this.clock,
            io: this.config.udp.io,
            tls: this.config.tls ? { certFile: this.config.tls.certFile, keyFile: this.config.tls.keyFile, caFile: this.config.tls.caFile } : undefined,
          },
          events,
        ),
      );
    }
    try {
      await this.layer.listen();
    } catch (error) {
      await this.layer.close().catch(() => undefined);
      throw new StartupError(`Cannot listen: ${(error as Error).message}`, { cause: error });
    }
    if (this.config.admin.enabled) this.admin = await startAdminServer(this, this.config.admin.listen, { token: this.config.admin.token });
    this.scheduleSweep();
    await this.refresher?.start();
    const udpIo = this.layer.listeners.find((t): t is UdpTransport => t instanceof UdpTransport)?.io;
    this.logger.info({ listen: this.listenAddresses(), udpIo, admin: this.admin?.address, node: this.config.node.id }, 'pushcall listening');
  }

  /** Actual `protocol:host:port` of every listener (ports resolved when 0 was asked). */
  listenAddresses(): string[] {
    return this.layer.listeners.map((t) => `${t.protocol}:${t.localAddress.includes(':') ? `[${t.localAddress}]` : t.localAddress}:${t.localPort}`);
  }

  port(protocol: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss'): number {
    const t = this.layer.transportFor(protocol);
    if (!t) throw new Error(`no ${protocol} listener`);
    return t.localPort;
  }

  /** What the dashboard shows (admin `/api/summary`). */
  async summary(): Promise<Record<string, unknown>> {
    const totals = this.metrics.totals();
    return {
      node: this.config.node.id,
      // Multi-node: every live node sharing the Redis store (an unanswered Redis shows as null),
      // and the gone nodes whose refresh pushes this node sends.
      cluster: this.cluster ? { nodes: await this.cluster.nodes().catch(() => null), adopted: this.cluster.adoptedNodes } : undefined,
      uptimeSeconds: process.uptime(),
      bindings: await this.store.stats(),
      heldBranches: this.proxy.wake.size,
      calls: totals.calls,
      registers: totals.registers,
      requests: totals.requests,
      regSubscriptions: this.proxy.regEvents?.size,
      offlineMessages: this.proxy.offline ? await this.proxy.offline.store.count(this.clock.now()).catch(() => null) : undefined,
    };
  }

  get timelines(): ProxyCore['timelines'] {
    return this.proxy.timelines;
  }

  get adminAddress(): string | undefined {
    return this.admin?.address;
  }

  private scheduleSweep(): void {
    this.sweepTimer = this.clock.setTimeout(() => {
      void this.store.sweep(this.clock.now()).then(
        (expired) => {
          if (expired.length > 0) this.logger.debug({ count: expired.length }, 'expired bindings swept');
          for (const b of expired) this.bindingEnded(b, 'expired');
        },
        (error: unknown) => this.logger.error({ err: error }, 'sweep failed'),
      );
      this.proxy.offline?.sweep(this.clock.now()).catch((error: unknown) => this.logger.error({ err: error }, 'offline message sweep failed'));
      this.auth?.prune();
      if (!this.stopped) this.scheduleSweep();
    }, this.config.store.sweepIntervalSeconds * 1000);
  }

  /**
   * Apply a new configuration without a restart (`pushcall serve` on SIGHUP): the users, the
   * trusted peers and the log level take effect at once, for the next request; calls and
   * registrations in progress are untouched. Any other setting that changed needs a restart
   * and is listed, not applied.
   */
  reload(next: PushcallConfig): { applied: string[]; needsRestart: string[] } {
    const applied: string[] = [];
    const needsRestart: string[] = [];
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const keysOf = <T extends object>(a: T, b: T) => [...new Set([...Object.keys(a), ...Object.keys(b)])] as Array<keyof T>;
    for (const key of keysOf(this.config, next)) {
      if (same(this.config[key], next[key])) continue;
      if (key === 'auth') {
        for (const sub of keysOf(this.config.auth, next.auth)) {
          if (same(this.config.auth[sub], next.auth[sub])) continue;
          if (sub === 'users') {
            this.auth?.setUsers(next.auth.users);
            this.config.auth.users = next.auth.users;
          } else if (sub === 'trustedPeers') this.config.auth.trustedPeers = next.auth.trustedPeers;
          else {
            needsRestart.push(`auth.${sub}`);
            continue;
          }
          applied.push(`auth.${sub}`);
        }
      } else if (key === 'log') {
        this.logger.level = next.log.level;
        this.config.log = next.log;
        applied.push('log.level');
      } else needsRestart.push(key);
    }
    return { applied, needsRestart };
  }

  /**
   * Before a shutdown: stop taking new calls (503 with Retry-After, so callers and a PBX move
   * to another server; /readyz answers 503 so a load balancer does too) and resolve once the
   * calls in progress, held ones included, have ended, or after `maxMs` (false then).
   * REGISTERs are still served: a device woken for a held call must be able to register.
   */
  async drain(maxMs: number): Promise<boolean> {
    this.proxy.draining = true;
    const deadline = this.clock.monotonic() + maxMs;
    while (this.callsInProgress > 0) {
      if (this.clock.monotonic() >= deadline) return false;
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 100));
    }
    return true;
  }

  /** Calls in progress, held branches included (a ghost call's waits for cancel-on-wake too): what a drain waits for. */
  get callsInProgress(): number {
    return this.proxy.activeCalls + this.proxy.wake.size;
  }

  /** Taking new calls (false while draining): /readyz. */
  ready(): boolean {
    return !this.proxy.draining && !this.stopped;
  }

  /**
   * Read the tls/wss certificate files again (SIGHUP: a renewed certificate). New
   * connections get it; phones already connected keep theirs and stay registered.
   */
  async reloadCertificates(): Promise<{ reloaded: string[]; failed: Array<{ listener: string; error: string }> }> {
    const reloaded: string[] = [];
    const failed: Array<{ listener: string; error: string }> = [];
    for (const t of this.layer.listeners) {
      if (!t.reloadCertificates) continue;
      const listener = `${t.protocol}:${t.localAddress}:${t.localPort}`;
      try {
        await t.reloadCertificates();
        reloaded.push(listener);
      } catch (error) {
        failed.push({ listener, error: (error as Error).message });
      }
    }
    return { reloaded, failed };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.sweepTimer?.cancel();
    this.refresher?.close();
    this.proxy.regEvents?.close();
    await this.admin?.close();
    await this.layer.close();
    await this.cluster?.stop();
    await this.proxy.offline?.store.close();
    await this.store.close();
    await this.pushGateway?.close();
    this.logger.info('pushcall stopped');
  }

  // ----- TransactionLayerUser --------------------------------------------------------

  onRequest(request: SipRequest, transaction: ServerTransaction, flow: Flow): void {
    this.metrics.countInbound(request.method);
    if (request.method === 'REGISTER') {
      this.register(request, flow, (response) => transaction.respond(response));
      return;
    }
    if (request.method === 'OPTIONS' && this.isForUs(request)) {
      transaction.respond(
        createResponse(request, 200, {
          headers: [
            ['Allow', ALLOWED_METHODS.join(', ')],
            ['Accept', 'application/sdp'],
            ['Supported', 'path, outbound'],
          ],
        }),
      );
      return;
    }
    this.proxy.onRequest(request, transaction, flow);
  }

  /**
   * The registrar answers REGISTER statelessly, as Kamailio's and OpenSIPS's registrars do
   * (§8.2.7): it is idempotent for a repeated Call-ID/CSeq, so a retransmission gets the same
   * answer without a server transaction and a Timer J copy of the 200. Kept stateful: a
   * REGISTER with credentials (nonce-count replay protection would take its retransmission
   * for a replay) and the push-proxy mode (the REGISTER is forwarded).
   */
  answerStatelessly(request: SipRequest): boolean {
    return request.method === 'REGISTER' && !this.config.registrar.upstream && request.get('authorization') === undefined;
  }

  onStatelessRequest(request: SipRequest, reply: StatelessReply, flow: Flow): void {
    this.metrics.countInbound(request.method);
    this.register(request, flow, reply);
  }

  private register(request: SipRequest, flow: Flow, reply: (response: SipResponse) => void): void {
    this.registrar.handle(request, flow).then(reply, (error: unknown) => {
      this.logger.error({ err: error }, 'REGISTER failed');
      // A store that does not answer (Redis away, a failed commit) is temporary: 503 with
      // Retry-After. Anything else is a bug: 500.
      const unavailable = error instanceof StoreError;
      this.metrics.countRegister(unavailable ? 503 : 500);
      if (unavailable) this.metrics.storeUnavailable.inc({ operation: 'register' });
      reply(unavailable ? unavailableFor(request, STORE_UNAVAILABLE) : createResponse(request, 500, { reason: 'Registrar error' }));
    });
  }

  /**
   * A request addressed to this server itself (no user part, RFC 3261 §11 OPTIONS ping), not
   * one that a strict router sent to our Record-Route entry with a Route set left to follow
   * (§16.4: the proxy restores and forwards it).
   */
  private isForUs(request: SipRequest): boolean {
    const uri = request.uri;
    return uri instanceof SipUri && uri.user === undefined && !(uri.params.has('lr') && request.get('route') !== undefined);
  }

  onCancel(cancel: SipRequest, transaction: ServerTransaction, invite: InviteServerTransaction | undefined, flow: Flow): void {
    this.proxy.onCancel(cancel, transaction, invite);
  }

  onAck(ack: SipRequest, flow: Flow): void {
    this.proxy.onAck(ack, flow);
  }

  onStrayResponse(response: SipResponse, flow: Flow): void {
    this.proxy.onStrayResponse(response);
  }

  onParseError(error: unknown, flow: Flow, answered: boolean): void {
    this.logger.debug({ err: (error as Error).message, from: `${flow.remoteAddress}:${flow.remotePort}`, answered }, 'malformed SIP message');
  }

  onWarning(warning: { code: string; message: string; flow?: Flow }): void {
    this.logger.warn({ code: warning.code }, warning.message);
  }
}
