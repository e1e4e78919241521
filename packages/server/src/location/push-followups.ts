/**
 * What a push outcome changes in a binding (410 removes it; a token that answered in the
 * other APNs environment moves it there), applied to the binding as it is now. A push is in
 * flight for milliseconds to seconds, and the device may register again meanwhile: with the
 * same `+sip.instance` it keeps its binding id, with a new contact, expiry and perhaps a
 * rotated token. Acting on the copy taken when the push started would delete the device's
 * new registration (a late 410 for its old token) or write the old contact back.
 */

import type { Binding, BindingStore } from './types.js';

function sameToken(a: Binding, b: Binding): boolean {
  return a.push !== undefined && b.push !== undefined && a.push.provider === b.push.provider && a.push.prid === b.push.prid;
}

/** Remove the binding `pushed` names if it still carries the token that was pushed. */
export async function removeIfTokenUnchanged(store: BindingStore, pushed: Binding): Promise<boolean> {
  const current = await store.get(pushed.id);
  if (current === undefined || !sameToken(current, pushed)) return false;
  return store.remove(pushed.id);
}

/** Record the APNs environment a token answered in, if the binding still carries that token. */
export async function setPushEnvironment(store: BindingStore, pushed: Binding, environment: 'production' | 'sandbox'): Promise<boolean> {
  const current = await store.get(pushed.id);
  if (current?.push === undefined || !sameToken(current, pushed) || current.push.environment === environment) return false;
  await store.apply(current.aor, { upsert: [{ ...current, push: { ...current.push, environment } }], remove: [] });
  return true;
}
