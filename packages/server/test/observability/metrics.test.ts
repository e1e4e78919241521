/** Metrics whose labels come from the wire stay bounded. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ServerMetrics } from '../../src/observability/metrics.js';

test('inbound requests are counted by method; invented methods all count as OTHER', async () => {
  const metrics = new ServerMetrics({ defaultMetrics: false });
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
  const metrics = new ServerMetrics({ defaultMetrics: false });
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
