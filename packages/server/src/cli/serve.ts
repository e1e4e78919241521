import type { Command } from 'commander';
import { PushError } from '../push/errors.js';
import { loadConfig } from '../config/load.js';
import { isPushcallError } from '../errors.js';
import { createPushcall } from '../index.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the SIP registrar/proxy with its push gateway')
    .option('-c, --config <file>', 'YAML configuration file (see docs/configuration.md)')
    .option('-l, --listen <spec>', 'listener <udp|tcp|tls|ws|wss>:<host>:<port> (repeatable)', collect)
    .option('-d, --data-dir <dir>', 'directory for the SQLite binding store')
    .option('--admin <host:port>', 'admin HTTP listener (healthz, metrics, API)')
    .option('--log-level <level>', 'trace|debug|info|warn|error|silent')
    .action(async (options: { config?: string; listen?: string[]; dataDir?: string; admin?: string; logLevel?: string }) => {
      let server;
      // The file and the flags as given: read again on SIGHUP.
      const load = () =>
        loadConfig(options.config, {
          listen: options.listen,
          dataDir: options.dataDir,
          adminListen: options.admin,
          logLevel: options.logLevel,
        });
      try {
        const config = load();
        server = await createPushcall({ config });
        await server.start();
      } catch (error) {
        // The push gateway's configuration and key errors too: a bad key file is a clear
        // message and exit 2, not a stack trace.
        if (isPushcallError(error) || error instanceof PushError) {
          process.stderr.write(`pushcall: ${error.message}\n`);
          process.exit(2);
        }
        throw error;
      }
      let stopping = false;
      const stop = async (signal: string) => {
        // A second signal while draining: stop now.
        if (stopping) {
          server.logger.info({ signal }, 'stopping now');
        } else {
          stopping = true;
          const drainMs = server.config.shutdown.drainSeconds * 1000;
          if (drainMs > 0 && server.callsInProgress > 0) {
            server.logger.info({ signal, calls: server.callsInProgress, drainSeconds: server.config.shutdown.drainSeconds }, 'draining: new calls get 503');
            const drained = await server.drain(drainMs);
            if (!drained) server.logger.warn({ calls: server.callsInProgress }, 'drain time over; stopping with calls in progress');
          }
          server.logger.info({ signal }, 'stopping');
        }
        server.stop().then(
          () => process.exit(0),
          (error: unknown) => {
            process.stderr.write(`pushcall: stop failed: ${(error as Error).message}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => void stop('SIGTERM'));
      process.on('SIGINT', () => void stop('SIGINT'));
      // SIGHUP: read the configuration again and apply what can change without a restart. A
      // file that does not validate changes nothing; the server goes on as it was.
      process.on('SIGHUP', () => {
        try {
          const { applied, needsRestart } = server.reload(load());
          server.logger.info({ applied, needsRestart }, needsRestart.length > 0 ? 'configuration reloaded; some changes need a restart' : 'configuration reloaded');
        } catch (error) {
          server.logger.error({ err: (error as Error).message }, 'configuration not reloaded');
        }
        server.reloadCertificates().then(({ reloaded, failed }) => {
          if (reloaded.length > 0) server.logger.info({ listeners: reloaded }, 'TLS certificates reloaded');
          for (const f of failed) server.logger.error({ listener: f.listener, err: f.error }, 'TLS certificate not reloaded; the current one stays');
        });
      });
    });
}
