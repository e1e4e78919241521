/**
 * Push gateway types: bindings (RFC 8599 pn-* parameters as stored by the registrar),
 * outcomes (values, never exceptions), and the injectable Clock (the SIP stack's).
 */

import type { PushPayload, RefreshPayload } from './payload.js';

export type ApnsEnvironment = 'production' | 'sandbox';

/** A push binding as stored by the registrar (RFC 8599 pn-provider / pn-prid / pn-param). */
export interface PushBinding {
  bindingId: string;
  aor: string;
  /** 'apns' | 'fcm' | 'webpush' | the name of a configured webhook provider. */
  provider: string;
  /** pn-prid: APNs device token (hex), FCM registration token, or Web Push subscription URI. */
  prid: string;
  /** pn-param: APNs `TEAMID.bundle.voip`; FCM project id; webpush `p256dh.auth` (base64url). */
  param?: string;
  /** APNs only: the environment the token belongs to (default production). */
  environment?: ApnsEnvironment;
  /** When the binding was (last) registered, ms since the epoch. */
  registeredAt: number;
}

/** Stable outcome codes. */
export type PushErrorCode =
  | 'PUSH_UNREGISTERED'
  | 'PUSH_BAD_TOKEN'
  | 'PUSH_TOKEN_NOT_FOR_TOPIC'
  | 'PUSH_ENVIRONMENT_MISMATCH'
  | 'PUSH_SENDER_ID_MISMATCH'
  | 'PUSH_RATE_LIMITED'
  | 'PUSH_BACKOFF'
  | 'PUSH_PROVIDER_AUTH'
  | 'PUSH_UNAVAILABLE'
  | 'PUSH_TIMEOUT'
  | 'PUSH_PAYLOAD_TOO_LARGE'
  | 'PUSH_BAD_REQUEST'
  | 'PUSH_UNSUPPORTED_PROVIDER'
  | 'PUSH_CLOSED';

export interface PushSuccess {
  ok: true;
  provider: string;
  /** APNs apns-id, FCM message name, webhook-supplied id. */
  id?: string;
  /** APNs sandbox only: apns-unique-id (Push Notifications Console key). */
  uniqueId?: string;
  latencyMs: number;
  status: number;
  /** APNs: the environment that accepted the push (differs from the binding's after a learned mix-up). */
  environment?: ApnsEnvironment;
}

export interface PushFailure {
  ok: false;
  provider: string;
  error: PushErrorCode;
  /** The provider's reason, e.g. 'Unregistered', 'UNREGISTERED', or a local reason. */
  reason: string;
  status?: number;
  /** The caller should delete the binding (token is dead). */
  removeBinding: boolean;
  /** When the provider asked to wait (Retry-After / local backoff window). */
  retryAfterMs?: number;
  latencyMs: number;
  /**
   * PUSH_ENVIRONMENT_MISMATCH only: the environment that accepted the token. The push WAS
   * delivered through it (`id` is its apns-id); the binding's environment should be corrected.
   */
  actualEnvironment?: ApnsEnvironment;
  id?: string;
}

export type PushOutcome = PushSuccess | PushFailure;

/**
 * A failure that still went out: a sandbox/production mix-up that APNs accepted through the
 * other environment (PUSH_ENVIRONMENT_MISMATCH with the apns-id it got there).
 */
export function deliveredInOtherEnvironment(failure: PushFailure): boolean {
  return failure.error === 'PUSH_ENVIRONMENT_MISMATCH' && failure.id !== undefined;
}

export interface SendOptions {
  /** Time budget for this push, ms (default: the provider's request timeout, 5 s). */
  deadlineMs?: number;
}

/** The injectable clock of the SIP stack (FakeClock in tests). */
export { type Clock, type TimerHandle, systemClock } from '@pushcall/sip';

/** A provider the gateway dispatches to. */
export interface PushProvider {
  readonly name: string;
  /** RFC 8292 application server key, for providers that sign with VAPID (Web Push). */
  readonly vapidPublicKey?: string;
  sendCall(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome>;
  sendAlert(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome>;
  /** RFC 8599 §5.5: ask the app to refresh its binding (silent, never a VoIP push). */
  sendRefresh(binding: PushBinding, payload: RefreshPayload, opts?: SendOptions): Promise<PushOutcome>;
  close(): Promise<void>;
}

/** Tokens never appear whole in logs: one implementation for the whole server. */
export { redactToken } from '../observability/redact.js';
