/** prom-client metrics for the push gateway (registered once per Registry). */

import { Counter, Histogram, Registry } from 'prom-client';

export class PushMetrics {
  readonly total: Counter<'provider' | 'outcome'>;
  readonly sendSeconds: Histogram<'provider'>;

  constructor(readonly registry: Registry = new Registry()) {
    this.total =
      (registry.getSingleMetric('pushcall_push_total') as Counter<'provider' | 'outcome'> | undefined) ??
      new Counter({
        name: 'pushcall_push_total',
        help: 'Pushes sent, by provider and outcome (ok or a PUSH_* code).',
        labelNames: ['provider', 'outcome'],
        registers: [registry],
      });
    this.sendSeconds =
      (registry.getSingleMetric('pushcall_push_send_seconds') as Histogram<'provider'> | undefined) ??
      new Histogram({
        name: 'pushcall_push_send_seconds',
        help: 'Time from send() to the provider answer, seconds.',
        labelNames: ['provider'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry],
      });
  }

  record(provider: string, outcome: string, latencyMs: number): void {
    this.total.inc({ provider, outcome });
    this.sendSeconds.observe({ provider }, latencyMs / 1000);
  }
}
