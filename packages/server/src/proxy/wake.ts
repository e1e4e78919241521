/**
 * The SIP Request Push Bucket (RFC 8599 §5.2): branches held while their device wakes.
 * A branch is released when "the same device" registers again, matched by binding id
 * (the registrar keeps the id for the same +sip.instance), then +sip.instance, then push
 * token (RFC 8599 §5.3 allows matching on the pn-* parameters alone). Every match is within
 * the AOR: a REGISTER of another user carrying the same token (a copied token, or a
 * multi-account app) must not receive this user's call.
 */

import type { Binding, PushRegistration } from '../location/types.js';

export interface WakeWaiter {
  readonly binding: Binding;
  /** Called once with the binding the device just registered (and when its REGISTER arrived). */
  wake(binding: Binding, registerReceivedAt?: number): void;
}

export class WakeRegistry {
  /**
   * Told when an AOR gets its first held branch and when its last one goes (multi-node: the
   * node then listens for, and stops listening for, that AOR's registrations at other nodes).
   */
  watcher: { watch(aor: string): void; unwatch(aor: string): void } | undefined;
  private readonly byBinding = new Map<string, Set<WakeWaiter>>();
  private readonly byInstance = new Map<string, Set<WakeWaiter>>();
  private readonly byToken = new Map<string, Set<WakeWaiter>>();
  private readonly perAor = new Map<string, number>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Held branches per AOR (for the per-AOR cap). */
  countForAor(aor: string): number {
    return this.perAor.get(aor) ?? 0;
  }

  add(waiter: WakeWaiter): void {
    const b = waiter.binding;
    addTo(this.byBinding, b.id, waiter);
    if (b.instanceId) addTo(this.byInstance, `${b.aor}\u0000${b.instanceId}`, waiter);
    if (b.push) addTo(this.byToken, tokenKey(b.aor, b.push), waiter);
    const held = this.perAor.get(b.aor) ?? 0;
    this.perAor.set(b.aor, held + 1);
    this.count++;
    if (held === 0) this.watcher?.watch(b.aor);
  }

  remove(waiter: WakeWaiter): void {
    const b = waiter.binding;
    if (!removeFrom(this.byBinding, b.id, waiter)) return;
    if (b.instanceId) removeFrom(this.byInstance, `${b.aor}\u0000${b.instanceId}`, waiter);
    if (b.push) removeFrom(this.byToken, tokenKey(b.aor, b.push), waiter);
    const n = (this.perAor.get(b.aor) ?? 1) - 1;
    if (n === 0) this.perAor.delete(b.aor);
    else this.perAor.set(b.aor, n);
    this.count--;
    if (n === 0) this.watcher?.unwatch(b.aor);
  }

  /** The device behind `binding` registered: release every branch waiting for it. */
  registered(binding: Binding, registerReceivedAt?: number): number {
    const found = new Set<WakeWaiter>();
    for (const w of this.byBinding.get(binding.id) ?? []) found.add(w);
    if (binding.instanceId) for (const w of this.byInstance.get(`${binding.aor}\u0000${binding.instanceId}`) ?? []) found.add(w);
    if (binding.push) for (const w of this.byToken.get(tokenKey(binding.aor, binding.push)) ?? []) found.add(w);
    for (const w of found) {
      this.remove(w);
      w.wake(binding, registerReceivedAt);
    }
    return found.size;
  }
}

function tokenKey(aor: string, push: PushRegistration): string {
  return `${aor}\u0000${push.provider}\u0000${push.prid}`;
}

function addTo<K>(map: Map<K, Set<WakeWaiter>>, key: K, w: WakeWaiter): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(w);
}

function removeFrom<K>(map: Map<K, Set<WakeWaiter>>, key: K, w: WakeWaiter): boolean {
  const set = map.get(key);
  if (!set || !set.delete(w)) return false;
  if (set.size === 0) map.delete(key);
  return true;
}
