/** @pushcall/testkit — emulators, simulated phones, SIPp harness, fleet runner, demo. */
export * from './sipp/run.js';
export * from './sipp/scenarios.js';
export * from './redis/redis-server.js';
export * from './emulators/index.js';
export * from './platform/index.js';
export * from './phone/sip-ua.js';
export * from './phone/digest-client.js';
export * from './phone/simulated-phone.js';
export * from './lab.js';
export * from './fleet/index.js';
export * from './demo/index.js';
