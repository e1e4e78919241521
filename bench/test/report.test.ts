/** The SIP benchmark's summary: what BENCHMARKS.md quotes, with and without --repeat. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarize, type StepBase } from '../lib/report.js';

function step(server: string, offeredRate: number, cpu: number, sustained = true): StepBase {
  return { server, offeredRate, successRate: offeredRate * 0.99, serverCpuUsPerOp: cpu, sustained } as StepBase;
}

test('one run: the highest sustained rate, the first failing one, CPU at the common rate', () => {
  const [s] = summarize(['pushcall'], [step('pushcall', 5000, 130), step('pushcall', 10000, 110), step('pushcall', 15000, 100, false)], 10000);
  assert.equal(s.highestSustained?.offeredRate, 10000);
  assert.equal(s.firstFailing, 15000);
  assert.equal(s.cpuUsPerOpAtCommonRate, 110);
  assert.deepEqual(s.cpuUsPerOpAtCommonRateRuns, [110]);
  assert.equal(s.commonRateSustained, true);
});

test('repeats: the median CPU at the common rate, every run kept; a rate counts as sustained only if every repeat was', () => {
  const steps = [
    step('pushcall', 1000, 509), step('kamailio', 1000, 236),
    step('pushcall', 1000, 517), step('kamailio', 1000, 205),
    step('pushcall', 1000, 471), step('kamailio', 1000, 196),
    step('pushcall', 2000, 465), step('pushcall', 2000, 548, false),
  ];
  const [p, k] = summarize(['pushcall', 'kamailio'], steps, 1000);
  assert.equal(p.cpuUsPerOpAtCommonRate, 509);
  assert.deepEqual(p.cpuUsPerOpAtCommonRateRuns, [509, 517, 471]);
  assert.equal(k.cpuUsPerOpAtCommonRate, 205);
  assert.equal(p.highestSustained?.offeredRate, 1000, '2,000/s failed in one of two repeats');
  assert.equal(p.firstFailing, 2000);
  const [even] = summarize(['pushcall'], [step('pushcall', 1000, 400), step('pushcall', 1000, 300)], 1000);
  assert.equal(even.cpuUsPerOpAtCommonRate, 300, 'an even count quotes the lower middle run, a measured value');
});
