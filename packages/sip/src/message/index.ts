export * from './grammar.js';
export * from './uri.js';
export * from './headers.js';
export * from './message.js';
export * from './parser.js';
export * from './factory.js';
export * from './status.js';
