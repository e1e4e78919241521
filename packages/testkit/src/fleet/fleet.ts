/**
 * The phone fleet: N simulated phones (iOS/Android mix) register with a pushcall server
 * (an in-process lab, or any RFC 8599 server given its address), go to sleep, and receive
 * calls at a steady rate from a caller generator. Every phone is a full SimulatedPhone (SIP
 * UA + client SDK coordinator + simulated iOS/Android), woken only by a push the APNs/FCM
 * emulators deliver. Knobs: network latency and loss between phones and server (a UDP
 * impairment relay), push delivery delay and loss, answer behaviour, caller cancels.
 *
 * Everything is bounded in time: the call phase lasts `durationSec`, every call is given up
 * by its caller after `giveUpMs`, and the drain after the last call is capped.
 */

import { rmSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { type Clock, newCallId, systemClock } from '@pushcall/sip';
import { type DelaySpec, pickDelay, seededRandom } from '../emulators/util.js';
import { type Lab, startLab } from '../lab.js';
import { type AnswerBehaviour, SimulatedPhone, type SimulatedPhoneOptions } from '../phone/simulated-phone.js';
import { SipUserAgent } from '../phone/sip-ua.js';
import type { ApnsEmulator } from '../emulators/apns-emulator.js';
import type { FcmEmulator } from '../emulators/fcm-emulator.js';
import { type FleetEmulators, startFleetEmulators } from './emulators.js';
import { type RelayStats, UdpImpairmentRelay } from './relay.js';
import { type Percentiles, type ServerLatencies, type TimelineLike, percentiles, serverLatencies } from './stats.js';

export type Range = DelaySpec;

export interface AnswerMix {
  answer: number;
  decline: number;
  ignore: number;
}

export interface FleetOptions {
  phones: number;
  /** Share of iPhones (the rest are Android). */
  iosShare: number;
  /** Calls per second. */
  rate: number;
  /** Length of the call phase, seconds. */
  durationSec: number;
  /** External server (`udp:127.0.0.1:5060`); default: an in-process lab. */
  server?: string;
  /**
   * With an external server: where the callers send their calls, when not to `server` (the
   * phones') — another node of a multi-node cluster (docs/multi-node.md). `admin` is then
   * this node's, which holds the calls' timelines.
   */
  callServer?: string;
  /** With an external server: its admin HTTP address (host:port) to read call timelines. */
  admin?: string;
  /** With an external server: emulators already started (the benchmark does this). */
  emulators?: FleetEmulators;
  /** SIP domain the phones register in (default 127.0.0.1). */
  domain: string;
  /** One-way latency between phones and server, ms (number or [min, max]). */
  latencyMs: Range;
  /** UDP loss between phones and server, 0..1 per datagram and direction. */
  loss: number;
  /** Push delivery delay (emulator → device), ms. */
  pushDelayMs: Range;
  /** Push loss (accepted by the emulator, never delivered), 0..1. */
  pushLoss: number;
  /** Push delivery → the app's REGISTER (launch, radio), ms. */
  launchDelayMs: Range;
  answerMix: AnswerMix;
  /** Ring → the user's answer or decline, ms. */
  answerDelayMs: Range;
  /** Share of calls the caller cancels while ringing. */
  cancelShare: number;
  /** INVITE → the caller's CANCEL for those calls, ms. */
  cancelAfterMs: Range;
  /** A connected call lasts this long (the caller hangs up), ms. */
  talkMs: number;
  /** The caller gives up (CANCEL) on calls not answered by then, ms. */
  giveUpMs: number;
  /** Caller user agents (calls are spread over them). */
  callers: number;
  /** In-process lab only: the server's wake timeout, seconds. */
  wakeTimeoutSeconds: number;
  /** In-process lab only: binding store. */
  store: 'sqlite' | 'memory';
  /** Phones registering at the same time during setup. */
  registerConcurrency: number;
  seed: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Called when the call phase starts and ends (the benchmark samples CPU there). */
  onCallsStart?: () => void;
  onCallsEnd?: () => void;
}

export const FLEET_DEFAULTS: FleetOptions = {
  phones: 100,
  iosShare: 0.5,
  rate: 10,
  durationSec: 30,
  domain: '127.0.0.1',
  latencyMs: 0,
  loss: 0,
  pushDelayMs: 0,
  pushLoss: 0,
  launchDelayMs: [100, 300],
  answerMix: { answer: 1, decline: 0, ignore: 0 },
  answerDelayMs: [300, 1000],
  cancelShare: 0,
  cancelAfterMs: [50, 400],
  talkMs: 500,
  giveUpMs: 6000,
  callers: 10,
  wakeTimeoutSeconds: 3,
  store: 'sqlite',
  registerConcurrency: 100,
  seed: 1,
};

export type Behaviour = 'answer' | 'decline' | 'ignore';

export interface FleetCallRecord {
  n: number;
  callId: string;
  phone: string;
  platform: 'ios' | 'android';
  behaviour: Behaviour;
  cancel: boolean;
  /** ms since the call phase started. */
  startedAt: number;
  finalStatus?: number;
  error?: string;
  gaveUp: boolean;
  /** Caller INVITE → the phone's call UI rings (push reported), ms. */
  ringMs?: number;
  /** Caller INVITE → the INVITE reaches the phone, ms. */
  inviteMs?: number;
  /** Caller INVITE → the caller gets 200 OK, ms. */
  answerMs?: number;
  /** The phone's call reached "connected". */
  phoneConnected: boolean;
  phoneEndReason?: string;
  /** The phone kept ringing this long after the caller's final response, ms (ghost call). */
  ghostMs?: number;
}

export interface FleetReport {
  mode: 'lab' | 'external';
  server: string;
  options: Omit<FleetOptions, 'log' | 'onCallsStart' | 'onCallsEnd' | 'emulators'>;
  phones: { total: number; ios: number; android: number; registered: number; registerFailed: number; registerSeconds: number };
  calls: {
    attempted: number;
    /** Calls not placed because every phone was busy. */
    skippedNoFreePhone: number;
    connected: number;
    /** Calls the phone answered (its call reached "connected"). */
    answeredByPhone: number;
    /** Calls expected to connect: answer behaviour, not cancelled. */
    expectedToConnect: number;
    /** connected / expectedToConnect. */
    connectedShare: number | null;
    cancelledByCaller: number;
    gaveUp: number;
    declined: number;
    /** By the caller's final status (or the error). */
    finalStatus: Record<string, number>;
    /** Calls that ended otherwise than their behaviour implied, by status. */
    unexpected: Record<string, number>;
    /** Calls still without a final response when the run ended (bounded drain). */
    unfinished: number;
  };
  ghosts: { count: number; over1s: number; unended: number; ringMs: Percentiles; toleranceMs: number };
  appKills: number;
  platformViolations: number;
  wakeLatency: { ring: Percentiles; inviteDelivered: Percentiles; answered: Percentiles };
  /** Black-box proxy latencies measured in the fleet (include loopback and event-loop time). */
  proxyBlackBox: { inviteToPushAtEmulator: Percentiles; registerSentToInviteAtPhone: Percentiles };
  /** From the server's call timelines (in-process lab, or --admin). */
  serverTimeline?: ServerLatencies;
  push: { accepted: number; callPushes: number; alertPushes: number; delivered: number; lost: number };
  relay?: RelayStats;
  durationSeconds: number;
  /** Seconds from the last call placed until every call and phone had settled. */
  drainSeconds: number;
  /** Every call (omit when writing a summary). */
  records: FleetCallRecord[];
}

/** A clock with sub-millisecond `now()` for latencies measured in the fleet process. */
export const hiResClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  monotonic: () => performance.now(),
  setTimeout: systemClock.setTimeout,
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Slot {
  idx: number;
  name: string;
  platform: 'ios' | 'android';
  phone: SimulatedPhone;
  options: SimulatedPhoneOptions;
  busy: boolean;
  call?: LiveCall;
  lastRegisterAt?: number;
}

interface LiveCall {
  rec: FleetCallRecord;
  slot: Slot;
  t0: number;
  finalAt?: number;
  done: boolean;
}

export function parseServer(spec: string): { protocol: 'udp' | 'tcp' | 'ws'; address: string; port: number } {
  const m = /^(udp|tcp|ws):([^:]+|\[[^\]]+\]):(\d+)$/.exec(spec);
  if (!m) throw new Error(`--server: expected udp:<host>:<port>, got ${spec}`);
  return { protocol: m[1] as 'udp' | 'tcp' | 'ws', address: m[2].replace(/^\[|\]$/g, ''), port: Number(m[3]) };
}

/** Send OPTIONS until the server answers (any response) or the deadline passes. */
export async function waitForSipServer(server: { address: string; port: number }, timeoutMs = 15_000): Promise<boolean> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  let answered = false;
  socket.on('message', () => (answered = true));
  const port = socket.address().port;
  const deadline = Date.now() + timeoutMs;
  try {
    for (let i = 0; !answered && Date.now() < deadline; i++) {
      const text = [
        `OPTIONS sip:${server.address}:${server.port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKsimping${i};rport`,
        'Max-Forwards: 70',
        `From: <sip:sim@127.0.0.1>;tag=ping${i}`,
        `To: <sip:${server.address}>`,
        `Call-ID: sim-ping-${process.pid}-${i}`,
        `CSeq: ${i + 1} OPTIONS`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      socket.send(text, server.port, server.address);
      await sleep(200);
    }
  } finally {
    socket.close();
  }
  return answered;
}

/** Run a fleet; resolves with its report. Stops everything it started. */
export async function runFleet(input: Partial<FleetOptions> = {}): Promise<FleetReport> {
  const o: FleetOptions = { ...FLEET_DEFAULTS, ...input, answerMix: { ...FLEET_DEFAULTS.answerMix, ...input.answerMix } };
  const log = o.log ?? (() => undefined);
  const rnd = seededRandom(o.seed);
  const clock = hiResClock;
  const started = Date.now();

  let lab: Lab | undefined;
  let emulators: FleetEmulators | undefined;
  let ownEmulators = false;
  let relay: UdpImpairmentRelay | undefined;
  const slots: Slot[] = [];
  const callers: SipUserAgent[] = [];
  const live = new Set<LiveCall>();
  const records: FleetCallRecord[] = [];
  const byCallId = new Map<string, LiveCall>();
  const registerToInvite: number[] = [];
  let skipped = 0;
  let registered = 0;
  let registerFailed = 0;
  let registerSeconds = 0;
  let serverAddress: { protocol: 'udp' | 'tcp' | 'ws'; address: string; port: number };
  let apns: ApnsEmulator;
  let apnsSandbox: ApnsEmulator;
  let fcm: FcmEmulator;
  let callPhaseEnd = 0;
  let drainSeconds = 0;
  let timelines: TimelineLike[] | undefined;

  const pushOpts = { deliveryDelayMs: o.pushDelayMs, lossProbability: o.pushLoss, seed: o.seed + 11, clock: hiResClock };
  try {
    if (o.server) {
      serverAddress = parseServer(o.server);
      emulators = o.emulators;
      if (!emulators) {
        emulators = await startFleetEmulators({ apns: pushOpts, fcm: pushOpts });
        ownEmulators = true;
        log(`emulators started; configure ${o.server} with:\n${emulators.describe()}`);
      }
      ({ apns, apnsSandbox, fcm } = emulators);
      for (const spec of o.callServer ? [o.server, o.callServer] : [o.server]) {
        log(`waiting for the SIP server at ${spec} ...`);
        if (!(await waitForSipServer(parseServer(spec), 30_000))) throw new Error(`no answer to OPTIONS from ${spec}`);
      }
    } else {
      lab = await startLab({
        apns: pushOpts,
        fcm: pushOpts,
        config: {
          proxy: { wakeTimeoutSeconds: o.wakeTimeoutSeconds, ringTimeoutSeconds: Math.ceil(o.giveUpMs / 1000) + 10, timelineMaxCalls: 100_000 } as never,
          limits: { perCalleePerMinute: 10_000, perCallerPerMinute: 1_000_000, maxHeldPerAor: 50, maxHeldTotal: 100_000 } as never,
          store: { type: o.store } as never,
        },
      });
      serverAddress = lab.address('udp');
      ({ apns, apnsSandbox, fcm } = lab);
    }

    // Phones reach the server directly, or through the impairment relay.
    let phoneServer = serverAddress;
    const impaired = o.loss > 0 || (typeof o.latencyMs === 'number' ? o.latencyMs > 0 : o.latencyMs[1] > 0);
    if (impaired) {
      if (serverAddress.protocol !== 'udp') throw new Error('network impairment needs a UDP server');
      relay = new UdpImpairmentRelay(serverAddress, { latencyMs: o.latencyMs, loss: o.loss, seed: o.seed + 3 });
      phoneServer = { protocol: 'udp', ...(await relay.start()) };
      log(`impairment relay on udp:127.0.0.1:${phoneServer.port} (latency ${JSON.stringify(o.latencyMs)} ms, loss ${(o.loss * 100).toFixed(1)} %)`);
    }

    // ----- phones ---------------------------------------------------------------------
    const iosCount = Math.round(o.phones * o.iosShare);
    for (let i = 0; i < o.phones; i++) {
      const platform = i < iosCount ? 'ios' : 'android';
      const name = `${platform === 'ios' ? 'iphone' : 'android'}-${String(i).padStart(5, '0')}`;
      const options: SimulatedPhoneOptions = {
        name,
        platform,
        user: `sim${String(i).padStart(5, '0')}`,
        domain: o.domain,
        server: phoneServer,
        apns,
        apnsSandbox,
        fcm,
        clock,
        launchDelayMs: 0,
        answer: { kind: 'ignore' },
        sleepAfterMs: 20,
      };
      slots.push({ idx: i, name, platform, phone: new SimulatedPhone(options), options, busy: true });
    }
    const regStart = Date.now();
    let next = 0;
    const worker = async () => {
      while (next < slots.length) {
        const slot = slots[next++];
        try {
          await slot.phone.start();
          await slot.phone.sleep();
          slot.busy = false;
          registered++;
        } catch {
          registerFailed++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.registerConcurrency, slots.length)) }, worker));
    registerSeconds = (Date.now() - regStart) / 1000;
    log(`${registered} phones registered and asleep (${registerFailed} failed) in ${registerSeconds.toFixed(1)} s`);

    for (const slot of slots) hookPhone(slot);

    // ----- callers ----------------------------------------------------------------------
    for (let k = 0; k < o.callers; k++) {
      const ua = new SipUserAgent({
        user: `caller${String(k).padStart(3, '0')}`,
        domain: o.domain,
        server: o.callServer ? parseServer(o.callServer) : serverAddress,
        instanceId: `urn:uuid:00000000-0000-4000-8000-${String(k).padStart(12, '0')}`,
        displayName: `Caller ${k}`,
        clock,
      });
      await ua.open();
      callers.push(ua);
    }

    // ----- the call phase ---------------------------------------------------------------
    o.onCallsStart?.();
    const phaseStart = clock.now();
    const total = Math.round(o.rate * o.durationSec);
    let placed = 0;
    const free = () => slots.filter((s) => !s.busy);
    const releaser = setInterval(() => releaseSlots(), 25);
    try {
      while (placed < total) {
        const due = Math.min(total, Math.floor(((clock.now() - phaseStart) / 1000) * o.rate) + 1);
        while (placed < due) {
          placed++;
          const candidates = free();
          if (candidates.length === 0) {
            skipped++;
            continue;
          }
          const slot = candidates[Math.floor(rnd() * candidates.length)];
          void placeCall(slot, placed, phaseStart);
        }
        const wait = phaseStart + (placed / o.rate) * 1000 - clock.now();
        await sleep(Math.max(1, Math.min(20, wait)));
      }
      log(`${placed} calls placed (${skipped} skipped: no free phone); draining`);
      const drainStart = Date.now();
      // Drain: every call ends within giveUpMs + talk + wake timeout; cap it anyway.
      const drainCap = Date.now() + o.giveUpMs + o.talkMs + o.wakeTimeoutSeconds * 1000 + 10_000;
      while ((live.size > 0 || slots.some((s) => s.busy && s.call)) && Date.now() < drainCap) {
        releaseSlots();
        await sleep(50);
      }
      drainSeconds = Math.round((Date.now() - drainStart) / 100) / 10;
    } finally {
      clearInterval(releaser);
    }
    callPhaseEnd = clock.now();
    o.onCallsEnd?.();

    // Server timelines: in-process, or from the admin API.
    if (lab) timelines = lab.server.timelines.list(1_000_000) as TimelineLike[];
    else if (o.admin) timelines = await fetchTimelines(o.admin).catch((e: unknown) => {
      log(`could not read timelines from ${o.admin}: ${(e as Error).message}`);
      return undefined;
    });
  } finally {
    for (const c of callers) await c.close().catch(() => undefined);
    await Promise.all(slots.map((s) => s.phone.close().catch(() => undefined)));
    await relay?.close();
    if (lab) {
      await lab.close().catch(() => undefined);
      rmSync(lab.dataDir, { recursive: true, force: true });
    }
    if (ownEmulators && emulators) {
      await emulators.close().catch(() => undefined);
      rmSync(emulators.dir, { recursive: true, force: true });
    }
  }

  return buildReport();

  // ----- helpers (closures over the run's state) -----------------------------------------

  function hookPhone(slot: Slot): void {
    const ua = slot.phone.ua;
    const open = ua.open.bind(ua);
    ua.open = async () => {
      const wasAsleep = !ua.awake;
      await open();
      if (wasAsleep) slot.lastRegisterAt = clock.now();
    };
    ua.events.onRequest = (request) => {
      if (request.method !== 'INVITE' || request.to.tag) return;
      const call = byCallId.get(request.callId);
      if (!call || call.rec.inviteMs !== undefined) return;
      const now = clock.now();
      call.rec.inviteMs = now - call.t0;
      if (slot.lastRegisterAt !== undefined) registerToInvite.push(now - slot.lastRegisterAt);
    };
  }

  function pick(): Behaviour {
    const m = o.answerMix;
    const sum = m.answer + m.decline + m.ignore || 1;
    const r = rnd() * sum;
    return r < m.answer ? 'answer' : r < m.answer + m.decline ? 'decline' : 'ignore';
  }

  async function placeCall(slot: Slot, n: number, phaseStart: number): Promise<void> {
    slot.busy = true;
    const behaviour = pick();
    const cancel = rnd() < o.cancelShare;
    const afterMs = pickDelay(o.answerDelayMs, rnd);
    const answer: AnswerBehaviour = behaviour === 'ignore' ? { kind: 'ignore' } : { kind: behaviour, afterMs };
    slot.options.answer = answer;
    slot.phone.ua.options.wakeDelayMs = Math.max(1, pickDelay(o.launchDelayMs, rnd));
    const callId = newCallId();
    const caller = callers[n % callers.length];
    const t0 = clock.now();
    const rec: FleetCallRecord = { n, callId, phone: slot.name, platform: slot.platform, behaviour, cancel, startedAt: Math.round(t0 - phaseStart), gaveUp: false, phoneConnected: false };
    const call: LiveCall = { rec, slot, t0, done: false };
    slot.call = call;
    records.push(rec);
    live.add(call);
    byCallId.set(callId, call);
    const timers: NodeJS.Timeout[] = [];
    const cancelAt = (ms: number, gaveUp: boolean) =>
      timers.push(
        setTimeout(() => {
          if (call.finalAt !== undefined) return;
          if (gaveUp) rec.gaveUp = true;
          // CANCEL needs a provisional response first; retry briefly if there is none yet.
          const tryCancel = (left: number) => {
            if (call.finalAt !== undefined) return;
            if (!caller.cancelCall(callId) && left > 0) timers.push(setTimeout(() => tryCancel(left - 1), 50));
          };
          tryCancel(20);
        }, ms),
      );
    if (cancel) cancelAt(pickDelay(o.cancelAfterMs, rnd), false);
    cancelAt(o.giveUpMs, true);
    try {
      const response = await caller.call(`sip:${slot.options.user}@${o.domain}`, { callId });
      call.finalAt = clock.now();
      rec.finalStatus = response.status;
      if (response.status >= 200 && response.status < 300) {
        rec.answerMs = call.finalAt - t0;
        await sleep(o.talkMs);
        caller.hangup(callId);
      }
    } catch (error) {
      call.finalAt = clock.now();
      rec.error = (error as Error).message;
    } finally {
      for (const t of timers) clearTimeout(t);
      call.done = true;
      live.delete(call);
    }
  }

  /** A phone is free again once its call is over for everyone and the app sleeps again. */
  function releaseSlots(): void {
    const now = clock.now();
    const pushDelayMax = typeof o.pushDelayMs === 'number' ? o.pushDelayMs : o.pushDelayMs[1];
    for (const slot of slots) {
      const call = slot.call;
      if (!slot.busy || !call || !call.done || call.finalAt === undefined) continue;
      const since = now - call.finalAt;
      const active = slot.phone.coordinator.calls().some((c) => c.state !== 'ended');
      const seen = slot.phone.coordinator.calls().some((c) => c.callId === call.rec.callId);
      const settled = !active && !slot.phone.ua.awake && (seen || since > pushDelayMax + 500);
      if (settled || since > 20_000) {
        slot.busy = false;
        slot.call = undefined;
      }
    }
  }

  function buildReport(): FleetReport {
    // Per call, from the phone's own story.
    const slotByName = new Map(slots.map((s) => [s.name, s]));
    const phoneCalls = new Map<string, ReturnType<SimulatedPhone['coordinator']['calls']>[number]>();
    const rangAt = new Map<string, number>();
    const connected = new Set<string>();
    for (const s of slots) {
      for (const c of s.phone.coordinator.calls()) if (c.callId) phoneCalls.set(c.callId, c);
      for (const e of s.phone.events) {
        if (!e.callId) continue;
        if ((e.what.startsWith('VoIP push') && e.what.includes('reported')) || e.what.startsWith('FCM data message')) {
          if (!rangAt.has(e.callId)) rangAt.set(e.callId, e.at);
        }
        if (e.what.startsWith('connected')) connected.add(e.callId);
      }
    }
    const toleranceMs = 100;
    const ghostMs: number[] = [];
    let unended = 0;
    for (const rec of records) {
      const call = byCallId.get(rec.callId)!;
      const rang = rangAt.get(rec.callId);
      if (rang !== undefined) rec.ringMs = rang - call.t0;
      rec.phoneConnected = connected.has(rec.callId);
      const pc = phoneCalls.get(rec.callId);
      rec.phoneEndReason = pc?.endReason ?? (pc?.state === 'ended' ? (pc.endedBy ?? 'ended') : pc?.state);
      // Ghost: the phone's call UI was still ringing (never answered on it) after the caller had its final response.
      if (rang !== undefined && !rec.phoneConnected && call.finalAt !== undefined) {
        const uiEnd = pc?.endedAt ?? callPhaseEnd;
        if (pc?.endedAt === undefined) unended++;
        const ringingAfter = uiEnd - Math.max(call.finalAt, rang);
        if (uiEnd > call.finalAt + toleranceMs && ringingAfter > 0) {
          rec.ghostMs = Math.round(ringingAfter * 10) / 10;
          ghostMs.push(ringingAfter);
        }
      }
    }

    const finalStatus: Record<string, number> = {};
    const unexpected: Record<string, number> = {};
    let connectedCalls = 0;
    let expectedToConnect = 0;
    let cancelled = 0;
    let gaveUp = 0;
    let declined = 0;
    let unfinished = 0;
    for (const rec of records) {
      const key = rec.finalStatus !== undefined ? String(rec.finalStatus) : rec.error ? `error: ${rec.error}` : 'none';
      finalStatus[key] = (finalStatus[key] ?? 0) + 1;
      if (rec.finalStatus === undefined && !rec.error) unfinished++;
      const ok = rec.finalStatus !== undefined && rec.finalStatus >= 200 && rec.finalStatus < 300;
      if (ok) connectedCalls++;
      if (rec.cancel && rec.finalStatus === 487) cancelled++;
      else if (rec.gaveUp && rec.finalStatus === 487) gaveUp++;
      if (rec.finalStatus !== undefined && rec.behaviour === 'decline' && rec.finalStatus >= 400 && rec.finalStatus !== 487) declined++;
      if (rec.behaviour === 'answer' && !rec.cancel) expectedToConnect++;
      // What each behaviour should produce at the caller.
      const expected =
        rec.cancel ? rec.finalStatus === 487 || ok : rec.behaviour === 'answer' ? ok : rec.behaviour === 'decline' ? rec.finalStatus !== undefined && rec.finalStatus >= 400 : rec.finalStatus === 487;
      if (!expected) unexpected[key] = (unexpected[key] ?? 0) + 1;
    }

    let kills = 0;
    let violations = 0;
    for (const s of slots) {
      if (s.platform === 'ios') kills += (s.phone.os as { kills: number }).kills;
      violations += s.phone.os.violations.length;
    }

    // Black box: caller INVITE → push request at the emulator.
    const pushAt: number[] = [];
    const push = { accepted: 0, callPushes: 0, alertPushes: 0, delivered: 0, lost: 0 };
    for (const em of [apns, apnsSandbox]) {
      push.accepted += em.stats.accepted;
      push.delivered += em.stats.delivered;
      push.lost += em.stats.lost;
      for (const p of em.received) {
        const id = (p.payload as { pushcall?: { call_id?: string } })?.pushcall?.call_id;
        const call = id ? byCallId.get(id) : undefined;
        if (call && p.pushType === 'voip') pushAt.push(p.receivedAt - call.t0);
      }
    }
    push.accepted += fcm.stats.accepted;
    push.delivered += fcm.stats.delivered;
    push.lost += fcm.stats.lost;
    for (const p of fcm.received) {
      const id = (p.payload as { call_id?: string })?.call_id;
      const call = id ? byCallId.get(id) : undefined;
      if (call && (p.payload as { type?: string }).type === 'call') pushAt.push(p.receivedAt - call.t0);
    }

    push.callPushes = pushAt.length;
    push.alertPushes = push.accepted - push.callPushes;
    const ours = new Set(records.map((r) => r.callId));
    void slotByName;
    const { log: _l, onCallsStart: _s, onCallsEnd: _e, emulators: _em, ...options } = o;
    return {
      mode: o.server ? 'external' : 'lab',
      server: `${serverAddress.protocol}:${serverAddress.address}:${serverAddress.port}`,
      options,
      phones: { total: o.phones, ios: slots.filter((s) => s.platform === 'ios').length, android: slots.filter((s) => s.platform === 'android').length, registered, registerFailed, registerSeconds },
      calls: {
        attempted: records.length,
        skippedNoFreePhone: skipped,
        connected: connectedCalls,
        answeredByPhone: records.filter((r) => r.phoneConnected).length,
        expectedToConnect,
        connectedShare: expectedToConnect > 0 ? records.filter((r) => r.behaviour === 'answer' && !r.cancel && r.answerMs !== undefined).length / expectedToConnect : null,
        cancelledByCaller: cancelled,
        gaveUp,
        declined,
        finalStatus,
        unexpected,
        unfinished,
      },
      ghosts: { count: ghostMs.length, over1s: ghostMs.filter((g) => g > 1000).length, unended, ringMs: percentiles(ghostMs), toleranceMs },
      appKills: kills,
      platformViolations: violations,
      wakeLatency: {
        ring: percentiles(records.map((r) => r.ringMs).filter((v): v is number => v !== undefined)),
        inviteDelivered: percentiles(records.map((r) => r.inviteMs).filter((v): v is number => v !== undefined)),
        answered: percentiles(records.map((r) => r.answerMs).filter((v): v is number => v !== undefined)),
      },
      proxyBlackBox: { inviteToPushAtEmulator: percentiles(pushAt), registerSentToInviteAtPhone: percentiles(registerToInvite) },
      serverTimeline: timelines ? serverLatencies(timelines, ours) : undefined,
      push,
      relay: relay?.stats,
      durationSeconds: Math.round((Date.now() - started) / 100) / 10,
      drainSeconds,
      records,
    };
  }
}

/** Call timelines from pushcall's admin API (`GET /api/calls`). */
export async function fetchTimelines(admin: string, limit = 1_000_000): Promise<TimelineLike[]> {
  const base = admin.startsWith('http') ? admin : `http://${admin}`;
  const res = await fetch(`${base}/api/calls?limit=${limit}`);
  if (!res.ok) throw new Error(`GET /api/calls: ${res.status}`);
  const body = (await res.json()) as { calls: TimelineLike[] };
  return body.calls;
}
