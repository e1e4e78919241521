// Compiles every package to its dist/ (ES2022 JavaScript + declarations), in dependency order.
// Tests and `npm start` run the TypeScript sources through tsx; deployments and the SIP
// benchmark run this output (see README "Production").
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
for (const pkg of ['sip', 'server', 'client', 'testkit']) {
  rmSync(`packages/${pkg}/dist`, { recursive: true, force: true });
  execFileSync(process.execPath, [tsc, '-p', `packages/${pkg}/tsconfig.build.json`], { stdio: 'inherit' });
}
