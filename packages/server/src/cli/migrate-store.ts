/**
 * `pushcall migrate-store`: copy the bindings of a one-node SQLite store into the Redis store
 * of a multi-node configuration. Without it, switching `store.type` loses every binding, and
 * a phone whose app sleeps is unreachable until the user opens it again: nothing else makes
 * it register. Run it with the node stopped; the copied bindings belong to the node whose
 * configuration is given (its `node.id` and `node.uri`), as if they had registered there.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { isPushcallError } from '../errors.js';
import { redisStoreFor } from '../location/redis-store.js';
import { SqliteBindingStore } from '../location/sqlite-store.js';
import type { Binding } from '../location/types.js';

export function registerMigrateStoreCommand(program: Command): void {
  program
    .command('migrate-store')
    .description('copy the bindings of a SQLite store file into the Redis store of a configuration (store.type redis)')
    .requiredOption('-c, --config <file>', 'YAML configuration with store.type redis, node.id and node.uri')
    .requiredOption('--from <file>', 'the SQLite store file (stop its node first)')
    .action(async (options: { config: string; from: string }) => {
      const fail = (message: string): never => {
        process.stderr.write(`pushcall: ${message}\n`);
        process.exit(2);
      };
      let config;
      try {
        config = loadConfig(options.config);
      } catch (error) {
        if (!isPushcallError(error)) throw error;
        return fail(error.message);
      }
      if (config.store.type !== 'redis') return fail(`migrate-store copies into a Redis store; ${options.config} has store.type ${config.store.type}`);
      // Opening a missing file would create an empty store and "copy" nothing.
      if (!existsSync(options.from)) return fail(`${options.from}: no such SQLite store file`);
      let source: SqliteBindingStore;
      try {
        source = new SqliteBindingStore(options.from, { checkpointIntervalMs: 0 });
      } catch (error) {
        if (!isPushcallError(error)) throw error;
        return fail(error.message);
      }
      const keyPrefix = config.store.redis.keyPrefix;
      const target = redisStoreFor(config.store.redis);
      try {
        await target.ready();
        const now = Date.now();
        const byAor = new Map<string, Binding[]>();
        let expired = 0;
        for (const binding of await source.all()) {
          if (binding.expiresAt <= now) {
            expired++;
            continue;
          }
          // A connection does not survive the move; the flow's node is the one that serves it now.
          const moved: Binding = { ...binding, flow: { ...binding.flow, connectionId: undefined, nodeId: config.node.id, nodeUri: config.node.uri } };
          const list = byAor.get(binding.aor);
          if (list) list.push(moved);
          else byAor.set(binding.aor, [moved]);
        }
        let copied = 0;
        for (const [aor, upsert] of byAor) {
          await target.apply(aor, { upsert, remove: [] });
          copied += upsert.length;
        }
        process.stdout.write(
          `pushcall: copied ${copied} bindings of ${byAor.size} AORs from ${options.from} to the Redis store (prefix ${keyPrefix}) as node ${config.node.id}; ${expired} expired ones left out\n`,
        );
      } catch (error) {
        if (!isPushcallError(error)) throw error;
        fail(error.message);
      } finally {
        await source.close();
        await target.close();
      }
    });
}
