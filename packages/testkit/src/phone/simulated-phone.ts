/**
 * A simulated phone: our SIP user agent + the client SDK's CallCoordinator + a simulated
 * iOS (PushKit/CallKit rules enforced) or Android (FCM/ConnectionService). It registers
 * with RFC 8599 parameters, goes to sleep (socket closed), and is woken only by a push the
 * APNs/FCM emulator delivers, exactly like an app on a real device.
 */

import { randomBytes, randomUUID } from 'node:crypto';
import { CallCoordinator, type CoordinatorEvent, apnsPushConfig, fcmPushConfig } from '@pushcall/client';
import { type Clock, systemClock } from '@pushcall/sip';
import type { ApnsEmulator } from '../emulators/apns-emulator.js';
import type { FcmEmulator } from '../emulators/fcm-emulator.js';
import { LAB_BUNDLE_ID, LAB_FCM_PROJECT, LAB_TEAM_ID } from '../lab.js';
import { SimulatedAndroid } from '../platform/simulated-android.js';
import { SimulatedIos } from '../platform/simulated-ios.js';
import { SipUserAgent } from './sip-ua.js';

export type AnswerBehaviour = { kind: 'answer'; afterMs: number } | { kind: 'decline'; afterMs: number } | { kind: 'ignore' };

export interface SimulatedPhoneOptions {
  name: string;
  platform: 'ios' | 'android';
  user: string;
  password?: string;
  domain: string;
  server: { protocol: 'udp' | 'tcp' | 'ws'; address: string; port: number };
  apns?: ApnsEmulator;
  apnsSandbox?: ApnsEmulator;
  fcm?: FcmEmulator;
  sandbox?: boolean;
  clock?: Clock;
  /** Time from push delivery to the app's REGISTER (process launch, network). */
  launchDelayMs?: number;
  answer?: AnswerBehaviour;
  /** Hang up this long after the call connects (0 = stay connected). */
  talkMs?: number;
  /** Close the socket again this long after a call ends (the app is suspended again). */
  sleepAfterMs?: number;
  /** Expires of the app's REGISTERs. Default 3600. */
  registerExpires?: number;
  /**
   * iOS: also register for remote notifications and send that token with the PushKit one,
   * so the server can send missed-call alerts and refresh pushes (RFC 8599 §5.5).
   */
  alertToken?: boolean;
}

/** One line of the phone's own story of a call, for ladder diagrams. */
export interface PhoneEvent {
  at: number;
  what: string;
  callId?: string;
}

export class SimulatedPhone {
  readonly name: string;
  readonly ua: SipUserAgent;
  readonly os: SimulatedIos | SimulatedAndroid;
  readonly coordinator: CallCoordinator;
  readonly token: string;
  /** iOS with `alertToken`: the remote-notification token. */
  readonly alertToken: string | undefined;
  readonly events: PhoneEvent[] = [];
  private readonly clock: Clock;
  private readonly options: SimulatedPhoneOptions;
  private unsubscribe: (() => void) | undefined;
  private answered = new Set<string>();

  constructor(options: SimulatedPhoneOptions) {
    this.options = options;
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.ua = new SipUserAgent({
      user: options.user,
      password: options.password,
      domain: options.domain,
      server: options.server,
      instanceId: `urn:uuid:${randomUUID()}`,
      clock: this.clock,
      userAgent: `pushcall-sim-${options.platform}`,
      expires: options.registerExpires ?? 3600,
      wakeDelayMs: options.launchDelayMs ?? 150,
    });
    this.os = options.platform === 'ios' ? new SimulatedIos({ clock: this.clock, name: options.name }) : new SimulatedAndroid({ clock: this.clock, name: options.name });
    this.token = options.platform === 'ios' ? randomBytes(32).toString('hex') : `fcm-${randomBytes(24).toString('base64url')}`;
    this.alertToken = options.platform === 'ios' && options.alertToken ? randomBytes(32).toString('hex') : undefined;
    this.coordinator = new CallCoordinator({
      ui: this.os,
      push: this.os.push,
      sip: this.ua,
      clock: this.clock,
      pushConfig: options.platform === 'ios' ? apnsPushConfig({ teamId: LAB_TEAM_ID, bundleId: LAB_BUNDLE_ID, sandbox: options.sandbox }) : fcmPushConfig(LAB_FCM_PROJECT),
    });
    this.coordinator.events.subscribe((e) => this.onCoordinatorEvent(e));
  }

  private log(what: string, callId?: string): void {
    this.events.push({ at: this.clock.now(), what, callId });
  }

  /** Install the app: get a push token, register, then go to sleep. */
  async start(): Promise<void> {
    const o = this.options;
    if (o.platform === 'ios') {
      const emulator = o.sandbox ? o.apnsSandbox : o.apns;
      if (!emulator) throw new Error('an iOS phone needs the APNs emulator');
      emulator.registerDevice({ token: this.token, bundleId: LAB_BUNDLE_ID, environment: o.sandbox ? 'sandbox' : 'production' });
      const unsubscribeVoip = emulator.subscribe(this.token, (push) => this.onApnsPush(push.payload, push.pushType));
      const alertToken = this.alertToken;
      if (alertToken !== undefined) {
        emulator.registerDevice({ token: alertToken, bundleId: LAB_BUNDLE_ID, environment: o.sandbox ? 'sandbox' : 'production' });
        const unsubscribeAlert = emulator.subscribe(alertToken, (push) => this.onApnsAlert(push.payload, push.pushType));
        this.coordinator.setAlertToken(alertToken);
        this.unsubscribe = () => {
          unsubscribeVoip();
          unsubscribeAlert();
        };
      } else this.unsubscribe = unsubscribeVoip;
    } else {
      if (!o.fcm) throw new Error('an Android phone needs the FCM emulator');
      this.unsubscribe = o.fcm.subscribe(this.token, (message) => this.onFcm(message.data));
    }
    this.coordinator.start();
    const registered = this.waitForRegistration();
    if (this.os instanceof SimulatedIos) this.os.deliverToken(this.token);
    else this.os.deliverToken(this.token);
    await registered;
    this.log('registered');
  }

  private waitForRegistration(): Promise<void> {
    return new Promise((resolve, reject) => {
      const off = this.coordinator.events.subscribe((e) => {
        if (e.type !== 'registration') return;
        off();
        if (e.state.state === 'registered') resolve();
        else reject(new Error(`${this.name}: registration ${e.state.state}`));
      });
    });
  }

  /** The app is suspended: its socket closes. */
  async sleep(): Promise<void> {
    await this.ua.sleep();
    this.log('asleep');
  }

  private onApnsPush(payload: unknown, pushType: string | undefined): void {
    if (pushType !== 'voip') {
      this.log(`alert push (${describe(payload)})`);
      return;
    }
    this.launchThen(() => {
      const result = (this.os as SimulatedIos).deliverVoipPush(payload);
      this.log(`VoIP push${result.reported ? ' → reported to CallKit' : ''}${result.killed ? ' → APP KILLED' : ''}`, callIdOf(payload));
    });
  }

  /** A regular notification on the alert token: the app runs its remote-notification handler. */
  private onApnsAlert(payload: unknown, pushType: string | undefined): void {
    this.log(`${pushType ?? 'alert'} push (${describe(payload)})`);
    this.launchThen(() => (this.os as SimulatedIos).deliverRemoteNotification(payload));
  }

  private onFcm(data: Record<string, string>): void {
    this.launchThen(() => {
      (this.os as SimulatedAndroid).deliverFcm(data);
      this.log('FCM data message → ConnectionService', callIdOf(data));
    });
  }

  /** The OS hands the push to the app at once; the app's network comes up after a delay. */
  private launchThen(deliver: () => void): void {
    deliver();
  }

  private onCoordinatorEvent(e: CoordinatorEvent): void {
    if (e.type !== 'transition') return;
    const callId = this.coordinator.call(e.uuid)?.callId;
    if (e.to === 'pushed' || e.to === 'ringing') {
      if (e.to === 'ringing') this.log('INVITE matched, ringing', callId);
      const answer = this.options.answer ?? { kind: 'answer', afterMs: 200 };
      if (answer.kind !== 'ignore' && !this.answered.has(e.uuid)) {
        this.answered.add(e.uuid);
        this.clock.setTimeout(() => {
          const call = this.coordinator.call(e.uuid);
          if (!call || call.state === 'ended') return;
          if (answer.kind === 'answer') {
            this.log('user taps Answer', callId);
            this.os.userAnswers(e.uuid);
          } else {
            this.log('user taps Decline', callId);
            this.os.userDeclines(e.uuid);
          }
        }, answer.afterMs);
      }
    }
    if (e.to === 'active') {
      this.log('connected (audio after activation)', callId);
      if (this.options.talkMs) this.clock.setTimeout(() => this.os.userEnds(e.uuid), this.options.talkMs);
    }
    if (e.to === 'ended') {
      const call = this.coordinator.call(e.uuid);
      this.log(`call ended (${call?.endReason ?? 'ended'})`, call?.callId);
      if (this.options.sleepAfterMs !== undefined) this.clock.setTimeout(() => void this.sleep(), this.options.sleepAfterMs);
    }
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.coordinator.dispose();
    await this.ua.close();
  }
}

function callIdOf(payload: unknown): string | undefined {
  try {
    const p = payload as { pushcall?: unknown };
    const inner = typeof p.pushcall === 'string' ? JSON.parse(p.pushcall) : p.pushcall;
    return (inner as { call_id?: string })?.call_id;
  } catch {
    return undefined;
  }
}

function describe(payload: unknown): string {
  const p = payload as { pushcall?: { type?: string } };
  return p?.pushcall?.type ?? 'alert';
}
