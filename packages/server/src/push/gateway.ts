/**
 * PushGateway: dispatches a push to the binding's provider (apns | fcm | webpush | a named
 * webhook), records metrics and an `outcome` event. Outcomes are values; only programming
 * errors throw.
 */

import type { Registry } from 'prom-client';
import { PushPayloadError } from './errors.js';
import { makeEmitter } from './events.js';
import type { Emit, PushHooks, PushLogger } from './events.js';
import { PushMetrics } from './metrics.js';
import { validatePayload, validateRefreshPayload } from './payload.js';
import type { PushPayload, RefreshPayload } from './payload.js';
import { redactToken, systemClock } from './types.js';
import type { Clock, PushBinding, PushOutcome, PushProvider, SendOptions } from './types.js';

export interface PushGatewayOptions {
  /** Providers by name (binding.provider). */
  providers: PushProvider[];
  registry?: Registry;
  clock?: Clock;
  hooks?: PushHooks;
  logger?: PushLogger;
}

export class PushGateway {
  private readonly providers = new Map<string, PushProvider>();
  readonly metrics: PushMetrics;
  private readonly clock: Clock;
  private readonly emit: Emit;
  private closed = false;

  constructor(opts: PushGatewayOptions) {
    for (const p of opts.providers) this.providers.set(p.name, p);
    this.metrics = new PushMetrics(opts.registry);
    this.clock = opts.clock ?? systemClock;
    this.emit = makeEmitter(opts.hooks, opts.logger);
  }

  supportedProviders(): string[] {
    return [...this.providers.keys()];
  }

  provider(name: string): PushProvider | undefined {
    return this.providers.get(name);
  }

  /** The VAPID public key of a provider that signs with one (RFC 8599 `+sip.vapid`). */
  vapidPublicKey(provider: string): string | undefined {
    return this.providers.get(provider)?.vapidPublicKey;
  }

  /** The one VoIP / high-priority wake push for a call (payload.type must be 'call'). */
  sendCall(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome> {
    validatePayload(payload);
    if (payload.type !== 'call') throw new PushPayloadError(`sendCall needs payload.type 'call' (got '${payload.type}'); use sendAlert`);
    return this.dispatch(binding, (p) => p.sendCall(binding, payload, opts));
  }

  /** Regular alert push: missed call, answered / declined elsewhere, message. */
  sendAlert(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome> {
    validatePayload(payload);
    return this.dispatch(binding, (p) => p.sendAlert(binding, payload, opts));
  }

  /** Refresh push (RFC 8599 §5.5): the app should send a binding-refresh REGISTER. */
  sendRefresh(binding: PushBinding, payload: RefreshPayload, opts?: SendOptions): Promise<PushOutcome> {
    validateRefreshPayload(payload);
    return this.dispatch(binding, (p) => p.sendRefresh(binding, payload, opts));
  }

  private async dispatch(binding: PushBinding, run: (p: PushProvider) => Promise<PushOutcome>): Promise<PushOutcome> {
    const t0 = this.clock.monotonic();
    const provider = this.providers.get(binding.provider);
    let outcome: PushOutcome;
    if (this.closed) {
      outcome = { ok: false, provider: binding.provider, error: 'PUSH_CLOSED', reason: 'gateway closed', removeBinding: false, latencyMs: 0 };
    } else if (!provider) {
      outcome = { ok: false, provider: binding.provider, error: 'PUSH_UNSUPPORTED_PROVIDER', reason: `no provider '${binding.provider}' configured`, removeBinding: false, latencyMs: 0 };
    } else {
      try {
        outcome = await run(provider);
      } catch (e) {
        if (e instanceof PushPayloadError) throw e;
        // A provider bug must not take the call down: report it as unavailable.
        outcome = { ok: false, provider: binding.provider, error: 'PUSH_UNAVAILABLE', reason: `provider error: ${(e as Error).message}`, removeBinding: false, latencyMs: this.clock.monotonic() - t0 };
      }
    }
    const code = outcome.ok ? 'ok' : outcome.error;
    this.metrics.record(outcome.provider, code, outcome.latencyMs);
    this.emit({ type: 'outcome', provider: outcome.provider, token: redactToken(binding.prid), ok: outcome.ok, code, latencyMs: outcome.latencyMs });
    return outcome;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.providers.values()].map((p) => p.close()));
  }
}
