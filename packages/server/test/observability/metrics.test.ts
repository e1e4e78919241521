/** Metrics whose labels come from the wire stay bounded. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ServerMetrics } from '../../src/observability/metrics.js';
import { validateConfig } from '../../src/config/load.js';
import { PushcallServer } from '../../src/server.js';
import { tempDir } from '../helpers/server.js';

test('inbound requests are counted by method; invented methods all count as OTHER', async () => {
  const metrics = new ServerMetrics();
  for (let i = 0; i < 1000; i++) metrics.countInbound(`X${i}`);
  metrics.countInbound('INVITE');
  metrics.countInbound('INVITE');
  metrics.countInbound('REGISTER');
  const text = await metrics.registry.getSingleMetricAsString('pushcall_sip_messages_total');
  assert.match(text, /\{direction="in",kind="INVITE"\} 2/);
  assert.match(text, /\{direction="in",kind="REGISTER"\} 1/);
  assert.match(text, /\{direction="in",kind="OTHER"\} 1000/);
  assert.equal(text.split('\n').filter((l) => l.startsWith('pushcall_sip_messages_total{')).length, 3);
});

test('REGISTER and call counts read the same on every scrape and grow between them', async () => {
  const metrics = new ServerMetrics();
  for (let i = 0; i < 3; i++) metrics.countRegister(200);
  metrics.countRegister(401);
  metrics.countCall('answered');
  const scrape = async () => `${await metrics.registry.getSingleMetricAsString('pushcall_register_total')}\n${await metrics.registry.getSingleMetricAsString('pushcall_calls_total')}`;
  const first = await scrape();
  assert.match(first, /pushcall_register_total\{status="200"\} 3/);
  assert.match(first, /pushcall_register_total\{status="401"\} 1/);
  assert.match(first, /pushcall_calls_total\{outcome="answered"\} 1/);
  assert.equal(await scrape(), first, 'a scrape does not add the totals again');
  metrics.countRegister(200);
  assert.match(await scrape(), /pushcall_register_total\{status="200"\} 4/);
});

test('without the admin listener no process metrics are collected (no event-loop sampling timer)', async () => {
  const closed = new PushcallServer({ config: validateConfig({ listen: ['udp:127.0.0.1:0'], dataDir: tempDir(), store: { type: 'memory' }, admin: { enabled: false }, log: { level: 'silent' } }) });
  assert.equal(closed.metrics.registry.getSingleMetric('pushcall_process_nodejs_eventloop_lag_seconds'), undefined);
  assert.ok(closed.metrics.registry.getSingleMetric('pushcall_register_total'), "the server's own series are still kept");
  const open = new PushcallServer({ config: validateConfig({ listen: ['udp:127.0.0.1:0'], dataDir: tempDir(), store: { type: 'memory' }, log: { level: 'silent' } }) });
  assert.ok(open.metrics.registry.getSingleMetric('pushcall_process_nodejs_eventloop_lag_seconds'));
});
