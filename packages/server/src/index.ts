/** @pushcall/server — RFC 8599 registrar, wake-on-call proxy, push gateway, stores, admin. */
export * from './errors.js';
export * from './config/schema.js';
export * from './config/load.js';
export * from './location/types.js';
export { MemoryBindingStore } from './location/memory-store.js';
export { SqliteBindingStore } from './location/sqlite-store.js';
export { RedisBindingStore } from './location/redis-store.js';
export * from './registrar/registrar.js';
export * from './registrar/push-params.js';
export * from './auth/digest.js';
export * from './observability/redact.js';
export { createLogger } from './observability/logger.js';
export { PushcallServer, type ServerOptions } from './server.js';

import { createPushGateway } from './push/config.js';
import { PushcallServer, type ServerOptions } from './server.js';

/** Build a server with everything the configuration asks for (push gateway, proxy). */
export async function createPushcall(options: ServerOptions): Promise<PushcallServer> {
  const server = new PushcallServer(options);
  if (Object.keys(options.config.push).length > 0) {
    const gateway = await createPushGateway(options.config.push, {
      registry: server.metrics.registry,
      clock: server.clock,
      logger: pushLogger(server),
    });
    server.setPusher(gateway);
  }
  return server;
}

function pushLogger(server: PushcallServer) {
  const log = server.logger.child({ component: 'push' });
  return {
    debug: (obj: object, msg?: string) => log.debug(obj, msg),
    info: (obj: object, msg?: string) => log.info(obj, msg),
    warn: (obj: object, msg?: string) => log.warn(obj, msg),
    error: (obj: object, msg?: string) => log.error(obj, msg),
  };
}

export * as push from './push/index.js';
export { PushGateway, createPushGateway, buildPayload, type PushPayload, type PushOutcome, type PushBinding } from './push/index.js';
export { ProxyCore } from './proxy/proxy.js';
export * from './proxy/timeline.js';
export { chooseBest, toPushBinding, type Pusher } from './proxy/call.js';
