/**
 * A CPU profile of the measured part of an in-process benchmark only (`--cpu-prof` would also
 * profile the setup: module loading and building the messages). The file opens in Chrome
 * DevTools or speedscope; `summarize` prints the functions with the most self time.
 *   const profile = await startCpuProfile();  ...  await profile.stop('/tmp/x.cpuprofile')
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
}

export async function startCpuProfile(intervalMicros = 100): Promise<{ stop(file: string): Promise<string[]> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalMicros });
  await session.post('Profiler.start');
  return {
    async stop(file) {
      const { profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile };
      session.disconnect();
      writeFileSync(file, JSON.stringify(profile));
      return summarize(profile, 25);
    },
  };
}

/** The functions with the most self time, as "percent  name file:line" lines. */
export function summarize(profile: CpuProfile, rows: number): string[] {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const bySite = new Map<string, number>();
  for (const id of profile.samples) {
    const f = nodes.get(id)!.callFrame;
    const site = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    bySite.set(site, (bySite.get(site) ?? 0) + 1);
  }
  const total = profile.samples.length;
  return [...bySite]
    .sort((a, b) => b[1] - a[1])
    .slice(0, rows)
    .map(([site, n]) => `${((100 * n) / total).toFixed(1).padStart(5)} %  ${site}`);
}
