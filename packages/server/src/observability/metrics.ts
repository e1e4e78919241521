import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The server's Prometheus metrics, in one registry (admin `/metrics`). */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly registers: Counter<'status'>;
  readonly bindings: Gauge<'provider'>;
  readonly sipMessages: Counter<'direction' | 'kind'>;
  readonly calls: Counter<'outcome'>;
  readonly wakeLatency: Histogram<'provider'>;
  readonly heldCalls: Gauge;
  readonly refreshPushes: Counter<'provider' | 'outcome'>;
  readonly refreshScheduled: Gauge;
  /** Children of `sipMessages` for inbound requests, by kind (labels hashed once). */
  private readonly inbound = new Map<string, { inc(): void }>();
  /** `registers` and `calls` by their one label, children looked up once (see byLabel). */
  private readonly registerByStatus: (status: number | string) => { inc(): void };
  private readonly callByOutcome: (outcome: string) => { inc(): void };
  /** Set by the server: current binding counts by provider, read at scrape time. */
  bindingCounts: (() => Promise<Record<string, number>>) | undefined = undefined;
  /** Set by the server: bindings with a refresh push scheduled, read at scrape time. */
  refreshScheduledCount: (() => number) | undefined = undefined;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'pushcall_process_' });
    this.registers = new Counter({ name: 'pushcall_register_total', help: 'REGISTER requests by response status', labelNames: ['status'], registers: [this.registry] });
    const metrics = this;
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
    this.sipMessages = new Counter({ name: 'pushcall_sip_messages_total', help: 'SIP messages', labelNames: ['direction', 'kind'], registers: [this.registry] });
    this.calls = new Counter({ name: 'pushcall_calls_total', help: 'Calls by outcome', labelNames: ['outcome'], registers: [this.registry] });
    this.registerByStatus = byLabel(this.registers, 'status');
    this.callByOutcome = byLabel(this.calls, 'outcome');
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
    const kind = KNOWN_METHODS.has(method) ? method : 'OTHER';
    let child = this.inbound.get(kind);
    if (child === undefined) this.inbound.set(kind, (child = this.sipMessages.labels({ direction: 'in', kind })));
    child.inc();
  }

  /** Count a REGISTER by the status of its response. */
  countRegister(status: number): void {
    this.registerByStatus(status).inc();
  }

  /** Count a finished call by its outcome. */
  countCall(outcome: string): void {
    this.callByOutcome(outcome).inc();
  }
}

/**
 * The child of a one-label counter for a label value, made once per value: prom-client
 * hashes the label object on every `inc({...})`, which cost about a microsecond per
 * REGISTER or call. Only for labels whose values are a small fixed set.
 */
function byLabel<L extends string>(counter: Counter<L>, label: L): (value: number | string) => { inc(): void } {
  const children = new Map<number | string, { inc(): void }>();
  return (value) => {
    let child = children.get(value);
    if (child === undefined) children.set(value, (child = counter.labels({ [label]: String(value) } as Partial<Record<L, string>>)));
    return child;
  };
}

const KNOWN_METHODS = new Set(['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'REGISTER', 'MESSAGE', 'INFO', 'UPDATE', 'PRACK', 'REFER', 'NOTIFY', 'SUBSCRIBE', 'PUBLISH']);
