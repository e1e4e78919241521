/**
 * `npm run bench`: every benchmark in turn, each writing its results under bench/results/.
 * BENCHMARKS.md quotes those files. Loopback only; every server and peer is stopped at the end.
 *
 *   npm run bench                      # all, full length (~30 min on the 2-core machine)
 *   npm run bench -- --quick           # all, short steps (~8 min)
 *   npm run bench -- --only sip,push   # a subset: message, register, call, push, sip, wake, memory, held, refresh,
 *                                      #   cluster (needs redis-server)
 *
 * The server benchmarks (register, call, sip) measure the compiled packages (scripts/build.mjs,
 * run first), as a deployment runs them; the rest run the sources through tsx.
 */
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyIndex = args.indexOf('--only');
const only = onlyIndex >= 0 ? args[onlyIndex + 1].split(',') : undefined;

interface Step {
  name: string;
  what: string;
  argv: string[];
  /** Measures the compiled packages (dist/): build first. */
  compiled?: boolean;
}

const tsx = ['--conditions=source', '--import', 'tsx'];
// The bench script itself through tsx, the @pushcall packages from their dist/.
const compiled = ['--import', 'tsx'];
const steps: Step[] = [
  { name: 'message', what: 'SIP parse+serialize (REGISTER with RFC 8599 params, INVITE with SDP)', argv: [...tsx, 'bench/sip-message.ts'] },
  { name: 'register', what: 'CPU per REGISTER through pushcall without sockets (SQLite store)', argv: [...compiled, 'bench/register-inprocess.ts', quick ? '50000' : '200000', 'sqlite'], compiled: true },
  { name: 'call', what: 'CPU per proxied call through pushcall without sockets', argv: [...compiled, 'bench/call-inprocess.ts', quick ? '20000' : '50000'], compiled: true },
  { name: 'push', what: 'APNs client to the emulator: pushes/s and added latency at 1,000/s', argv: [...tsx, 'bench/push.ts', ...(quick ? ['--quick'] : [])] },
  { name: 'sip', what: 'REGISTER and proxied calls: pushcall vs Kamailio (-x tlsf, packaged) with SIPp', argv: [...tsx, 'bench/sip-compare.ts', ...(quick ? ['--quick'] : [])], compiled: true },
  { name: 'wake', what: 'wake at scale: 5,000 sleeping phones, 100 calls/s', argv: [...tsx, 'bench/wake.ts', ...(quick ? ['--quick'] : [])] },
  { name: 'memory', what: 'memory per binding (100,000 bindings) and SQLite file size', argv: ['--expose-gc', ...tsx, 'bench/bindings-memory.ts', '100000'] },
  { name: 'held', what: 'memory per held call', argv: ['--expose-gc', ...tsx, 'bench/held-memory.ts', '2000'] },
  {
    name: 'cluster',
    what: 'several nodes sharing Redis: REGISTER with the Redis store vs SQLite vs Kamailio, and the wake across two nodes',
    argv: [...tsx, 'bench/sip-compare.ts', '--servers', 'pushcall,pushcall-redis,kamailio-tlsf', '--only', 'register', '--register-rates', '2000,5000,10000', '--common-register-rate', '5000', '--duration', quick ? '5' : '10', '--no-early-stop', '--out', 'bench/results/sip-compare-redis'],
    compiled: true,
  },
  { name: 'cluster-wake', what: 'wake across two nodes: phones on node B, calls to node A', argv: [...tsx, 'bench/wake-cluster.ts', ...(quick ? ['--phones', '500', '--rate', '20', '--duration', '10'] : [])] },
  { name: 'refresh', what: 'refresh-push scheduling: CPU per REGISTER and heap per push binding', argv: ['--expose-gc', ...tsx, 'bench/refresh-scheduler.ts', '200000'] },
];

let failed = 0;
if (steps.some((step) => step.compiled && (!only || only.includes(step.name)))) {
  console.log('\n=== build: scripts/build.mjs (the server benchmarks measure the compiled packages)');
  if (spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' }).status !== 0) process.exit(1);
}
for (const step of steps) {
  if (only && !only.includes(step.name)) continue;
  console.log(`\n=== ${step.name}: ${step.what}\n$ node ${step.argv.join(' ')}`);
  const result = spawnSync(process.execPath, step.argv, { stdio: 'inherit' });
  if (result.status !== 0) {
    failed++;
    console.error(`=== ${step.name} failed (exit ${result.status})`);
  }
}
if (failed > 0) process.exit(1);
