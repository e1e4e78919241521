export * from './timers.js';
export * from './transaction.js';
export * from './client-transactions.js';
export * from './server-transactions.js';
export * from './layer.js';
