/**
 * `npm run demo`: pushcall on loopback, a sleeping iPhone and Android phone, a desk phone
 * and a caller; every call printed as a ladder diagram. Exits 0 only if every call ended
 * as expected.
 *
 *   npm run demo                     # all scenarios
 *   npm run demo -- --no-declined    # skip "declined elsewhere"
 *   npm run demo -- --only ios-answer,cancel-before-wake
 *   npm run demo -- --json out.json  # the results (with the ladders) as JSON
 */
import { writeFileSync } from 'node:fs';
import { runDemo } from './run.js';

const args = process.argv.slice(2);
const value = (flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = value('--only')?.split(',').map((s) => s.trim()).filter(Boolean);
const color = process.stdout.isTTY === true && !args.includes('--no-color') && process.env.NO_COLOR === undefined;

// A hard cap: the demo must never hang (it normally takes a few seconds).
const guard = setTimeout(() => {
  process.stderr.write('demo: timed out after 60 s\n');
  process.exit(2);
}, 60_000);
guard.unref();

const result = await runDemo({ output: process.stdout, color, only, declined: !args.includes('--no-declined') });
const json = value('--json');
if (json) writeFileSync(json, JSON.stringify(result, null, 2));
process.exitCode = result.passed ? 0 : 1;
