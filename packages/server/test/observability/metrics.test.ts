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
