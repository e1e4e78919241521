/**
 * `pushcall check-config`: what `nginx -t` or `kamailio -c` do, before a restart or a SIGHUP.
 * Validates the file, then reads what it points to the way `serve` would: the TLS certificate
 * and key (do they belong together?) and the push credentials (APNs key or certificate, FCM
 * service account, VAPID keys). Nothing listens, nothing connects, nothing is written.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { loadConfig } from '../config/load.js';
import { isPushcallError } from '../errors.js';
import { PushError } from '../push/errors.js';
import { createPushGateway } from '../push/config.js';

export function registerCheckConfigCommand(program: Command): void {
  program
    .command('check-config')
    .description('validate a configuration file, its TLS certificate and push credentials, without starting anything')
    .option('-c, --config <file>', 'YAML configuration file (default: the embedded defaults)')
    .action(async (options: { config?: string }) => {
      const name = options.config ?? 'the embedded defaults';
      let config;
      try {
        config = loadConfig(options.config);
      } catch (error) {
        if (!isPushcallError(error)) throw error;
        process.stderr.write(`pushcall: ${error.message}\n`);
        process.exit(2);
      }
      const problems: string[] = [];
      if (config.tls) {
        const { certFile, keyFile, caFile } = config.tls;
        try {
          createSecureContext({ cert: readFileSync(certFile), key: readFileSync(keyFile), ca: caFile ? readFileSync(caFile) : undefined });
        } catch (error) {
          problems.push(`tls: ${(error as Error).message}`);
        }
      }
      const providers = Object.keys(config.push);
      if (providers.length > 0) {
        try {
          const gateway = await createPushGateway(config.push, { registry: new Registry() });
          await gateway.close();
        } catch (error) {
          if (!(error instanceof PushError) && !isPushcallError(error)) throw error;
          problems.push(`push: ${error.message}`);
        }
      }
      if (problems.length > 0) {
        for (const p of problems) process.stderr.write(`pushcall: ${p}\n`);
        process.exit(2);
      }
      process.stdout.write(
        `pushcall: configuration OK (${name}): listen ${config.listen.join(', ')}; store ${config.store.type}; auth ${config.auth.mode}` +
          `${config.tls ? '; TLS certificate and key match' : ''}; push ${providers.length > 0 ? providers.join(', ') : 'none'}\n`,
      );
    });
}
