// SVG charts (hand-written, no dependencies) from bench/results/sip-compare.json:
//   sip-compare-register.svg      REGISTER: successful/s vs offered rate, per server
//   sip-compare-register-cpu.svg  REGISTER: server CPU µs per REGISTER vs offered rate
//   sip-compare-calls.svg         calls: successful calls/s vs offered rate
//   sip-compare-calls-cpu.svg     calls: server CPU µs per call vs offered rate
//
//   node --conditions=source --import tsx bench/charts.ts [results.json] [out-dir]
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CompareResult, StepBase } from './lib/report.js';

const COLORS: Record<string, string> = {
  pushcall: '#d62728',
  'kamailio-tlsf': '#1f77b4',
  'kamailio-packaged': '#2ca02c',
};
const FALLBACK = ['#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

interface Series {
  name: string;
  points: { x: number; y: number; ok: boolean }[];
}

interface ChartSpec {
  title: string;
  subtitle: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** draw y = x (offered = achieved) */
  diagonal: boolean;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
}

const fmtTick = (v: number) => (v >= 1000 && v % 1000 === 0 ? `${v / 1000}k` : v >= 1000 ? `${(v / 1000).toFixed(1)}k` : `${Number(v.toFixed(2))}`);

export function renderChart(c: ChartSpec): string {
  const W = 760;
  const H = 460;
  const m = { l: 70, r: 190, t: 58, b: 56 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const all = c.series.flatMap((s) => s.points);
  const xMaxData = Math.max(1, ...all.map((p) => p.x));
  const yMaxData = Math.max(1, ...all.map((p) => p.y), c.diagonal ? xMaxData : 0);
  const xStep = niceStep(xMaxData, 6);
  const yStep = niceStep(yMaxData, 6);
  const xMax = Math.ceil(xMaxData / xStep) * xStep;
  const yMax = Math.ceil(yMaxData / yStep) * yStep;
  const X = (v: number) => m.l + (v / xMax) * pw;
  const Y = (v: number) => m.t + ph - (v / yMax) * ph;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text x="${m.l}" y="24" font-size="16" font-weight="bold">${esc(c.title)}</text>`);
  o.push(`<text x="${m.l}" y="42" fill="#555">${esc(c.subtitle)}</text>`);
  // grid + ticks
  for (let v = 0; v <= xMax + 1e-9; v += xStep) {
    o.push(`<line x1="${X(v)}" y1="${m.t}" x2="${X(v)}" y2="${m.t + ph}" stroke="#eee"/>`);
    o.push(`<text x="${X(v)}" y="${m.t + ph + 16}" text-anchor="middle" fill="#333">${fmtTick(v)}</text>`);
  }
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    o.push(`<line x1="${m.l}" y1="${Y(v)}" x2="${m.l + pw}" y2="${Y(v)}" stroke="#eee"/>`);
    o.push(`<text x="${m.l - 6}" y="${Y(v) + 4}" text-anchor="end" fill="#333">${fmtTick(v)}</text>`);
  }
  o.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  o.push(`<text x="${m.l + pw / 2}" y="${H - 14}" text-anchor="middle">${esc(c.xLabel)}</text>`);
  o.push(`<text transform="translate(18 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`);
  if (c.diagonal) {
    const d = Math.min(xMax, yMax);
    o.push(`<line x1="${X(0)}" y1="${Y(0)}" x2="${X(d)}" y2="${Y(d)}" stroke="#aaa" stroke-dasharray="5 4"/>`);
  }
  // series
  c.series.forEach((s, i) => {
    const color = COLORS[s.name] ?? FALLBACK[i % FALLBACK.length];
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    if (pts.length > 1) {
      o.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(' ')}"/>`);
    }
    for (const p of pts) {
      const cx = X(p.x).toFixed(1);
      const cy = Y(p.y).toFixed(1);
      o.push(
        p.ok
          ? `<circle cx="${cx}" cy="${cy}" r="4" fill="${color}"><title>${esc(s.name)}: ${p.x} → ${p.y.toFixed(1)}</title></circle>`
          : `<circle cx="${cx}" cy="${cy}" r="5" fill="#fff" stroke="${color}" stroke-width="2"><title>${esc(s.name)}: ${p.x} → ${p.y.toFixed(1)} (not sustained)</title></circle>`,
      );
    }
  });
  // legend
  const lx = m.l + pw + 16;
  let ly = m.t + 8;
  c.series.forEach((s, i) => {
    const color = COLORS[s.name] ?? FALLBACK[i % FALLBACK.length];
    o.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    o.push(`<circle cx="${lx + 11}" cy="${ly}" r="4" fill="${color}"/>`);
    o.push(`<text x="${lx + 30}" y="${ly + 4}">${esc(s.name)}</text>`);
    ly += 20;
  });
  ly += 6;
  o.push(`<circle cx="${lx + 11}" cy="${ly}" r="5" fill="#fff" stroke="#555" stroke-width="2"/>`);
  o.push(`<text x="${lx + 30}" y="${ly + 4}">not sustained</text>`);
  if (c.diagonal) {
    ly += 20;
    o.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="#aaa" stroke-dasharray="5 4"/>`);
    o.push(`<text x="${lx + 30}" y="${ly + 4}">ok = offered</text>`);
  }
  o.push('</svg>');
  return `${o.join('\n')}\n`;
}

/** One point per server and rate: with --repeat, the median of the repeats (sustained only if every repeat was). */
function series(steps: StepBase[], y: (s: StepBase) => number | null): Series[] {
  const names = [...new Set(steps.map((s) => s.server))];
  return names.map((name) => {
    const byRate = new Map<number, StepBase[]>();
    for (const s of steps.filter((st) => st.server === name)) byRate.set(s.offeredRate, [...(byRate.get(s.offeredRate) ?? []), s]);
    const points: { x: number; y: number; ok: boolean }[] = [];
    for (const [x, runs] of byRate) {
      const values = runs.map(y).filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
      if (values.length > 0) points.push({ x, y: values[Math.floor((values.length - 1) / 2)], ok: runs.every((r) => r.sustained) });
    }
    return { name, points };
  });
}

/** Write the charts for whatever sections the result has; returns the written paths. */
export function writeCharts(r: CompareResult, outDir: string): string[] {
  const machine = `${r.machine.model}, ${r.machine.nproc} cores, loopback`;
  const written: string[] = [];
  const emit = (file: string, spec: ChartSpec) => {
    const p = join(outDir, file);
    writeFileSync(p, renderChart(spec));
    written.push(p);
  };
  if (r.register) {
    const sub = `${r.register.durationSec} s per step, new user per REGISTER — ${machine}`;
    emit('sip-compare-register.svg', {
      title: 'REGISTER/UDP throughput vs offered rate',
      subtitle: sub,
      xLabel: 'offered REGISTER/s (SIPp -r)',
      yLabel: 'successful REGISTER/s',
      series: series(r.register.steps, (s) => s.successRate),
      diagonal: true,
    });
    emit('sip-compare-register-cpu.svg', {
      title: 'Server CPU per REGISTER',
      subtitle: sub,
      xLabel: 'offered REGISTER/s (SIPp -r)',
      yLabel: 'server CPU µs per successful REGISTER',
      series: series(r.register.steps, (s) => s.serverCpuUsPerOp),
      diagonal: false,
    });
  }
  if (r.calls) {
    const sub = `INVITE/180/200/ACK/BYE, SIPp UAC → server → SIPp UAS, ${r.calls.durationSec} s per step — ${machine}`;
    emit('sip-compare-calls.svg', {
      title: 'Proxied calls/UDP: throughput vs offered rate',
      subtitle: sub,
      xLabel: 'offered calls/s (SIPp -r)',
      yLabel: 'successful calls/s',
      series: series(r.calls.steps, (s) => s.successRate),
      diagonal: true,
    });
    emit('sip-compare-calls-cpu.svg', {
      title: 'Server CPU per proxied call',
      subtitle: sub,
      xLabel: 'offered calls/s (SIPp -r)',
      yLabel: 'server CPU µs per successful call',
      series: series(r.calls.steps, (s) => s.serverCpuUsPerOp),
      diagonal: false,
    });
  }
  return written;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const here = dirname(fileURLToPath(import.meta.url));
  const json = resolve(process.argv[2] ?? join(here, 'results', 'sip-compare.json'));
  const outDir = resolve(process.argv[3] ?? dirname(json));
  const r = JSON.parse(readFileSync(json, 'utf8')) as CompareResult;
  for (const p of writeCharts(r, outDir)) console.log(`wrote ${p}`);
}
