/** @pushcall/sip — the SIP stack: transport → message → transaction. */
export * from './errors.js';
export * from './util/clock.js';
export * from './util/random.js';
export * from './util/strings.js';
export * from './message/index.js';
export * from './transaction/index.js';
export * from './transport/index.js';
export * from './responder.js';
