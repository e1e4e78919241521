/** @pushcall/server — RFC 8599 registrar, wake-on-call proxy, push gateway, stores, admin. */
export * from './errors.js';
export * from './config/schema.js';
export * from './config/load.js';
export * from './location/types.js';
export { MemoryBindingStore } from './location/memory-store.js';
export { SqliteBindingStore } from './location/sqlite-store.js';
export * from './registrar/registrar.js';
export * from './registrar/push-params.js';
export * from './auth/digest.js';
export * from './observability/redact.js';
export { createLogger } from './observability/logger.js';
export { PushcallServer, type ServerOptions } from './server.js';

import { PushcallServer, type ServerOptions } from './server.js';

/** Build a server with everything the configuration asks for (push gateway, proxy). */
export async function createPushcall(options: ServerOptions): Promise<PushcallServer> {
  return new PushcallServer(options);
}
