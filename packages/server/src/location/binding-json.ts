/**
 * A binding as the JSON text the SQLite store keeps per row. `JSON.stringify` walks the
 * object generically and cost 2–3 µs per binding, one of the larger items of a REGISTER;
 * writing the known shape costs about a third of that. `JSON.parse` reads it back.
 *
 * BINDING_KEYS makes the compiler list every Binding field here: a field added to Binding
 * without being added below fails to compile, and the codec test checks that the text
 * parses back to what `JSON.stringify` would have stored.
 */

import type { Binding, BindingFlow, PushRegistration } from './types.js';

export const BINDING_KEYS = {
  id: true, aor: true, contact: true, instanceId: true, regId: true, q: true, callId: true, cseq: true,
  expiresAt: true, registeredAt: true, updatedAt: true, path: true, flow: true, push: true, pnsreg: true,
  purrs: true, purrIssuedAt: true, userAgent: true,
} as const satisfies Record<keyof Binding, true>;

export const FLOW_KEYS = {
  protocol: true, remoteAddress: true, remotePort: true, localAddress: true, localPort: true, connectionId: true, nodeId: true, nodeUri: true,
} as const satisfies Record<keyof BindingFlow, true>;

export const PUSH_KEYS = {
  provider: true, prid: true, param: true, environment: true, environmentDeclared: true, alertPrid: true, form: true,
} as const satisfies Record<keyof PushRegistration, true>;

/** Characters JSON must escape (RFC 8259 §7), and lone surrogates, which JSON.stringify escapes too. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function str(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

function num(value: number): string {
  // JSON has no NaN or Infinity; JSON.stringify writes null for them, and so does this.
  return Number.isFinite(value) ? `${value}` : 'null';
}

function strings(values: readonly string[]): string {
  if (values.length === 0) return '[]';
  let out = `[${str(values[0])}`;
  for (let i = 1; i < values.length; i++) out += `,${str(values[i])}`;
  return `${out}]`;
}

export function encodeBinding(b: Binding): string {
  let out = `{"id":${str(b.id)},"aor":${str(b.aor)},"contact":${str(b.contact)}`;
  if (b.instanceId !== undefined) out += `,"instanceId":${str(b.instanceId)}`;
  if (b.regId !== undefined) out += `,"regId":${num(b.regId)}`;
  if (b.q !== undefined) out += `,"q":${num(b.q)}`;
  out += `,"callId":${str(b.callId)},"cseq":${num(b.cseq)},"expiresAt":${num(b.expiresAt)},"registeredAt":${num(b.registeredAt)},"updatedAt":${num(b.updatedAt)}`;
  out += `,"path":${strings(b.path)}`;
  const f = b.flow;
  out += `,"flow":{"protocol":${str(f.protocol)},"remoteAddress":${str(f.remoteAddress)},"remotePort":${num(f.remotePort)},"localAddress":${str(f.localAddress)},"localPort":${num(f.localPort)}`;
  if (f.connectionId !== undefined) out += `,"connectionId":${str(f.connectionId)}`;
  out += `,"nodeId":${str(f.nodeId)}`;
  if (f.nodeUri !== undefined) out += `,"nodeUri":${str(f.nodeUri)}`;
  out += '}';
  const p = b.push;
  if (p !== undefined) {
    out += `,"push":{"provider":${str(p.provider)},"prid":${str(p.prid)}`;
    if (p.param !== undefined) out += `,"param":${str(p.param)}`;
    if (p.environment !== undefined) out += `,"environment":${str(p.environment)}`;
    if (p.environmentDeclared !== undefined) out += `,"environmentDeclared":${p.environmentDeclared}`;
    if (p.alertPrid !== undefined) out += `,"alertPrid":${str(p.alertPrid)}`;
    out += `,"form":${str(p.form)}}`;
  }
  out += `,"pnsreg":${b.pnsreg}`;
  if (b.purrs !== undefined) out += `,"purrs":${strings(b.purrs)}`;
  if (b.purrIssuedAt !== undefined) out += `,"purrIssuedAt":${num(b.purrIssuedAt)}`;
  if (b.userAgent !== undefined) out += `,"userAgent":${str(b.userAgent)}`;
  return `${out}}`;
}
