import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The server's Prometheus metrics, in one registry (admin `/metrics`). */
export class ServerMetrics {
  readonly registry = new Registry();
  /** Set from a Tally at scrape time: count with countRegister(), not inc(). */
  readonly registers: Counter<'status'>;
  readonly bindings: Gauge<'provider'>;
  /** Set from a Tally at scrape time: count with countInbound(), not inc(). */
  readonly sipMessages: Counter<'direction' | 'kind'>;
  /** Set from a Tally at scrape time: count with countCall(), not inc(). */
  readonly calls: Counter<'outcome'>;
  readonly wakeLatency: Histogram<'provider'>;
  readonly heldCalls: Gauge;
  readonly refreshPushes: Counter<'provider' | 'outcome'>;
  /** Addresses blocked after repeated failed authentications (auth.failureLimit). */
  readonly authBlocks: Counter;
  /** In-dialog requests sent to where a device is now rather than where the dialog recorded it. */
  readonly dialogRetargets: Counter<'reason'>;
  readonly nodeRelays: Counter<'direction'>;
  readonly clusterEvents: Counter<'direction'>;
  readonly storeUnavailable: Counter<'operation'>;
  readonly offlineMessages: Counter<'event'>;
  readonly refreshScheduled: Gauge;
  readonly regSubscriptions: Gauge;
  /** Inbound requests by kind, REGISTERs by status, calls by outcome: see Tally. */
  private readonly inbound = new Tally();
  private readonly registerOutcomes = new Tally();
  private readonly callOutcomes = new Tally();
  /** Set by the server: current binding counts by provider, read at scrape time. */
  bindingCounts: (() => Promise<Record<string, number>>) | undefined = undefined;
  /** Set by the server: bindings with a refresh push scheduled, read at scrape time. */
  refreshScheduledCount: (() => number) | undefined = undefined;
  /** Set by the server: reg-event subscriptions on this node, read at scrape time. */
  regSubscriptionCount: (() => number) | undefined = undefined;

  /**
   * `processMetrics`: prom-client's process metrics (CPU, memory, GC, event-loop delay), left
   * out when absent (nothing can scrape them). Their event-loop delay is sampled by a timer
   * every `eventLoopSampleMs` (`admin.eventLoopSampleMs`); prom-client's 10 ms woke an idle
   * server 100 times a second (0.9 % of a core on the benchmark machine).
   */
  constructor(options: { processMetrics?: { eventLoopSampleMs: number } } = {}) {
    if (options.processMetrics) {
      collectDefaultMetrics({ register: this.registry, prefix: 'pushcall_process_', eventLoopMonitoringPrecision: options.processMetrics.eventLoopSampleMs });
    }
    const metrics = this;
    this.registers = new Counter({
      name: 'pushcall_register_total',
      help: 'REGISTER requests by response status',
      labelNames: ['status'],
      registers: [this.registry],
      collect() {
        metrics.registerOutcomes.publish(this, (status) => ({ status }));
      },
    });
    this.bindings = new Gauge({
      name: 'pushcall_bindings',
      help: 'Current bindings by push provider (none = plain)',
      labelNames: ['provider'],
      registers: [this.registry],
      async collect() {
        if (!metrics.bindingCounts) return;
        const counts = await metrics.bindingCounts();
        this.reset();
        for (const [provider, n] of Object.entries(counts)) this.set({ provider }, n);
      },
    });
    this.sipMessages = new Counter({
      name: 'pushcall_sip_messages_total',
      help: 'SIP messages',
      labelNames: ['direction', 'kind'],
      registers: [this.registry],
      collect() {
        metrics.inbound.publish(this, (kind) => ({ direction: 'in', kind }));
      },
    });
    this.calls = new Counter({
      name: 'pushcall_calls_total',
      help: 'Calls by outcome',
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        metrics.callOutcomes.publish(this, (outcome) => ({ outcome }));
      },
    });
    this.wakeLatency = new Histogram({
      name: 'pushcall_wake_seconds',
      help: 'Caller INVITE to INVITE delivered to a woken device',
      labelNames: ['provider'],
      buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30],
      registers: [this.registry],
    });
    this.heldCalls = new Gauge({ name: 'pushcall_held_branches', help: 'Branches waiting for a device to wake', registers: [this.registry] });
    this.refreshPushes = new Counter({
      name: 'pushcall_refresh_pushes_total',
      help: 'Refresh pushes before binding expiry (RFC 8599 §5.5) by provider and outcome (ok or the push error code)',
      labelNames: ['provider', 'outcome'],
      registers: [this.registry],
    });
    this.authBlocks = new Counter({
      name: 'pushcall_auth_blocks_total',
      help: 'Source addresses blocked after repeated failed authentications (auth.failureLimit)',
      registers: [this.registry],
    });
    this.dialogRetargets = new Counter({
      name: 'pushcall_dialog_retargets_total',
      help: 'In-dialog requests sent to a device where it is now: moved (it re-registered from another connection mid-dialog) or gruu (its GRUU, RFC 5627)',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    this.nodeRelays = new Counter({
      name: 'pushcall_node_relays_total',
      help: 'Requests for a device whose flow another node holds (multi-node): out (sent through that node), in (delivered here for another node)',
      labelNames: ['direction'],
      registers: [this.registry],
    });
    this.clusterEvents = new Counter({
      name: 'pushcall_cluster_events_total',
      help: 'Registrations told to the other nodes (out) and heard from them (in), so that a call held on one node wakes on a REGISTER at another',
      labelNames: ['direction'],
      registers: [this.registry],
    });
    this.storeUnavailable = new Counter({
      name: 'pushcall_store_unavailable_total',
      help: 'Requests answered 503 because the binding store did not answer or failed (Redis away, a failed SQLite commit), by what they needed it for',
      labelNames: ['operation'],
      registers: [this.registry],
    });
    this.offlineMessages = new Counter({
      name: 'pushcall_offline_messages_total',
      help: 'Offline messages (proxy.offlineMessages): kept (stored), not kept (full, too-large, failed), and deliveries to devices (delivered, rejected, unreachable: tried again at the next registration), expired',
      labelNames: ['event'],
      registers: [this.registry],
    });
    this.regSubscriptions = new Gauge({
      name: 'pushcall_reg_subscriptions',
      help: 'Registration event subscriptions (RFC 3680) on this node',
      registers: [this.registry],
      collect() {
        if (metrics.regSubscriptionCount) this.set(metrics.regSubscriptionCount());
      },
    });
    this.refreshScheduled = new Gauge({
      name: 'pushcall_refresh_scheduled',
      help: 'Push bindings with a refresh push scheduled',
      registers: [this.registry],
      collect() {
        if (metrics.refreshScheduledCount) this.set(metrics.refreshScheduledCount());
      },
    });
  }

  /**
   * Count an inbound request. Methods outside the known set count as `OTHER`: the method
   * comes from the wire, and one label series per invented method would grow without bound.
   */
  countInbound(method: string): void {
    this.inbound.add(KNOWN_METHODS.has(method) ? method : 'OTHER');
  }

  /** Count a REGISTER by the status of its response. */
  countRegister(status: number): void {
    this.registerOutcomes.add(String(status));
  }

  /** Count a finished call by its outcome. */
  countCall(outcome: string): void {
    this.callOutcomes.add(outcome);
  }

  /** The running totals, for the admin API's summary. */
  totals(): { registers: Record<string, number>; calls: Record<string, number>; requests: Record<string, number> } {
    return { registers: this.registerOutcomes.toObject(), calls: this.callOutcomes.toObject(), requests: this.inbound.toObject() };
  }
}

/**
 * Counts kept as plain numbers and handed to prom-client when scraped. These count every
 * REGISTER, request and call; prom-client's inc() hashes a label object and allocates a
 * new value record each time, about a microsecond per message. Only for labels whose
 * values are a small fixed set.
 */
class Tally {
  private readonly counts = new Map<string, number>();

  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  toObject(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  /** Set the counter to the totals (at scrape time, from its collect()). */
  publish<L extends string>(counter: Counter<L>, labels: (key: string) => Partial<Record<L, string>>): void {
    counter.reset();
    for (const [key, n] of this.counts) counter.inc(labels(key), n);
  }
}

const KNOWN_METHODS = new Set(['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'REGISTER', 'MESSAGE', 'INFO', 'UPDATE', 'PRACK', 'REFER', 'NOTIFY', 'SUBSCRIBE', 'PUBLISH']);
