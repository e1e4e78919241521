/** @pushcall/testkit — emulators, simulated phones, SIPp harness, fleet runner, demo. */
export * from './sipp/run.js';
export * from './sipp/scenarios.js';
