/**
 * The demo: pushcall on loopback with the APNs and FCM emulators, a sleeping iPhone and a
 * sleeping Android phone, an always-online desk phone, and a caller. It places one call
 * per scenario (the main flow and the hard cases), prints each as a ladder diagram merged
 * from the caller's view, the server's call timeline and the phone's own story, checks
 * that every call ended as expected, and prints a summary table.
 */

import { rmSync } from 'node:fs';
import type { EndReason, SipDelegate } from '@pushcall/client';
import { newCallId } from '@pushcall/sip';
import { type Lab, startLab } from '../lab.js';
import { SimulatedPhone, type SimulatedPhoneOptions } from '../phone/simulated-phone.js';
import { SipUserAgent } from '../phone/sip-ua.js';
import { type Lane, type LadderRow, renderLadder } from './ladder.js';

export interface DemoOutput {
  write(text: string): unknown;
}

export interface DemoOptions {
  /** Where the ladders and the summary go (default: nowhere). */
  output?: DemoOutput;
  /** ANSI colours (main.ts turns them on only when stdout is a TTY). */
  color?: boolean;
  /** Run only these scenario ids (default: all). */
  only?: string[];
  /** Include the "declined elsewhere" scenario (default true). */
  declined?: boolean;
}

export interface ScenarioResult {
  id: string;
  title: string;
  callId: string;
  passed: boolean;
  callerStatus: number | undefined;
  expectedStatus: number;
  phoneEnd: string | undefined;
  expectedPhoneEnd: EndReason;
  kills: number;
  voipPushes: number;
  problems: string[];
  ladder: string[];
}

export interface DemoResult {
  passed: boolean;
  scenarios: ScenarioResult[];
  durationMs: number;
}

// Ranks break ties between rows in the same millisecond: the order of the flow.
const R = {
  invite: 0,
  trying: 5,
  pushSent: 10,
  pushAccepted: 20,
  pushDelivered: 21,
  reported: 22,
  ringingToCaller: 24,
  cancelByCaller: 25,
  answerTapEarly: 26,
  register: 30,
  registerOk: 40,
  deviceRegistered: 45,
  requestOut: 50,
  inviteMatched: 55,
  cancelOut: 60,
  tap: 65,
  responseIn: 70,
  connected: 75,
  callerFinal: 80,
  ack: 85,
  serverEnded: 86,
  alert: 87,
  bye: 90,
  byeAtPhone: 95,
  phoneEnded: 100,
} as const;

const REASONS: Record<number, string> = {
  100: 'Trying',
  180: 'Ringing',
  183: 'Session Progress',
  200: 'OK',
  408: 'Request Timeout',
  480: 'Temporarily Unavailable',
  486: 'Busy Here',
  487: 'Request Terminated',
  600: 'Busy Everywhere',
  603: 'Decline',
};
const statusText = (status: number, reason?: string) => `${status} ${reason ?? REASONS[status] ?? ''}`.trim();

interface Party {
  phone: SimulatedPhone;
  options: SimulatedPhoneOptions;
  platform: 'ios' | 'android';
}

interface Scenario {
  id: string;
  title: string;
  party: 'iphone' | 'android';
  target: string;
  launchDelayMs: number;
  answer: SimulatedPhoneOptions['answer'];
  desk?: { answerMs?: number; declineMs?: number; code?: number };
  cancelAfterMs?: number;
  hangupAfterMs?: number;
  expectStatus: number;
  expectEnd: EndReason;
  expectCancelReason?: RegExp;
  /** What the scenario shows, printed under its title. */
  blurb: string;
}

const DOMAIN = '127.0.0.1';

function scenarios(declined: boolean): Scenario[] {
  const list: Scenario[] = [
    {
      id: 'ios-answer',
      title: 'Wake and answer on the iPhone',
      party: 'iphone',
      target: `sip:alice@${DOMAIN}`,
      launchDelayMs: 150,
      answer: { kind: 'answer', afterMs: 400 },
      hangupAfterMs: 300,
      expectStatus: 200,
      expectEnd: 'remoteEnded',
      blurb: 'VoIP push → CallKit rings at once → app re-registers → INVITE (same Call-ID) → answer → caller hangs up',
    },
    {
      id: 'android-answer',
      title: 'Wake and answer on Android (user taps Answer before the INVITE arrives)',
      party: 'android',
      target: `sip:bob@${DOMAIN}`,
      launchDelayMs: 250,
      answer: { kind: 'answer', afterMs: 120 },
      hangupAfterMs: 300,
      expectStatus: 200,
      expectEnd: 'remoteEnded',
      blurb: 'high-priority FCM data message → ConnectionService → answer is deferred until the INVITE is matched',
    },
    {
      id: 'cancel-before-wake',
      title: 'Caller cancels before the iPhone wakes (ghost call avoided)',
      party: 'iphone',
      target: `sip:alice@${DOMAIN}`,
      launchDelayMs: 800,
      answer: { kind: 'ignore' },
      cancelAfterMs: 200,
      expectStatus: 487,
      expectEnd: 'remoteEnded',
      expectCancelReason: /^$/,
      blurb: 'the phone rings from the push; when it registers, pushcall delivers the INVITE and CANCELs it at once',
    },
    {
      id: 'answered-elsewhere',
      title: 'Answered elsewhere (the desk phone answers first)',
      party: 'iphone',
      target: `sip:alice@${DOMAIN}`,
      launchDelayMs: 900,
      answer: { kind: 'ignore' },
      desk: { answerMs: 300 },
      hangupAfterMs: 200,
      expectStatus: 200,
      expectEnd: 'answeredElsewhere',
      expectCancelReason: /cause=200/,
      blurb: 'the live desk phone is forked at once, in parallel with the push; the late iPhone gets CANCEL with Reason cause=200',
    },
  ];
  if (declined) {
    list.push({
      id: 'declined-elsewhere',
      title: 'Declined elsewhere (the desk phone declines with 603)',
      party: 'iphone',
      target: `sip:alice@${DOMAIN}`,
      launchDelayMs: 900,
      answer: { kind: 'ignore' },
      desk: { declineMs: 300, code: 603 },
      expectStatus: 603,
      expectEnd: 'declinedElsewhere',
      expectCancelReason: /cause=603/,
      blurb: 'a 6xx ends the search (RFC 3261 §16.7): the iPhone gets CANCEL with Reason cause=603 and stops ringing',
    });
  }
  return list;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

/** Run the demo in-process; resolves with every scenario's result (never throws for a failed check). */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const started = Date.now();
  const out = options.output ?? { write: () => undefined };
  const color = options.color ?? false;
  const bold = (s: string) => (color ? `\u001b[1m${s}\u001b[0m` : s);
  const green = (s: string) => (color ? `\u001b[32m${s}\u001b[0m` : s);
  const red = (s: string) => (color ? `\u001b[31m${s}\u001b[0m` : s);

  let lab: Lab | undefined;
  const parties: Party[] = [];
  const uas: SipUserAgent[] = [];
  const results: ScenarioResult[] = [];
  try {
    lab = await startLab({
      config: {
        proxy: { wakeTimeoutSeconds: 5, ringTimeoutSeconds: 20 } as never,
        store: { type: 'memory' } as never,
      },
    });
    const server = lab.address('udp');
    out.write(bold('pushcall demo') + `: pushcall on udp:127.0.0.1:${server.port}, APNs emulator ${lab.apns.url}, FCM emulator ${lab.fcm.url}\n`);

    // The rows of the scenario being run (hooks below append to it).
    let rows: LadderRow[] = [];
    const row = (r: LadderRow) => rows.push(r);

    const makePhone = async (name: string, user: string, platform: 'ios' | 'android'): Promise<Party> => {
      const phoneOptions: SimulatedPhoneOptions = {
        name,
        platform,
        user,
        domain: DOMAIN,
        server,
        apns: lab!.apns,
        apnsSandbox: lab!.apnsSandbox,
        fcm: lab!.fcm,
        launchDelayMs: 150,
        answer: { kind: 'ignore' },
        sleepAfterMs: 30,
      };
      const phone = new SimulatedPhone(phoneOptions);
      const party: Party = { phone, options: phoneOptions, platform };
      await phone.start();
      await phone.sleep();
      // The REGISTER after a wake goes out as soon as the app's new socket is open.
      const ua = phone.ua;
      const open = ua.open.bind(ua);
      ua.open = async () => {
        const wasAsleep = !ua.awake;
        await open();
        if (wasAsleep) row({ at: Date.now(), rank: R.register, kind: 'arrow', from: 'phone', to: 'pushcall', label: 'REGISTER', note: 'new socket, same +sip.instance and pn-*' });
      };
      phone.coordinator.events.subscribe((e) => {
        if (e.type === 'registration' && e.state.state === 'registered') {
          row({ at: Date.now(), rank: R.registerOk, kind: 'arrow', from: 'pushcall', to: 'phone', label: '200 OK (REGISTER)' });
        }
      });
      ua.events.onRequest = (request) => {
        if (request.method === 'BYE') row({ at: Date.now(), rank: R.byeAtPhone, kind: 'arrow', from: 'pushcall', to: 'phone', label: 'BYE' });
      };
      parties.push(party);
      return party;
    };

    const iphone = await makePhone('iPhone', 'alice', 'ios');
    const android = await makePhone('Android', 'bob', 'android');

    // The caller, and the always-online desk phone (joins alice for the last scenarios).
    const caller = new SipUserAgent({ user: 'carol', domain: DOMAIN, server, instanceId: 'urn:uuid:00000000-0000-4000-8000-00000000ca11', displayName: 'Carol' });
    uas.push(caller);
    const callerDelegate: SipDelegate = {
      onInvite: () => undefined,
      onCancel: () => undefined,
      onBye: () => undefined,
      onRegistration: () => undefined,
      onCallState: (_callId, state) => {
        if (state.state === 'progress' && state.code !== undefined) {
          row({ at: Date.now(), rank: state.code === 100 ? R.trying : R.ringingToCaller, kind: 'arrow', from: 'pushcall', to: 'caller', label: statusText(state.code) });
        }
      },
    };
    caller.setDelegate(callerDelegate);
    await caller.open();
    const desk = new SipUserAgent({ user: 'alice', domain: DOMAIN, server, instanceId: 'urn:uuid:00000000-0000-4000-8000-0000000de5c0', userAgent: 'desk-phone' });
    uas.push(desk);
    let deskRegistered = false;

    const wanted = scenarios(options.declined ?? true).filter((s) => !options.only || options.only.includes(s.id));
    let n = 0;
    for (const sc of wanted) {
      n++;
      rows = [];
      const party = sc.party === 'iphone' ? iphone : android;
      const phone = party.phone;
      party.options.answer = sc.answer;
      phone.ua.options.wakeDelayMs = sc.launchDelayMs;
      const problems: string[] = [];

      // The desk phone: registered (no pn-*: always reachable) only for the scenarios that use it.
      let deskDecline: { code: number; ms: number } | undefined;
      if (sc.desk) {
        desk.options.autoAnswerMs = sc.desk.answerMs;
        deskDecline = sc.desk.declineMs !== undefined ? { code: sc.desk.code ?? 603, ms: sc.desk.declineMs } : undefined;
        desk.setDelegate({
          onInvite: (invite) => {
            if (deskDecline) {
              const d = deskDecline;
              setTimeout(() => desk.reject(invite.callId, d.code), d.ms);
            }
          },
          onCancel: () => undefined,
          onBye: () => undefined,
          onCallState: () => undefined,
          onRegistration: () => undefined,
        });
        if (!deskRegistered) {
          const r = await desk.registerAsync(3600);
          if (r.status !== 200) problems.push(`desk phone REGISTER got ${r.status}`);
          deskRegistered = true;
        }
      } else if (deskRegistered) {
        await desk.registerAsync(0);
        deskRegistered = false;
      }

      const callId = `${newCallId()}`;
      const t0 = Date.now();
      row({ at: t0, rank: R.invite, kind: 'arrow', from: 'caller', to: 'pushcall', label: 'INVITE', note: `to ${sc.target}, Call-ID ${callId.slice(0, 8)}…` });
      const finalPromise = caller.call(sc.target, { callId });
      let cancelTimer: NodeJS.Timeout | undefined;
      if (sc.cancelAfterMs !== undefined) {
        cancelTimer = setTimeout(() => {
          row({ at: Date.now(), rank: R.cancelByCaller, kind: 'arrow', from: 'caller', to: 'pushcall', label: 'CANCEL', note: 'the caller hangs up' });
          caller.cancelCall(callId);
        }, sc.cancelAfterMs);
      }
      let callerStatus: number | undefined;
      try {
        const final = await finalPromise;
        callerStatus = final.status;
        row({ at: Date.now(), rank: R.callerFinal, kind: 'arrow', from: 'pushcall', to: 'caller', label: statusText(final.status, final.reason) });
        if (final.status >= 200 && final.status < 300) row({ at: Date.now(), rank: R.ack, kind: 'arrow', from: 'caller', to: 'pushcall', label: 'ACK' });
      } catch (error) {
        problems.push(`caller: ${(error as Error).message}`);
      }
      clearTimeout(cancelTimer);
      if (callerStatus !== undefined && callerStatus < 300 && sc.hangupAfterMs !== undefined) {
        await sleep(sc.hangupAfterMs);
        row({ at: Date.now(), rank: R.bye, kind: 'arrow', from: 'caller', to: 'pushcall', label: 'BYE', note: 'the caller hangs up' });
        caller.hangup(callId);
      }

      // Settle: the phone's call has ended and the app is asleep again.
      const ended = await waitFor(() => phone.coordinator.calls().some((c) => c.callId === callId && c.state === 'ended') && !phone.ua.awake, 6000);
      if (!ended) problems.push('the phone call did not end (ghost call?)');
      await waitFor(() => lab!.server.timelines.get(callId)?.endedAt !== undefined, 1000);
      await sleep(30);

      // Merge the server's timeline and the phone's story into the rows.
      addServerRows(lab, callId, party, row);
      const snapshot = phone.coordinator.calls().find((c) => c.callId === callId);
      for (const e of phone.events) {
        if (e.callId !== callId) continue;
        addPhoneRow(e.what, e.at, party.platform, snapshot?.endReason, row);
      }

      // Checks.
      const kills = party.platform === 'ios' ? (phone.os as { kills: number }).kills : 0;
      const voipPushes = party.platform === 'ios' ? lab.apns.received.filter((p) => mentions(p.payload, callId)).length : lab.fcm.received.filter((p) => mentions(p, callId)).length;
      const phoneEnd = snapshot?.endReason;
      if (callerStatus !== sc.expectStatus) problems.push(`caller got ${callerStatus ?? 'nothing'}, expected ${sc.expectStatus}`);
      if (phoneEnd !== sc.expectEnd) problems.push(`phone ended with ${phoneEnd ?? snapshot?.state ?? 'no call'}, expected ${sc.expectEnd}`);
      if (kills !== 0) problems.push(`${kills} app kill(s)`);
      if (voipPushes !== 1) problems.push(`${voipPushes} call pushes for this call, expected exactly 1`);
      if (phone.os.violations.length > 0) problems.push(`platform rule violations: ${phone.os.violations.join('; ')}`);
      if (sc.expectCancelReason) {
        const cancel = [...phone.ua.received].reverse().find((r) => r.method === 'CANCEL' && r.callId === callId);
        if (!cancel) problems.push('the phone never got the CANCEL');
        else if (!sc.expectCancelReason.test(cancel.get('reason') ?? '')) problems.push(`CANCEL Reason "${cancel.get('reason') ?? ''}" does not match ${sc.expectCancelReason}`);
      }

      const ladder = renderLadder(rows, { t0, color });
      const passed = problems.length === 0;
      results.push({
        id: sc.id,
        title: sc.title,
        callId,
        passed,
        callerStatus,
        expectedStatus: sc.expectStatus,
        phoneEnd,
        expectedPhoneEnd: sc.expectEnd,
        kills,
        voipPushes,
        problems,
        ladder: ladder.map(stripAnsi),
      });
      out.write(`\n${bold(`── ${n}. ${sc.title} `.padEnd(100, '─'))}\n   ${sc.blurb}\n\n`);
      out.write(ladder.join('\n') + '\n\n');
      out.write(
        passed
          ? `   ${green('✔ as expected')}: caller got ${callerStatus}, ${party.phone.name} ended ${phoneEnd}, ${voipPushes} push, ${kills} app kills\n`
          : `   ${red('✘ unexpected')}: ${problems.join('; ')}\n`,
      );
    }
  } catch (error) {
    results.push({
      id: 'setup',
      title: 'demo setup',
      callId: '',
      passed: false,
      callerStatus: undefined,
      expectedStatus: 0,
      phoneEnd: undefined,
      expectedPhoneEnd: 'remoteEnded',
      kills: 0,
      voipPushes: 0,
      problems: [(error as Error).stack ?? String(error)],
      ladder: [],
    });
    out.write(`demo failed: ${(error as Error).stack ?? String(error)}\n`);
  } finally {
    for (const p of parties) await p.phone.close().catch(() => undefined);
    for (const ua of uas) await ua.close().catch(() => undefined);
    await lab?.close().catch(() => undefined);
    if (lab) rmSync(lab.dataDir, { recursive: true, force: true });
  }

  const passed = results.length > 0 && results.every((r) => r.passed);
  const durationMs = Date.now() - started;
  out.write('\n' + summaryTable(results).join('\n') + '\n');
  out.write(`\n${passed ? green('all calls ended as expected') : red('some calls did not end as expected')} (${(durationMs / 1000).toFixed(1)} s)\n`);
  return { passed, scenarios: results, durationMs };
}

function mentions(value: unknown, callId: string): boolean {
  return JSON.stringify(value).includes(callId);
}

function stripAnsi(s: string): string {
  // biome-ignore lint: ANSI escape
  return s.replace(/\u001b\[[0-9;]*m/g, '');
}

function laneOfBranches(events: { kind: string; branch?: string }[]): Map<string, Lane> {
  const lanes = new Map<string, Lane>();
  for (const e of events) if (e.kind === 'push-sent' && e.branch) lanes.set(e.branch, 'phone');
  for (const e of events) if (e.branch && !lanes.has(e.branch)) lanes.set(e.branch, 'desk');
  return lanes;
}

function addServerRows(lab: Lab, callId: string, party: Party, row: (r: LadderRow) => void): void {
  const timeline = lab.server.timelines.get(callId);
  if (!timeline) return;
  const lanes = laneOfBranches(timeline.events);
  for (const e of timeline.events) {
    const d = (e.detail ?? {}) as Record<string, unknown>;
    const lane: Lane = (e.branch && lanes.get(e.branch)) || 'phone';
    switch (e.kind) {
      case 'push-sent': {
        let label = `push (${String(d.provider)})`;
        if (d.provider === 'apns') {
          const rec = lab.apns.received.find((p) => mentions(p.payload, callId));
          label = rec ? `push (${rec.pushType}, prio ${rec.priority})` : 'push (voip)';
        } else if (d.provider === 'fcm') {
          const rec = lab.fcm.received.find((p) => mentions(p, callId));
          label = `FCM data (${String(rec?.android?.priority ?? 'high').toLowerCase()})`;
        }
        row({ at: e.at, rank: R.pushSent, kind: 'arrow', from: 'pushcall', to: 'push', label, note: 'INVITE held until the device registers' });
        break;
      }
      case 'push-accepted':
        row({ at: e.at, rank: R.pushAccepted, kind: 'arrow', from: 'push', to: 'pushcall', label: '200 accepted', note: `push request took ${String(d.latencyMs)} ms` });
        break;
      case 'push-failed':
        row({ at: e.at, rank: R.pushAccepted, kind: 'arrow', from: 'push', to: 'pushcall', label: `${String(d.status ?? '')} ${String(d.reason ?? d.error ?? 'failed')}`.trim() });
        break;
      case 'device-registered':
        row({ at: e.at, rank: R.deviceRegistered, kind: 'note', lane: 'pushcall', label: `device registered ${String(d.afterPushMs)} ms after the push → release the held INVITE` });
        break;
      case 'request-out':
        row({
          at: e.at,
          rank: R.requestOut,
          kind: 'arrow',
          from: 'pushcall',
          to: lane,
          label: 'INVITE',
          note: d.woke ? `same Call-ID, pn-* stripped${d.cancelAfter ? ', CANCEL follows at once' : ''}` : 'live binding: forked at once',
        });
        break;
      case 'response-in': {
        const status = Number(d.status);
        if (d.local) row({ at: e.at, rank: R.responseIn, kind: 'note', lane: 'pushcall', label: `branch ${e.branch ?? ''} ended ${statusText(status, d.reason as string)}` });
        else row({ at: e.at, rank: R.responseIn, kind: 'arrow', from: lane, to: 'pushcall', label: statusText(status) });
        break;
      }
      case 'cancel-out': {
        const reason = String(d.reason ?? '');
        const short = /cause=(\d+)/.exec(reason);
        row({ at: e.at, rank: R.cancelOut, kind: 'arrow', from: 'pushcall', to: lane, label: short ? `CANCEL (cause=${short[1]})` : 'CANCEL', note: short ? `Reason: ${reason}` : reason });
        break;
      }
      case 'wake-timeout':
        row({ at: e.at, rank: R.responseIn, kind: 'note', lane: 'pushcall', label: `wake timeout after ${String(d.waitedMs)} ms` });
        break;
      case 'alert-push':
        row({ at: e.at, rank: R.alert, kind: 'arrow', from: 'pushcall', to: 'push', label: `alert push (${String(d.type)})` });
        break;
      case 'ended':
        row({ at: e.at, rank: R.serverEnded, kind: 'note', lane: 'pushcall', label: `call ${String(d.outcome)} (${String(d.status)})` });
        break;
      default:
        break;
    }
  }
  void party;
}

function addPhoneRow(what: string, at: number, platform: 'ios' | 'android', endReason: string | undefined, row: (r: LadderRow) => void): void {
  if (what.startsWith('VoIP push')) {
    row({ at, rank: R.pushDelivered, kind: 'arrow', from: 'push', to: 'phone', label: 'VoIP push', note: 'PushKit wakes the app' });
    if (what.includes('reported to CallKit')) row({ at, rank: R.reported, kind: 'note', lane: 'phone', label: 'reported to CallKit: it rings (no INVITE yet)' });
    if (what.includes('KILLED')) row({ at, rank: R.reported, kind: 'note', lane: 'phone', label: 'APP KILLED by iOS' });
  } else if (what.startsWith('FCM data message')) {
    row({ at, rank: R.pushDelivered, kind: 'arrow', from: 'push', to: 'phone', label: 'FCM data message', note: 'high priority: leaves Doze' });
    row({ at, rank: R.reported, kind: 'note', lane: 'phone', label: 'shown by ConnectionService: it rings (no INVITE yet)' });
  } else if (what.startsWith('INVITE matched')) {
    row({ at, rank: R.inviteMatched, kind: 'note', lane: 'phone', label: 'INVITE delivered, matched to the ringing call by Call-ID' });
  } else if (what === 'user taps Answer' || what === 'user taps Decline') {
    row({ at, rank: R.tap, kind: 'note', lane: 'phone', label: what });
  } else if (what.startsWith('connected')) {
    row({ at, rank: R.connected, kind: 'note', lane: 'phone', label: `connected (${platform === 'ios' ? 'CallKit' : 'Telecom'} activated the audio session)` });
  } else if (what.startsWith('call ended')) {
    row({ at, rank: R.phoneEnded, kind: 'note', lane: 'phone', label: `ended: ${endReason ?? 'hung up locally'}` });
  }
}

function summaryTable(results: ScenarioResult[]): string[] {
  const head = ['#', 'scenario', 'caller got', 'expected', 'phone ended', 'expected', 'pushes', 'kills', 'result'];
  const body = results.map((r, i) => [
    String(i + 1),
    r.id,
    String(r.callerStatus ?? '-'),
    String(r.expectedStatus),
    r.phoneEnd ?? '-',
    r.expectedPhoneEnd,
    String(r.voipPushes),
    String(r.kills),
    r.passed ? 'PASS' : 'FAIL',
  ]);
  return table(head, body);
}

/** A plain-text table with aligned columns. */
export function table(head: string[], body: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [fmt(head), widths.map((w) => '─'.repeat(w)).join('  '), ...body.map(fmt)];
}
