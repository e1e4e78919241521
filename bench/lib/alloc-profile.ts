/**
 * Bytes allocated per operation, from V8's sampling heap profiler with collected objects
 * kept in the profile. Unlike CPU time on this shared machine, allocation per operation is
 * stable from run to run, and young-generation garbage collection is a sixth of a REGISTER's
 * CPU, so it is the number to watch when cutting allocations.
 *   const profile = await startAllocationProfile();  ...  report(await profile.stop(), count)
 */
import { Session } from 'node:inspector/promises';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

export interface AllocationReport {
  bytesPerOp: number;
  /** The largest allocation sites, bytes per operation. */
  top: Array<{ site: string; bytesPerOp: number }>;
}

export async function startAllocationProfile(): Promise<{ stop(operations: number): Promise<AllocationReport> }> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return {
    async stop(operations) {
      const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: ProfileNode } };
      session.disconnect();
      const bySite = new Map<string, number>();
      let total = 0;
      const walk = (node: ProfileNode): void => {
        const f = node.callFrame;
        const site = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
        total += node.selfSize;
        if (node.selfSize > 0) bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
        for (const child of node.children) walk(child);
      };
      walk(profile.head);
      const top = [...bySite]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 12)
        .map(([site, bytes]) => ({ site, bytesPerOp: Math.round(bytes / operations) }));
      return { bytesPerOp: Math.round(total / operations), top };
    },
  };
}
