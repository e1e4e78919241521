import type { Binding, BindingStore, StoreStats } from './types.js';

/**
 * In-memory bindings with the indexes the registrar and proxy need (by AOR, by id, by push
 * token). Used alone for tests and benchmarks, and as the read side of the SQLite store.
 */
export class MemoryBindingStore implements BindingStore {
  protected readonly byAor = new Map<string, Binding[]>();
  protected readonly byId = new Map<string, Binding>();
  /**
   * Push token (PRID) -> binding ids, nearly always one (a plain array is cheaper than a
   * Set). Keyed by the PRID alone, without the provider: a key joined from both was a new
   * 70-character string to build and hash per REGISTER; lookups check the provider.
   */
  protected readonly byToken = new Map<string, string[]>();
  /** PURR -> binding id (RFC 8599 §6.2.3). */
  protected readonly byPurr = new Map<string, string>();

  async lookup(aor: string, now: number): Promise<Binding[]> {
    return this.lookupSync(aor, now);
  }

  lookupSync(aor: string, now: number): Binding[] {
    const list = this.byAor.get(aor);
    if (!list) return [];
    return list.filter((b) => b.expiresAt > now);
  }

  async apply(aor: string, changes: { upsert: Binding[]; remove: string[] }): Promise<void> {
    this.applySync(aor, changes);
  }

  protected applySync(aor: string, changes: { upsert: Binding[]; remove: string[] }): void {
    checkAor(aor, changes.upsert);
    for (const id of changes.remove) this.removeSync(id);
    for (const binding of changes.upsert) this.putSync(binding);
  }

  /** Store `binding` under its id; returns the binding it replaced, if any. */
  protected putSync(binding: Binding): Binding | undefined {
    const previous = this.byId.get(binding.id);
    if (previous) this.unindex(previous);
    this.byId.set(binding.id, binding);
    const list = this.byAor.get(binding.aor);
    // A literal of one, not `[]` and a push: V8 grows an empty array to 17 slots on its
    // first push, and most AORs keep one binding for hours.
    if (!list) this.byAor.set(binding.aor, [binding]);
    else list.push(binding);
    if (binding.push) {
      const prid = binding.push.prid;
      const ids = this.byToken.get(prid);
      if (!ids) this.byToken.set(prid, [binding.id]);
      else if (!ids.includes(binding.id)) ids.push(binding.id);
    }
    if (binding.purrs) for (const purr of binding.purrs) this.byPurr.set(purr, binding.id);
    return previous;
  }

  protected removeSync(id: string): Binding | undefined {
    const binding = this.byId.get(id);
    if (!binding) return undefined;
    this.unindex(binding);
    this.byId.delete(id);
    return binding;
  }

  private unindex(binding: Binding): void {
    const list = this.byAor.get(binding.aor);
    if (list) {
      const i = list.findIndex((b) => b.id === binding.id);
      if (i !== -1) list.splice(i, 1);
      if (list.length === 0) this.byAor.delete(binding.aor);
    }
    if (binding.push) {
      const prid = binding.push.prid;
      const ids = this.byToken.get(prid);
      if (ids) {
        const i = ids.indexOf(binding.id);
        if (i !== -1) ids.splice(i, 1);
        if (ids.length === 0) this.byToken.delete(prid);
      }
    }
    if (binding.purrs) for (const purr of binding.purrs) if (this.byPurr.get(purr) === binding.id) this.byPurr.delete(purr);
  }

  async findByPushToken(provider: string, prid: string): Promise<Binding[]> {
    const ids = this.byToken.get(prid);
    if (!ids) return [];
    const out: Binding[] = [];
    for (const id of ids) {
      const b = this.byId.get(id);
      if (b !== undefined && b.push?.provider === provider) out.push(b);
    }
    return out;
  }

  async findByPurr(purr: string): Promise<Binding | undefined> {
    const id = this.byPurr.get(purr);
    return id === undefined ? undefined : this.byId.get(id);
  }

  async get(id: string): Promise<Binding | undefined> {
    return this.byId.get(id);
  }

  async remove(id: string): Promise<boolean> {
    return this.removeSync(id) !== undefined;
  }

  async sweep(now: number): Promise<Binding[]> {
    const expired: Binding[] = [];
    for (const binding of this.byId.values()) if (binding.expiresAt <= now) expired.push(binding);
    for (const b of expired) this.removeSync(b.id);
    return expired;
  }

  async stats(): Promise<StoreStats> {
    const byProvider: Record<string, number> = {};
    for (const b of this.byId.values()) {
      const p = b.push?.provider ?? 'none';
      byProvider[p] = (byProvider[p] ?? 0) + 1;
    }
    return { bindings: this.byId.size, aors: this.byAor.size, byProvider };
  }

  async all(): Promise<Binding[]> {
    return [...this.byId.values()];
  }

  async close(): Promise<void> {}
}

/** Every binding of a change set belongs to its AOR: checked before anything changes. */
export function checkAor(aor: string, upsert: readonly Binding[]): void {
  for (const binding of upsert) if (binding.aor !== aor) throw new Error(`binding ${binding.id} does not belong to ${aor}`);
}
