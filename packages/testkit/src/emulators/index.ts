export * from './apns-emulator.js';
export * from './util.js';
