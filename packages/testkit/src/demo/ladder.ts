/**
 * Plain-text ladder (sequence) diagrams: one lifeline per party, one row per step, with
 * the time since the caller's INVITE on the left. Rows are merged from several clocks-of-
 * record (the caller, the server's call timeline, the phone's own story), all on the
 * same wall clock; ties within a millisecond are broken by the step's place in the flow.
 *
 *      +0 ms  │──── INVITE ─────▶│                   │                   │
 *      +1 ms  │                  │─ push (voip, 10) ▶│                   │
 */

export type Lane = 'caller' | 'pushcall' | 'push' | 'phone' | 'desk';

export const LANE_TITLES: Record<Lane, string> = {
  caller: 'caller',
  pushcall: 'pushcall',
  push: 'APNs/FCM',
  phone: 'phone',
  desk: 'desk phone',
};

export type LadderRow =
  | { at: number; rank: number; kind: 'arrow'; from: Lane; to: Lane; label: string; note?: string }
  | { at: number; rank: number; kind: 'note'; lane: Lane; label: string };

export interface LadderOptions {
  /** Time origin (ms); defaults to the first row. */
  t0?: number;
  /** Lanes to draw, left to right (default: those used, in canonical order). */
  lanes?: Lane[];
  /** Columns between two lifelines (default 27). */
  gap?: number;
  /** ANSI colours (only when writing to a TTY). */
  color?: boolean;
}

const ORDER: Lane[] = ['caller', 'pushcall', 'push', 'phone', 'desk'];
const TIME_WIDTH = 11;

export function sortRows(rows: LadderRow[]): LadderRow[] {
  return rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.at - b.r.at || a.r.rank - b.r.rank || a.i - b.i)
    .map((x) => x.r);
}

function formatOffset(ms: number): string {
  const v = Math.round(ms);
  return `+${v} ms`.padStart(TIME_WIDTH - 2) + '  ';
}

/** Render rows (sorted here) as a ladder diagram; returns the lines. */
export function renderLadder(input: LadderRow[], options: LadderOptions = {}): string[] {
  const rows = sortRows(input);
  const used = new Set<Lane>();
  for (const r of rows) {
    if (r.kind === 'arrow') {
      used.add(r.from);
      used.add(r.to);
    } else used.add(r.lane);
  }
  const lanes = options.lanes ?? ORDER.filter((l) => used.has(l) || l === 'caller' || l === 'pushcall' || l === 'phone');
  const gap = options.gap ?? 27;
  const x = new Map<Lane, number>(lanes.map((l, i) => [l, i * gap]));
  const width = (lanes.length - 1) * gap + 1;
  const t0 = options.t0 ?? rows[0]?.at ?? 0;
  const c = colours(options.color ?? false);

  const lines: string[] = [];
  // Header: lane titles centred on their lifelines.
  const header = Array<string>(width + gap).fill(' ');
  for (const l of lanes) {
    const title = LANE_TITLES[l];
    const start = Math.max(0, Math.min(width + gap - title.length, x.get(l)! - Math.floor(title.length / 2)));
    for (let i = 0; i < title.length; i++) header[start + i] = title[i];
  }
  lines.push(' '.repeat(TIME_WIDTH) + c.bold(header.join('').trimEnd()));

  for (const row of rows) {
    const cells = Array<string>(width).fill(' ');
    for (const l of lanes) cells[x.get(l)!] = '│';
    let trailer = '';
    if (row.kind === 'arrow') {
      const a = x.get(row.from);
      const b = x.get(row.to);
      if (a === undefined || b === undefined) continue;
      const left = Math.min(a, b);
      const right = Math.max(a, b);
      for (let i = left + 1; i < right; i++) cells[i] = '─';
      if (b > a) cells[right - 1] = '▶';
      else cells[left + 1] = '◀';
      const span = right - left - 3; // room between the arrow's ends
      let label = ` ${row.label} `;
      if (label.length > span) {
        // Too long for the arrow: keep the start inside, move the rest to the note.
        label = ` ${row.label.slice(0, Math.max(0, span - 3))}… `;
        trailer = row.label;
      }
      const start = left + 2 + Math.floor((span - label.length) / 2);
      for (let i = 0; i < label.length; i++) cells[start + i] = label[i];
      if (row.note) trailer = trailer ? `${trailer}; ${row.note}` : row.note;
    } else {
      const p = x.get(row.lane);
      if (p === undefined) continue;
      cells[p] = '●';
      trailer = `${LANE_TITLES[row.lane]}: ${row.label}`;
    }
    let line = cells.join('');
    if (row.kind === 'arrow') line = c.arrow(line);
    const time = formatOffset(row.at - t0);
    lines.push((c.dim(time) + line + (trailer ? `   ${row.kind === 'note' ? c.note(trailer) : c.dim(trailer)}` : '')).trimEnd());
  }
  return lines;
}

function colours(on: boolean) {
  const wrap = (code: string) => (s: string) => (on ? `\u001b[${code}m${s}\u001b[0m` : s);
  return { bold: wrap('1'), dim: wrap('2'), note: wrap('36'), arrow: (s: string) => s };
}
