/**
 * Decoder for the pushcall push payload (version 1). It accepts every shape the payload
 * travels in and never throws: a malformed input yields `{ ok: false }` with a reason, and
 * the coordinator still reports such a VoIP push as "Unknown caller" and ends it at once.
 *
 * Shapes accepted:
 *   - APNs VoIP push dictionary:          { aps: {...}, pushcall: { ...payload } }
 *   - FCM data message (strings only):    { pushcall: "<JSON string of payload>" }
 *   - Web Push / webhook JSON:            { pushcall: { ...payload } }
 *   - any of the above as a JSON string, or wrapped in `{ data: ... }` (RemoteMessage) or
 *     `{ dictionaryPayload: ... }` (PKPushPayload bridged as an object).
 * Inside the payload, numbers and booleans given as strings ("true", "1700000000000") are
 * accepted too, because some relays flatten everything to strings.
 */

export const PAYLOAD_VERSION = 1;

export type PushType = 'call' | 'message' | 'missed_call' | 'answered_elsewhere' | 'declined_elsewhere';

const PUSH_TYPES: readonly PushType[] = ['call', 'message', 'missed_call', 'answered_elsewhere', 'declined_elsewhere'];

/** Payload v1, as the server sends it. */
export interface PushPayload {
  readonly v: number;
  readonly type: PushType;
  /** SIP Call-ID of the INVITE the device will receive. */
  readonly call_id: string;
  readonly from_name?: string;
  readonly from_uri: string;
  readonly to: string;
  readonly video: boolean;
  /** Milliseconds since the epoch, server clock. */
  readonly sent_at: number;
  /** Seconds. */
  readonly ttl: number;
  readonly text?: string;
}

/**
 * A refresh push (RFC 8599 §5.5): the server asks for a binding-refresh REGISTER before the
 * binding expires. It is about no call, so it has no call fields.
 */
export interface RefreshPush {
  readonly v: number;
  readonly type: 'refresh';
  /** The AOR whose binding is about to expire. */
  readonly to: string;
  readonly sent_at: number;
  /** Seconds until the binding expires. */
  readonly ttl: number;
}

export type InvalidPayloadReason =
  | 'not_an_object'
  | 'no_pushcall_key'
  | 'bad_json'
  | 'unsupported_version'
  | 'bad_type'
  | 'missing_call_id'
  | 'bad_field';

export type DecodedPush =
  | { readonly ok: true; readonly payload: PushPayload; readonly refresh?: undefined }
  | { readonly ok: true; readonly refresh: RefreshPush; readonly payload?: undefined }
  | {
      readonly ok: false;
      readonly reason: InvalidPayloadReason;
      readonly detail: string;
      /** Salvaged when present, so a broken push still maps to its call's UUID. */
      readonly callId?: string;
      readonly fromName?: string;
    };

/** Upper bound on a Call-ID we accept (RFC 3261 sets none; APNs limits payloads to 5 KB). */
const MAX_CALL_ID = 1024;
const MAX_TEXT = 4096;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

function asBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1' || value === 1) return true;
  if (value === 'false' || value === '0' || value === 0) return false;
  return undefined;
}

function optString(value: unknown, max: number): string | undefined | null {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length > max) return null;
  return value;
}

/** Locate the `pushcall` member in any supported envelope. */
function locate(raw: unknown, depth = 0): { found: unknown } | { error: InvalidPayloadReason; detail: string } {
  if (depth > 3) return { error: 'no_pushcall_key', detail: 'envelope nested too deeply' };
  if (typeof raw === 'string') {
    const parsed = tryJson(raw);
    if (parsed === undefined) return { error: 'bad_json', detail: 'push body is a string but not JSON' };
    return locate(parsed, depth + 1);
  }
  if (!isRecord(raw)) return { error: 'not_an_object', detail: `push body is ${raw === null ? 'null' : typeof raw}` };
  if ('pushcall' in raw) return { found: raw.pushcall };
  if (isRecord(raw.data) || typeof raw.data === 'string') return locate(raw.data, depth + 1);
  if (isRecord(raw.dictionaryPayload)) return locate(raw.dictionaryPayload, depth + 1);
  // A bare payload (no envelope) is tolerated.
  if (('call_id' in raw || raw.type === 'refresh') && 'type' in raw) return { found: raw };
  return { error: 'no_pushcall_key', detail: 'no "pushcall" member' };
}

/** Decode any push body. Never throws. */
export function decodePush(raw: unknown): DecodedPush {
  try {
    return decodeUnsafe(raw);
  } catch (e) {
    return { ok: false, reason: 'bad_field', detail: `decoder error: ${String(e)}` };
  }
}

function decodeUnsafe(raw: unknown): DecodedPush {
  const loc = locate(raw);
  if ('error' in loc) return { ok: false, reason: loc.error, detail: loc.detail };
  let body = loc.found;
  if (typeof body === 'string') {
    body = tryJson(body);
    if (body === undefined) return { ok: false, reason: 'bad_json', detail: '"pushcall" is a string but not JSON' };
  }
  if (!isRecord(body)) return { ok: false, reason: 'not_an_object', detail: '"pushcall" is not an object' };

  const salvage = {
    ...(typeof body.call_id === 'string' && body.call_id.length > 0 && body.call_id.length <= MAX_CALL_ID
      ? { callId: body.call_id }
      : {}),
    ...(typeof body.from_name === 'string' && body.from_name.length <= MAX_TEXT ? { fromName: body.from_name } : {}),
  };
  const bad = (reason: InvalidPayloadReason, detail: string): DecodedPush => ({ ok: false, reason, detail, ...salvage });

  const v = asNumber(body.v);
  if (v === undefined || !Number.isInteger(v) || v < PAYLOAD_VERSION) {
    return bad('unsupported_version', `v=${JSON.stringify(body.v)}`);
  }
  // Later versions may add fields; they must keep v1's, so v > 1 decodes as v1.
  const type = body.type;
  if (type === 'refresh') {
    if (typeof body.to !== 'string' || body.to.length === 0 || body.to.length > MAX_TEXT) return bad('bad_field', 'to');
    const sentAt = asNumber(body.sent_at);
    if (sentAt === undefined || sentAt < 0) return bad('bad_field', 'sent_at');
    const ttl = asNumber(body.ttl);
    if (ttl === undefined || ttl < 0) return bad('bad_field', 'ttl');
    return { ok: true, refresh: { v, type, to: body.to, sent_at: sentAt, ttl } };
  }
  if (typeof type !== 'string' || !(PUSH_TYPES as readonly string[]).includes(type)) {
    return bad('bad_type', `type=${JSON.stringify(type)}`);
  }
  if (typeof body.call_id !== 'string' || body.call_id.length === 0) return bad('missing_call_id', 'call_id missing or empty');
  if (body.call_id.length > MAX_CALL_ID) return bad('bad_field', 'call_id too long');
  if (typeof body.from_uri !== 'string' || body.from_uri.length > MAX_TEXT) return bad('bad_field', 'from_uri');
  if (typeof body.to !== 'string' || body.to.length > MAX_TEXT) return bad('bad_field', 'to');
  const video = asBoolean(body.video);
  if (video === undefined) return bad('bad_field', 'video');
  const sentAt = asNumber(body.sent_at);
  if (sentAt === undefined || sentAt < 0) return bad('bad_field', 'sent_at');
  const ttl = asNumber(body.ttl);
  if (ttl === undefined || ttl < 0) return bad('bad_field', 'ttl');
  const fromName = optString(body.from_name, MAX_TEXT);
  if (fromName === null) return bad('bad_field', 'from_name');
  const text = optString(body.text, MAX_TEXT);
  if (text === null) return bad('bad_field', 'text');

  const payload: PushPayload = {
    v,
    type: type as PushType,
    call_id: body.call_id,
    from_uri: body.from_uri,
    to: body.to,
    video,
    sent_at: sentAt,
    ttl,
    ...(fromName !== undefined ? { from_name: fromName } : {}),
    ...(text !== undefined ? { text } : {}),
  };
  return { ok: true, payload };
}

/** True when `sent_at + ttl` is in the past at `now` (ms), allowing `graceMs` of clock skew. */
export function isExpired(payload: PushPayload, now: number, graceMs = 0): boolean {
  return payload.sent_at + payload.ttl * 1000 + graceMs < now;
}

/** Encode a payload in the FCM data-message shape (all values strings). For tests and servers. */
export function toFcmData(payload: PushPayload): Record<string, string> {
  return { pushcall: JSON.stringify(payload) };
}

/** Encode a payload as an APNs VoIP push dictionary. For tests and servers. */
export function toApnsDictionary(payload: PushPayload): Record<string, unknown> {
  return { aps: {}, pushcall: payload };
}
