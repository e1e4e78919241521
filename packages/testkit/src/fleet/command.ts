/**
 * `pushcall sim`: the phone fleet from the command line.
 *
 *   pushcall sim --phones 100 --ios-share 0.5 --rate 10 --duration 30
 *   pushcall sim --phones 500 --rate 20 --loss 2% --latency 20-60 --push-delay 50-300 \
 *                --answer-mix answer=0.8,decline=0.1,ignore=0.1 --cancel-share 0.1 --json sim.json
 *   pushcall sim --server udp:127.0.0.1:5060 --admin 127.0.0.1:8080   # an external server
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { FLEET_DEFAULTS, type FleetOptions, runFleet } from './fleet.js';
import { formatFleetReport } from './report.js';

/** `150` or `100-300` (ms). */
export function parseRange(text: string): number | [number, number] {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:-\s*(\d+(?:\.\d+)?))?\s*$/.exec(text);
  if (!m) throw new Error(`expected <ms> or <min>-<max>, got "${text}"`);
  const a = Number(m[1]);
  if (m[2] === undefined) return a;
  const b = Number(m[2]);
  if (b < a) throw new Error(`range ${text}: max < min`);
  return [a, b];
}

/** `2%` or `0.02`. */
export function parseShare(text: string): number {
  const t = text.trim();
  const v = t.endsWith('%') ? Number(t.slice(0, -1)) / 100 : Number(t);
  if (!Number.isFinite(v) || v < 0 || v > 1) throw new Error(`expected a share in 0..1 or a percentage, got "${text}"`);
  return v;
}

/** `answer=0.8,decline=0.1,ignore=0.1` (weights; missing ones are 0). */
export function parseMix(text: string): FleetOptions['answerMix'] {
  const mix = { answer: 0, decline: 0, ignore: 0 };
  for (const part of text.split(',')) {
    const [k, v] = part.split('=').map((s) => s.trim());
    if (!(k in mix) || v === undefined || !Number.isFinite(Number(v)) || Number(v) < 0) throw new Error(`--answer-mix: bad entry "${part}"`);
    mix[k as keyof typeof mix] = Number(v);
  }
  if (mix.answer + mix.decline + mix.ignore <= 0) throw new Error('--answer-mix: all weights are 0');
  return mix;
}

const int = (name: string, min: number) => (text: string) => {
  const v = Number(text);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name}: expected an integer >= ${min}, got "${text}"`);
  return v;
};
const num = (name: string, min: number) => (text: string) => {
  const v = Number(text);
  if (!Number.isFinite(v) || v < min) throw new Error(`${name}: expected a number >= ${min}, got "${text}"`);
  return v;
};

interface SimFlags {
  phones: number;
  iosShare: number;
  rate: number;
  duration: number;
  server?: string;
  callServer?: string;
  admin?: string;
  domain: string;
  latency: number | [number, number];
  loss: number;
  pushDelay: number | [number, number];
  pushLoss: number;
  launchDelay: number | [number, number];
  answerMix: FleetOptions['answerMix'];
  answerDelay: number | [number, number];
  cancelShare: number;
  cancelAfter: number | [number, number];
  talk: number;
  giveUp: number;
  callers: number;
  wakeTimeout: number;
  store: 'sqlite' | 'memory';
  seed: number;
  json?: string;
  quiet?: boolean;
}

export function registerSimCommand(program: Command): void {
  const d = FLEET_DEFAULTS;
  const r = (v: number | [number, number]) => (typeof v === 'number' ? String(v) : `${v[0]}-${v[1]}`);
  program
    .command('sim')
    .description('a fleet of simulated sleeping phones (iOS/Android) receiving calls: wake latency, ghost calls, app kills')
    .option('--phones <n>', 'simulated phones', int('--phones', 1), d.phones)
    .option('--ios-share <share>', 'share of iPhones (rest Android)', parseShare, d.iosShare)
    .option('--rate <calls/s>', 'calls per second', num('--rate', 0.01), d.rate)
    .option('--duration <s>', 'length of the call phase, seconds', num('--duration', 0.1), d.durationSec)
    .option('--server <udp:host:port>', 'use an external RFC 8599 server (default: an in-process pushcall lab)')
    .option('--call-server <udp:host:port>', 'with --server: callers call this server instead (another node of a multi-node cluster)')
    .option('--admin <host:port>', 'external pushcall admin API, to read call timelines (server-side latencies)')
    .option('--domain <domain>', 'SIP domain of the phones and callers', d.domain)
    .option('--latency <ms|min-max>', 'one-way network latency phones <-> server', parseRange, d.latencyMs)
    .option('--loss <share>', 'UDP loss phones <-> server per direction (2% or 0.02)', parseShare, d.loss)
    .option('--push-delay <ms|min-max>', 'push delivery delay (emulator -> device)', parseRange, d.pushDelayMs)
    .option('--push-loss <share>', 'pushes accepted but never delivered', parseShare, d.pushLoss)
    .option('--launch-delay <ms|min-max>', 'push delivery -> the app\'s REGISTER', parseRange, d.launchDelayMs)
    .option('--answer-mix <mix>', 'answer=W,decline=W,ignore=W', parseMix, d.answerMix)
    .option('--answer-delay <ms|min-max>', 'ring -> the user answers or declines', parseRange, d.answerDelayMs)
    .option('--cancel-share <share>', 'calls the caller cancels while ringing', parseShare, d.cancelShare)
    .option('--cancel-after <ms|min-max>', 'INVITE -> CANCEL for those calls', parseRange, d.cancelAfterMs)
    .option('--talk <ms>', 'connected calls last this long', num('--talk', 0), d.talkMs)
    .option('--give-up <ms>', 'callers cancel calls not answered by then', num('--give-up', 100), d.giveUpMs)
    .option('--callers <n>', 'caller user agents', int('--callers', 1), d.callers)
    .option('--wake-timeout <s>', 'in-process lab: wake timeout', num('--wake-timeout', 0.1), d.wakeTimeoutSeconds)
    .option('--store <type>', 'in-process lab: sqlite|memory', d.store)
    .option('--seed <n>', 'random seed', int('--seed', 0), d.seed)
    .option('--json <file>', 'write the full report as JSON')
    .option('-q, --quiet', 'no progress lines')
    .addHelpText(
      'after',
      `\nRanges: ${r(d.launchDelayMs)} means uniform between the two (ms). Shares: 0.02 or 2%.\n` +
        'With --server, only the APNs/FCM emulators start here; their URLs, key and CA file are printed:\n' +
        'start the server with them (see docs/fleet.md), the fleet waits for it to answer OPTIONS.',
    )
    .action(async (f: SimFlags) => {
      if (f.store !== 'sqlite' && f.store !== 'memory') throw new Error('--store: sqlite or memory');
      if (f.callServer && !f.server) throw new Error('--call-server needs --server (the node the phones register with)');
      const log = f.quiet ? undefined : (line: string) => process.stderr.write(`sim: ${line}\n`);
      const report = await runFleet({
        phones: f.phones,
        iosShare: f.iosShare,
        rate: f.rate,
        durationSec: f.duration,
        server: f.server,
        callServer: f.callServer,
        admin: f.admin,
        domain: f.domain,
        latencyMs: f.latency,
        loss: f.loss,
        pushDelayMs: f.pushDelay,
        pushLoss: f.pushLoss,
        launchDelayMs: f.launchDelay,
        answerMix: f.answerMix,
        answerDelayMs: f.answerDelay,
        cancelShare: f.cancelShare,
        cancelAfterMs: f.cancelAfter,
        talkMs: f.talk,
        giveUpMs: f.giveUp,
        callers: f.callers,
        wakeTimeoutSeconds: f.wakeTimeout,
        store: f.store,
        seed: f.seed,
        log,
      });
      process.stdout.write(formatFleetReport(report) + '\n');
      if (f.json) writeFileSync(f.json, JSON.stringify(report, null, 2));
      // Exit non-zero when the phones broke the platform rules.
      process.exitCode = report.appKills === 0 ? 0 : 1;
    });
}
