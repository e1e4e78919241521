/**
 * Offline messages (store and forward, as Flexisip does): a MESSAGE (RFC 3428) whose pushed
 * devices slept through the alert push is answered 202 Accepted (the request was accepted
 * for delivery, not yet delivered) and kept; each of those devices gets it when it
 * registers again, as a new request from this proxy with the sender's From, To, Call-ID,
 * CSeq and body. Delivery is at least once: a device that registers twice while a delivery
 * is in flight is not sent it twice, but a 2xx lost on the way brings it again at the next
 * registration (its Call-ID lets the app tell).
 */

import { type SipRequest, isRequest, parseMessage, randomToken } from '@pushcall/sip';
import type { MessageStore, StoredMessage } from '../location/messages.js';
import type { Binding } from '../location/types.js';
import type { ProxyCore } from './proxy.js';
import { retargetToBinding } from './routing.js';

/** What identifies a device across its registrations: `+sip.instance`, else its push token. */
export function deviceKey(binding: Binding): string {
  if (binding.instanceId !== undefined) return binding.instanceId;
  return binding.push ? `${binding.push.provider}:${binding.push.prid}` : binding.id;
}

/** Responses after which a device is tried again at its next registration. */
const TRY_AGAIN = new Set([408, 480, 500, 503]);

export type KeepOutcome = 'stored' | 'full' | 'too-large' | 'failed';

export class OfflineMessages {
  /** `<message id>|<device>` being delivered now. */
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly proxy: ProxyCore,
    readonly store: MessageStore,
  ) {}

  private get settings() {
    return this.proxy.config.proxy.offlineMessages;
  }

  /** Keep `request` (for `aor`) for `devices`, to deliver when they register. */
  async keep(request: SipRequest, aor: string, devices: readonly Binding[]): Promise<KeepOutcome> {
    const data = request.toBuffer();
    if (data.length > this.settings.maxBytes) return this.count('too-large');
    const now = this.proxy.clock.now();
    const message: StoredMessage = {
      id: randomToken(12),
      aor,
      storedAt: now,
      expiresAt: now + this.settings.keepSeconds * 1000,
      devices: [...new Set(devices.map(deviceKey))],
      request: data.toString('latin1'),
    };
    try {
      return this.count((await this.store.add(message, this.settings.maxPerUser, now)) ? 'stored' : 'full');
    } catch (error) {
      this.proxy.logger.warn({ err: (error as Error).message, aor }, 'cannot keep an offline message');
      return this.count('failed');
    }
  }

  /** A device registered: send it what it is owed, oldest first. */
  async deliverTo(binding: Binding): Promise<void> {
    const device = deviceKey(binding);
    const owed = (await this.store.forAor(binding.aor, this.proxy.clock.now())).filter((m) => m.devices.includes(device));
    for (const message of owed) this.send(message, binding, device);
  }

  private send(message: StoredMessage, binding: Binding, device: string): void {
    const key = `${message.id}|${device}`;
    if (this.inFlight.has(key)) return;
    const proxy = this.proxy;
    const out = parseMessage(Buffer.from(message.request, 'latin1'));
    if (!isRequest(out)) return;
    // The sender's hops ended with our 202: this is a new request from us.
    for (const name of ['via', 'route', 'record-route', 'authorization', 'proxy-authorization']) out.remove(name);
    out.set('Max-Forwards', '70');
    if (!retargetToBinding(out, binding)) return;
    this.inFlight.add(key);
    const done = (outcome: 'delivered' | 'rejected' | 'unreachable') => {
      this.inFlight.delete(key);
      proxy.metrics.offlineMessages.inc({ event: outcome });
      proxy.logger.debug({ aor: message.aor, message: message.id, outcome }, 'offline message');
      if (outcome !== 'unreachable') {
        // Delivered, or refused by the device for good (a 4xx–6xx): either way it is done there.
        this.store.delivered(message, device).catch((error: unknown) => proxy.logger.warn({ err: (error as Error).message }, 'cannot update an offline message'));
      }
    };
    Promise.resolve(proxy.deviceDestination(out, binding)).then(
      (dest) => {
        proxy.layer.request(
          out,
          dest,
          {
            onResponse: (response) => {
              if (response.status < 200) return;
              // Not reached after all (it went away again, or is busy): kept for its next registration.
              if (TRY_AGAIN.has(response.status)) done('unreachable');
              else done(response.status < 300 ? 'delivered' : 'rejected');
            },
            onTimeout: () => done('unreachable'),
            onTransportError: () => done('unreachable'),
          },
        );
      },
      () => done('unreachable'),
    );
  }

  async sweep(now: number): Promise<number> {
    const dropped = await this.store.sweep(now);
    if (dropped > 0) this.proxy.metrics.offlineMessages.inc({ event: 'expired' }, dropped);
    return dropped;
  }

  private count(outcome: KeepOutcome): KeepOutcome {
    this.proxy.metrics.offlineMessages.inc({ event: outcome });
    return outcome;
  }
}
