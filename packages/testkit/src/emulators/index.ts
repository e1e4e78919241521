export * from './apns-emulator.js';
export * from './util.js';
export * from './fcm-emulator.js';
