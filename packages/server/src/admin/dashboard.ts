/**
 * The live dashboard served by the admin HTTP server at `/`: one page, one script, one
 * stylesheet, no build step and nothing loaded from elsewhere (the admin port is often on a
 * management network without Internet access, and the Content-Security-Policy allows only
 * 'self'). The page polls `/api/summary` and `/api/calls` once a second.
 *
 * Everything shown comes from SIP headers a caller wrote (From, To, Call-ID), so the script
 * puts text in the page with `textContent` only, never as HTML.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pushcall</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>pushcall</h1>
  <span id="node"></span>
  <span id="status" class="status">connecting…</span>
  <label><input type="checkbox" id="paused"> pause</label>
</header>
<main>
  <section class="cards">
    <div class="card"><div class="label">bindings</div><div class="value" id="bindings">–</div><div class="sub" id="providers"></div></div>
    <div class="card"><div class="label">AORs</div><div class="value" id="aors">–</div></div>
    <div class="card"><div class="label">waiting for a device to wake</div><div class="value" id="held">–</div></div>
    <div class="card"><div class="label">offline messages kept</div><div class="value" id="offline">–</div></div>
    <div class="card"><div class="label">wake, INVITE in → INVITE to the woken device</div><div class="value" id="wake">–</div><div class="sub" id="wake-n"></div></div>
    <div class="card"><div class="label">calls by outcome</div><div class="sub" id="outcomes"></div></div>
    <div class="card"><div class="label">REGISTERs by status</div><div class="sub" id="registers"></div></div>
  </section>
  <section>
    <h2>Recent calls</h2>
    <table id="calls">
      <thead><tr><th>started</th><th>method</th><th>from</th><th>to</th><th>pushes</th><th>wake</th><th>outcome</th><th>duration</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section id="timeline" hidden>
    <h2>Timeline <span id="timeline-call"></span></h2>
    <table>
      <thead><tr><th>+ms</th><th>event</th><th>branch</th><th>detail</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
</body>
</html>
`;

export const DASHBOARD_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2733; background: #f4f6f8; }
header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1.2em; background: #1d2733; color: #fff; }
header h1 { font-size: 1.2em; margin: 0; }
.status { margin-left: auto; font-size: .9em; }
.status.error { color: #ff8a80; }
main { padding: 1em 1.2em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(14em, 1fr)); gap: .8em; margin-bottom: 1.2em; }
.card { background: #fff; border-radius: 6px; padding: .7em .9em; box-shadow: 0 1px 2px #0002; }
.label { font-size: .8em; color: #5b6b7c; }
.value { font-size: 1.8em; font-weight: 600; }
.sub { font-size: .85em; color: #394858; white-space: pre-line; }
h2 { font-size: 1em; margin: .4em 0; }
table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0002; }
th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #e3e8ee; font-size: .9em; }
td { font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
#calls tbody tr { cursor: pointer; }
#calls tbody tr:hover, #calls tbody tr.selected { background: #e8f1fb; }
.ok { color: #1b7f3b; } .bad { color: #b3261e; } .live { color: #8a5a00; }
`;

export const DASHBOARD_JS = `'use strict';
const $ = (id) => document.getElementById(id);
let selected = null;

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function lines(counts) {
  const entries = Object.entries(counts || {}).sort((a, b) => b[1] - a[1]);
  return entries.length === 0 ? 'none yet' : entries.map(([k, n]) => k + ': ' + n).join('\\n');
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** INVITE in to the first request forwarded on a branch whose device registered (woke). */
function wakeMs(call) {
  const woken = new Set();
  for (const e of call.events) {
    if (e.kind === 'device-registered') woken.add(e.branch);
    else if (e.kind === 'request-out' && woken.has(e.branch)) return e.offsetMs;
  }
  return undefined;
}

function pushes(call) {
  const out = [];
  for (const e of call.events) {
    const provider = e.detail && e.detail.provider;
    if (e.kind === 'push-accepted') out.push((provider || 'push') + ' ok');
    else if (e.kind === 'push-failed') out.push((provider || 'push') + ' ' + ((e.detail && (e.detail.code || e.detail.status)) || 'failed'));
  }
  return out.join(', ');
}

function renderSummary(s) {
  // Multi-node: the live nodes sharing the store (null: Redis did not answer).
  const adopted = s.cluster && s.cluster.adopted && s.cluster.adopted.length > 0 ? ' · refreshing for ' + s.cluster.adopted.join(', ') : '';
  const cluster = s.cluster ? ' · cluster ' + (s.cluster.nodes ? s.cluster.nodes.map((n) => n.id).join(', ') : 'unreachable') + adopted : '';
  $('node').textContent = 'node ' + s.node + ' · up ' + Math.round(s.uptimeSeconds) + ' s' + cluster;
  $('bindings').textContent = String(s.bindings.bindings);
  $('aors').textContent = String(s.bindings.aors);
  $('providers').textContent = lines(s.bindings.byProvider);
  $('held').textContent = String(s.heldBranches);
  // Off (undefined) or its store did not answer (null).
  $('offline').textContent = s.offlineMessages === undefined ? 'off' : s.offlineMessages === null ? '?' : String(s.offlineMessages);
  $('outcomes').textContent = lines(s.calls);
  $('registers').textContent = lines(s.registers);
}

function renderCalls(calls) {
  const body = document.querySelector('#calls tbody');
  body.replaceChildren();
  const wakes = [];
  for (const call of calls) {
    const row = document.createElement('tr');
    row.dataset.callId = call.callId;
    if (call.callId === selected) row.className = 'selected';
    const wake = wakeMs(call);
    if (wake !== undefined) wakes.push(wake);
    cell(row, new Date(call.startedAt).toLocaleTimeString());
    cell(row, call.method);
    cell(row, call.from);
    cell(row, call.to);
    cell(row, pushes(call));
    cell(row, wake === undefined ? '' : wake.toFixed(1) + ' ms');
    const ended = call.endedAt !== undefined;
    const outcome = ended ? call.outcome + (call.finalStatus ? ' (' + call.finalStatus + ')' : '') : 'in progress';
    cell(row, outcome, !ended ? 'live' : call.finalStatus >= 200 && call.finalStatus < 300 ? 'ok' : 'bad');
    cell(row, ended ? ((call.endedAt - call.startedAt) / 1000).toFixed(1) + ' s' : '');
    row.addEventListener('click', () => { selected = call.callId; renderTimeline(call); });
    body.appendChild(row);
  }
  wakes.sort((a, b) => a - b);
  $('wake').textContent = wakes.length === 0 ? '–' : 'p50 ' + percentile(wakes, 50).toFixed(0) + ' ms';
  $('wake-n').textContent = wakes.length === 0 ? 'no woken call among the recent ones'
    : 'p90 ' + percentile(wakes, 90).toFixed(0) + ' ms · max ' + wakes[wakes.length - 1].toFixed(0) + ' ms · ' + wakes.length + ' woken calls';
  const current = calls.find((c) => c.callId === selected);
  if (current) renderTimeline(current);
}

function renderTimeline(call) {
  $('timeline').hidden = false;
  $('timeline-call').textContent = call.callId;
  const body = document.querySelector('#timeline tbody');
  body.replaceChildren();
  for (const e of call.events) {
    const row = document.createElement('tr');
    cell(row, e.offsetMs.toFixed(1));
    cell(row, e.kind);
    cell(row, e.branch || '');
    cell(row, e.detail ? JSON.stringify(e.detail) : '');
    body.appendChild(row);
  }
}

// admin.token: given in the page's URL fragment (/#token=…), which never leaves the browser.
const token = new URLSearchParams(location.hash.slice(1)).get('token');

async function getJson(path) {
  const response = await fetch(path, { cache: 'no-store', headers: token ? { authorization: 'Bearer ' + token } : {} });
  if (!response.ok) throw new Error(path + ': HTTP ' + response.status);
  return response.json();
}

async function refresh() {
  if ($('paused').checked) return;
  try {
    const [summary, calls] = await Promise.all([getJson('/api/summary'), getJson('/api/calls?limit=50')]);
    renderSummary(summary);
    renderCalls(calls.calls);
    $('status').textContent = 'updated ' + new Date().toLocaleTimeString();
    $('status').className = 'status';
  } catch (error) {
    $('status').textContent = 'cannot reach pushcall: ' + error.message;
    $('status').className = 'status error';
  }
}

refresh();
setInterval(refresh, 1000);
`;
