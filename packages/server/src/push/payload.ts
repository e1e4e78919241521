/**
 * The pushcall payload, version 1. FIXED: the client SDK decodes exactly this
 * (docs/push-payload.md). Do not add required fields or change names without bumping `v`.
 *
 * Carried as:
 *  - APNs: `{"aps": {...}, "pushcall": <payload>}` (VoIP: `aps` is `{}`; alert kinds get
 *    `aps.alert {title, body}`, `sound`, `thread-id` = call_id);
 *  - FCM: `message.data = {"pushcall": JSON.stringify(payload)}` (data-only, strings);
 *  - Web Push / webhook: JSON `{"pushcall": <payload>}`.
 */

import { PushPayloadError } from './errors.js';
import { systemClock } from './types.js';
import type { Clock } from './types.js';

export const PAYLOAD_VERSION = 1 as const;

export type PushKind = 'call' | 'message' | 'missed_call' | 'answered_elsewhere' | 'declined_elsewhere';
export const PUSH_KINDS: readonly PushKind[] = ['call', 'message', 'missed_call', 'answered_elsewhere', 'declined_elsewhere'];

export interface PushPayload {
  v: 1;
  type: PushKind;
  /** SIP Call-ID of the INVITE the device will receive. */
  call_id: string;
  from_name?: string;
  from_uri: string;
  /** Callee AOR. */
  to: string;
  video: boolean;
  /** ms since the epoch. */
  sent_at: number;
  /** seconds. */
  ttl: number;
  /** MESSAGE preview or alert text. */
  text?: string;
}

export const PAYLOAD_LIMITS = {
  apnsVoip: 5120,
  apnsAlert: 4096,
  fcmData: 4096,
  /** 4096-byte aes128gcm record minus header (86), tag (16) and padding delimiter (1). */
  webpush: 3993,
  webhook: 65536,
} as const;

export interface BuildPayloadInput {
  type: PushKind;
  callId: string;
  fromUri: string;
  fromName?: string;
  to: string;
  video?: boolean;
  /** seconds, default 30. */
  ttl?: number;
  text?: string;
  /** ms epoch, default clock.now(). */
  sentAt?: number;
}

export function buildPayload(input: BuildPayloadInput, clock: Clock = systemClock): PushPayload {
  const p: PushPayload = {
    v: PAYLOAD_VERSION,
    type: input.type,
    call_id: input.callId,
    from_uri: input.fromUri,
    to: input.to,
    video: input.video ?? false,
    sent_at: Math.round(input.sentAt ?? clock.now()),
    ttl: input.ttl ?? 30,
  };
  if (input.fromName !== undefined && input.fromName !== '') p.from_name = input.fromName;
  if (input.text !== undefined && input.text !== '') p.text = input.text;
  validatePayload(p);
  return p;
}

/** The fields every v1 payload has: an object with `v: 1`, `sent_at` and `ttl`. */
function checkV1(p: unknown): Record<string, unknown> {
  if (typeof p !== 'object' || p === null) throw new PushPayloadError('payload must be an object');
  const o = p as Record<string, unknown>;
  if (o.v !== 1) throw new PushPayloadError('payload.v must be 1');
  if (typeof o.sent_at !== 'number' || !Number.isFinite(o.sent_at)) throw new PushPayloadError('payload.sent_at must be a number (ms epoch)');
  if (typeof o.ttl !== 'number' || !Number.isFinite(o.ttl) || o.ttl < 0) throw new PushPayloadError('payload.ttl must be a non-negative number (seconds)');
  return o;
}

/** Throws PushPayloadError when the object does not follow the v1 schema. */
export function validatePayload(p: unknown): asserts p is PushPayload {
  const o = checkV1(p);
  if (typeof o.type !== 'string' || !PUSH_KINDS.includes(o.type as PushKind)) throw new PushPayloadError(`payload.type must be one of ${PUSH_KINDS.join(', ')}`);
  for (const k of ['call_id', 'from_uri', 'to'] as const) {
    if (typeof o[k] !== 'string' || (o[k] as string).length === 0) throw new PushPayloadError(`payload.${k} must be a non-empty string`);
  }
  for (const k of ['from_name', 'text'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'string') throw new PushPayloadError(`payload.${k} must be a string`);
  }
  if (typeof o.video !== 'boolean') throw new PushPayloadError('payload.video must be a boolean');
}

/** The user-visible alert for APNs alert pushes. */
export function apnsAlertFor(p: PushPayload): { title: string; body: string } {
  const who = p.from_name ?? p.from_uri;
  switch (p.type) {
    case 'missed_call':
      return { title: 'Missed call', body: p.text ?? who };
    case 'answered_elsewhere':
      return { title: 'Call answered elsewhere', body: p.text ?? who };
    case 'declined_elsewhere':
      return { title: 'Call declined elsewhere', body: p.text ?? who };
    case 'message':
      return { title: who, body: p.text ?? '' };
    case 'call':
      return { title: p.video ? 'Incoming video call' : 'Incoming call', body: p.text ?? who };
  }
}

export type EncodeResult<T, P = PushPayload> =
  | { ok: true; value: T; bytes: number; truncated: boolean; payload: P }
  | { ok: false; bytes: number; limit: number };

const enc = new TextEncoder();
function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Cut a string to at most `maxBytes` UTF-8 bytes at a code-point boundary, adding '…'. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (byteLength(s) <= maxBytes) return s;
  const ell = '…'; // 3 bytes
  if (maxBytes < 3) return '';
  let out = '';
  let used = 0;
  for (const ch of s) {
    const b = enc.encode(ch).length;
    if (used + b > maxBytes - 3) break;
    out += ch;
    used += b;
  }
  return out + ell;
}

/**
 * Encode, and when over `limit`, shorten `text` then `from_name` until it fits. Returns
 * ok:false when even without them the payload is too large.
 */
function fit<T>(payload: PushPayload, limit: number, encode: (p: PushPayload) => { value: T; bytes: number }): EncodeResult<T> {
  let p = payload;
  let r = encode(p);
  if (r.bytes <= limit) return { ok: true, value: r.value, bytes: r.bytes, truncated: false, payload: p };
  for (const field of ['text', 'from_name'] as const) {
    for (let i = 0; i < 24 && r.bytes > limit; i++) {
      const cur = p[field];
      if (cur === undefined) break;
      const over = r.bytes - limit;
      const target = byteLength(cur) - over;
      const next = { ...p };
      if (target <= 3) delete next[field];
      else next[field] = truncateUtf8(cur, target);
      p = next;
      r = encode(p);
    }
    if (r.bytes <= limit) return { ok: true, value: r.value, bytes: r.bytes, truncated: true, payload: p };
  }
  return { ok: false, bytes: r.bytes, limit };
}

/** APNs body. VoIP pushes get `aps: {}`; alert pushes get alert/sound/thread-id. */
export function encodeApns(payload: PushPayload, opts: { voip: boolean }): EncodeResult<string> {
  const limit = opts.voip ? PAYLOAD_LIMITS.apnsVoip : PAYLOAD_LIMITS.apnsAlert;
  return fit(payload, limit, (p) => {
    let aps: Record<string, unknown> = {};
    if (!opts.voip) {
      aps = { alert: apnsAlertFor(p), 'thread-id': p.call_id };
      if (p.type === 'missed_call' || p.type === 'message' || p.type === 'call') aps.sound = 'default';
    }
    const body = JSON.stringify({ aps, pushcall: p });
    return { value: body, bytes: byteLength(body) };
  });
}

/** FCM `message.data`: one key, `pushcall`, whose value is the JSON payload. */
export function encodeFcmData(payload: PushPayload): EncodeResult<Record<string, string>> {
  return fit(payload, PAYLOAD_LIMITS.fcmData, (p) => {
    const json = JSON.stringify(p);
    return { value: { pushcall: json }, bytes: byteLength('pushcall') + byteLength(json) };
  });
}

/** Web Push / webhook JSON `{"pushcall": payload}`. */
export function encodeJson(payload: PushPayload, limit: number = PAYLOAD_LIMITS.webpush): EncodeResult<string> {
  return fit(payload, limit, (p) => {
    const body = JSON.stringify({ pushcall: p });
    return { value: body, bytes: byteLength(body) };
  });
}

/**
 * A refresh push (RFC 8599 §5.5): asks the app for a binding-refresh REGISTER before its
 * binding expires. It is not about a call, so it has none of the call fields, and it is never
 * a VoIP push (iOS requires every VoIP push to report a call).
 */
export interface RefreshPayload {
  v: 1;
  type: 'refresh';
  /** The AOR whose binding is about to expire. */
  to: string;
  /** ms since the epoch. */
  sent_at: number;
  /** Seconds until the binding expires: a refresh that arrives later is useless. */
  ttl: number;
}

export function buildRefreshPayload(input: { to: string; ttl: number; sentAt?: number }, clock: Clock = systemClock): RefreshPayload {
  const p: RefreshPayload = { v: PAYLOAD_VERSION, type: 'refresh', to: input.to, sent_at: Math.round(input.sentAt ?? clock.now()), ttl: Math.max(0, Math.floor(input.ttl)) };
  validateRefreshPayload(p);
  return p;
}

export function validateRefreshPayload(p: unknown): asserts p is RefreshPayload {
  const o = checkV1(p);
  if (o.type !== 'refresh') throw new PushPayloadError("a refresh payload has type 'refresh'");
  if (typeof o.to !== 'string' || o.to.length === 0) throw new PushPayloadError('payload.to must be a non-empty string');
}

/**
 * A refresh payload as each carrier wants it: APNs `background` (`content-available: 1`, no
 * alert, so iOS wakes the app silently), FCM data, or JSON for Web Push and webhooks. There is
 * nothing to shorten: only an absurdly long AOR makes it too large.
 */
export function encodeRefresh(payload: RefreshPayload, carrier: 'apns'): EncodeResult<string, RefreshPayload>;
export function encodeRefresh(payload: RefreshPayload, carrier: 'fcm'): EncodeResult<Record<string, string>, RefreshPayload>;
export function encodeRefresh(payload: RefreshPayload, carrier: 'json', limit?: number): EncodeResult<string, RefreshPayload>;
export function encodeRefresh(payload: RefreshPayload, carrier: 'apns' | 'fcm' | 'json', limit?: number): EncodeResult<string | Record<string, string>, RefreshPayload> {
  const done = <T>(value: T, bytes: number, max: number): EncodeResult<T, RefreshPayload> =>
    bytes <= max ? { ok: true, value, bytes, truncated: false, payload } : { ok: false, bytes, limit: max };
  const json = JSON.stringify(payload);
  if (carrier === 'fcm') return done({ pushcall: json }, byteLength('pushcall') + byteLength(json), PAYLOAD_LIMITS.fcmData);
  if (carrier === 'apns') {
    const body = `{"aps":{"content-available":1},"pushcall":${json}}`;
    return done(body, byteLength(body), PAYLOAD_LIMITS.apnsAlert);
  }
  const body = `{"pushcall":${json}}`;
  return done(body, byteLength(body), limit ?? PAYLOAD_LIMITS.webpush);
}
