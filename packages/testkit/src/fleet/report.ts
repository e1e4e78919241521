/** The fleet report as a plain-text table. */
import type { FleetReport } from './fleet.js';
import type { Percentiles } from './stats.js';

function table(head: string[], body: string[][], align: ('l' | 'r')[] = []): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (align[i] === 'r' ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(head), widths.map((w) => '─'.repeat(w)).join('  '), ...body.map(fmt)];
}

const ms = (v: number | null) => (v === null ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const pct = (v: number | null) => (v === null ? '-' : `${(v * 100).toFixed(2)} %`);

function pRow(name: string, p: Percentiles): string[] {
  return [name, String(p.n), ms(p.p50), ms(p.p90), ms(p.p99), ms(p.max)];
}

export function formatFleetReport(r: FleetReport): string {
  const o = r.options;
  const lines: string[] = [];
  lines.push(
    `pushcall sim — ${r.mode === 'lab' ? 'in-process lab' : 'external server'} ${r.server}; ${r.phones.total} phones (${r.phones.ios} iOS, ${r.phones.android} Android), ` +
      `${o.rate} calls/s for ${o.durationSec} s; network ${JSON.stringify(o.latencyMs)} ms / ${(o.loss * 100).toFixed(1)} % loss; ` +
      `push delay ${JSON.stringify(o.pushDelayMs)} ms / ${(o.pushLoss * 100).toFixed(1)} % loss; answer ${o.answerMix.answer}/${o.answerMix.decline}/${o.answerMix.ignore} (answer/decline/ignore); cancels ${(o.cancelShare * 100).toFixed(0)} %`,
  );
  lines.push(`phones registered: ${r.phones.registered}/${r.phones.total} in ${r.phones.registerSeconds.toFixed(1)} s${r.phones.registerFailed ? ` (${r.phones.registerFailed} failed)` : ''}`);
  lines.push('');
  const c = r.calls;
  lines.push(
    ...table(
      ['calls', 'count'],
      [
        ['attempted', String(c.attempted)],
        ['connected (caller got 2xx)', String(c.connected)],
        ['answered on the phone', String(c.answeredByPhone)],
        ['expected to connect', String(c.expectedToConnect)],
        ['connected share of expected', pct(c.connectedShare)],
        ['cancelled by the caller (487)', String(c.cancelledByCaller)],
        ['caller gave up (487)', String(c.gaveUp)],
        ['declined on the phone', String(c.declined)],
        ['unfinished at the end', String(c.unfinished)],
        ['skipped (no free phone)', String(c.skippedNoFreePhone)],
      ],
      ['l', 'r'],
    ),
  );
  lines.push('');
  lines.push(
    ...table(
      ['caller final status', 'calls', 'unexpected'],
      Object.entries(c.finalStatus)
        .sort()
        .map(([k, v]) => [k, String(v), String(c.unexpected[k] ?? 0)]),
      ['l', 'r', 'r'],
    ),
  );
  lines.push('');
  lines.push(
    ...table(
      ['latency (ms)', 'n', 'p50', 'p90', 'p99', 'max'],
      [
        pRow('INVITE → phone rings (call UI)', r.wakeLatency.ring),
        pRow('INVITE → INVITE at the phone', r.wakeLatency.inviteDelivered),
        pRow('INVITE → answered (200 at caller)', r.wakeLatency.answered),
        pRow('INVITE sent → push at emulator', r.proxyBlackBox.inviteToPushAtEmulator),
        pRow('REGISTER sent → INVITE at phone', r.proxyBlackBox.registerSentToInviteAtPhone),
        ...(r.serverTimeline
          ? [
              pRow('server: INVITE in → push sent', r.serverTimeline.inviteToPush),
              pRow('server: push request (APNs/FCM)', r.serverTimeline.pushRequest),
              pRow('server: push → device registered', r.serverTimeline.pushToRegister),
              pRow('server: registered → INVITE out', r.serverTimeline.registerToInvite),
            ]
          : []),
        pRow('ghost calls: rang after the call ended', r.ghosts.ringMs),
      ],
      ['l', 'r', 'r', 'r', 'r', 'r'],
    ),
  );
  lines.push('');
  lines.push(
    `ghost calls: ${r.ghosts.count} (rang > ${r.ghosts.toleranceMs} ms after the caller's final response; ${r.ghosts.over1s} longer than 1 s; ${r.ghosts.unended} never ended)`,
  );
  lines.push(`app kills: ${r.appKills}${r.appKills === 0 ? ' ✔' : ' ✘ (must be 0)'}; platform rule violations: ${r.platformViolations}`);
  lines.push(`pushes: ${r.push.callPushes} call pushes + ${r.push.alertPushes} alerts (missed call) accepted; ${r.push.delivered} delivered, ${r.push.lost} lost (injected)`);
  if (r.relay) {
    lines.push(
      `network relay: ${r.relay.toServer} → server (${r.relay.droppedToServer} dropped), ${r.relay.toPhones} → phones (${r.relay.droppedToPhones} dropped), ${r.relay.flowsOpened} flows`,
    );
  }
  lines.push(`run time ${r.durationSeconds.toFixed(1)} s`);
  return lines.join('\n');
}
