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
