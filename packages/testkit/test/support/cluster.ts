/**
 * Multi-node tests: a real redis-server, the push emulators, and pushcall nodes sharing them
 * (store.type redis, one key prefix per test file, the nodes' shared nonce secret).
 */
import { rmSync } from 'node:fs';
import { type PushcallServer, createLogger, createPushcall, validateConfig } from '@pushcall/server';
import { type FleetEmulators, type RedisServerHandle, freePort, startFleetEmulators, startRedisServer } from '../../src/index.js';

export const CLUSTER_SECRET = 'shared-between-the-nodes-0123456789';

export interface Cluster {
  redis: RedisServerHandle;
  emulators: FleetEmulators;
  /**
   * A node listening on UDP (and TCP with `tcp`), `node.uri` on TCP when it has it; `extra`
   * is merged into its config (sections replace the defaults given here).
   */
  startNode(id: string, options?: { tcp?: boolean; extra?: Record<string, unknown> }): Promise<PushcallServer>;
  close(): Promise<void>;
}

export async function startCluster(keyPrefix: string): Promise<Cluster> {
  const redis = await startRedisServer();
  const emulators = await startFleetEmulators();
  const nodes: PushcallServer[] = [];
  return {
    redis,
    emulators,
    async startNode(id, options = {}) {
      const udp = await freePort();
      const tcp = options.tcp ? await freePort() : undefined;
      const config = validateConfig({
        node: { id, uri: tcp !== undefined ? `sip:127.0.0.1:${tcp};transport=tcp` : `sip:127.0.0.1:${udp}` },
        listen: [`udp:127.0.0.1:${udp}`, ...(tcp !== undefined ? [`tcp:127.0.0.1:${tcp}`] : [])],
        store: { type: 'redis', redis: { url: redis.url, keyPrefix, commandTimeoutMs: 500 } },
        auth: { mode: 'open', nonceSecret: CLUSTER_SECRET },
        admin: { enabled: false },
        log: { level: 'silent' },
        push: emulators.pushConfig,
        ...options.extra,
      });
      const server = await createPushcall({ config, logger: createLogger('silent') });
      await server.start();
      nodes.push(server);
      return server;
    },
    async close() {
      for (const node of nodes) await node.stop();
      await emulators.close();
      rmSync(emulators.dir, { recursive: true, force: true });
      await redis.stop();
    },
  };
}
