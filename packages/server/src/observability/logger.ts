import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs (pino). Known secret fields are censored by path as a second line of
 * defence; code that logs tokens or URIs passes them through redact.ts first.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'pushcall' },
      redact: {
        paths: [
          'token',
          'prid',
          'push.prid',
          'push.alertPrid',
          '*.push.prid',
          '*.push.alertPrid',
          // PURRs wake a device for whoever holds one (RFC 8599 §6.2.1: unforgeable).
          'purrs',
          '*.purrs',
          'password',
          'authorization',
          'privateKey',
          'key',
          'secret',
          '*.password',
          '*.secret',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
