/**
 * Wake-latency chart from bench/results/wake.json: the cumulative distribution (CDF) of the
 * three wake latencies (caller's INVITE → phone rings; → INVITE at the phone; → answered),
 * one line style per UDP-loss run, as a hand-written SVG.
 *
 *   node --conditions=source --import tsx bench/wake-chart.ts [bench/results/wake.json] [bench/results/wake-latency.svg]
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Run {
  loss: number;
  phones: number;
  rate: number;
  durationSec: number;
  cdf: { ring: number[]; inviteDelivered: number[]; answered: number[] };
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const input = process.argv[2] ?? join(root, 'bench/results/wake.json');
const output = process.argv[3] ?? join(root, 'bench/results/wake-latency.svg');
const data = JSON.parse(readFileSync(input, 'utf8')) as { runs: Run[]; machine?: { model: string; nproc: number } };

const W = 800;
const H = 420;
const M = { left: 64, right: 215, top: 48, bottom: 56 };
const pw = W - M.left - M.right;
const ph = H - M.top - M.bottom;

const series = [
  { key: 'ring' as const, label: 'INVITE → phone rings', color: '#2b7bb9' },
  { key: 'inviteDelivered' as const, label: 'INVITE → INVITE at phone', color: '#e08a1e' },
  { key: 'answered' as const, label: 'INVITE → answered', color: '#3a9d4a' },
];
const dashes = ['', '6 4', '2 3', '10 3 2 3'];

const maxMs = Math.max(100, ...data.runs.flatMap((r) => [...r.cdf.ring, ...r.cdf.inviteDelivered, ...r.cdf.answered]));
const niceMax = niceCeil(maxMs);
const x = (ms: number) => M.left + (ms / niceMax) * pw;
const y = (p: number) => M.top + ph - (p / 100) * ph;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceCeil(v: number): number {
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * exp >= v) return m * exp;
  return 10 * exp;
}

const out: string[] = [];
out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
const first = data.runs[0];
const title = first ? `Wake latency CDF — ${first.phones} sleeping phones, ${first.rate} calls/s for ${first.durationSec} s` : 'Wake latency CDF';
out.push(`<text x="${M.left}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`);

// Grid and axes.
for (let i = 0; i <= 5; i++) {
  const ms = (niceMax / 5) * i;
  out.push(`<line x1="${x(ms)}" y1="${M.top}" x2="${x(ms)}" y2="${M.top + ph}" stroke="#e5e5e5"/>`);
  out.push(`<text x="${x(ms)}" y="${M.top + ph + 18}" text-anchor="middle">${Math.round(ms)}</text>`);
}
for (const p of [0, 25, 50, 75, 90, 99]) {
  out.push(`<line x1="${M.left}" y1="${y(p)}" x2="${M.left + pw}" y2="${y(p)}" stroke="${p === 50 || p === 99 ? '#ccc' : '#eee'}"/>`);
  out.push(`<text x="${M.left - 8}" y="${y(p) + 4}" text-anchor="end">${p}%</text>`);
}
out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
out.push(`<text x="${M.left + pw / 2}" y="${H - 14}" text-anchor="middle">ms after the caller's INVITE</text>`);
out.push(`<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">share of calls</text>`);

// One step line per series and run.
data.runs.forEach((run, ri) => {
  for (const s of series) {
    const pts = run.cdf[s.key];
    if (!pts || pts.length === 0) continue;
    let d = `M ${x(0).toFixed(1)} ${y(0).toFixed(1)}`;
    pts.forEach((ms, k) => {
      const prev = k === 0 ? 0 : k;
      d += ` L ${x(ms).toFixed(1)} ${y(prev).toFixed(1)} L ${x(ms).toFixed(1)} ${y(k + 1).toFixed(1)}`;
    });
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8" stroke-dasharray="${dashes[ri % dashes.length]}"/>`);
  }
});

// Legend.
let ly = M.top + 4;
const lx = M.left + pw + 16;
for (const s of series) {
  out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" stroke-width="3"/>`);
  out.push(`<text x="${lx + 30}" y="${ly + 4}">${esc(s.label)}</text>`);
  ly += 20;
}
ly += 8;
data.runs.forEach((run, ri) => {
  out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="#333" stroke-width="1.8" stroke-dasharray="${dashes[ri % dashes.length]}"/>`);
  out.push(`<text x="${lx + 30}" y="${ly + 4}">${(run.loss * 100).toFixed(0)} % UDP loss</text>`);
  ly += 20;
});
if (data.machine) {
  out.push(`<text x="${lx}" y="${ly + 16}" font-size="10" fill="#666">${esc(`${data.machine.nproc} CPU`)}</text>`);
  out.push(`<text x="${lx}" y="${ly + 30}" font-size="10" fill="#666">${esc(data.machine.model.slice(0, 30))}</text>`);
}
out.push('</svg>');
writeFileSync(output, out.join('\n') + '\n');
process.stdout.write(`wrote ${output}\n`);
