import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Every path where a secret can appear in a log line: credentials in request headers,
 * and any field named like a secret in objects we log. Keys are never logged, even at debug.
 */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'key',
  'token',
  'secret',
  'password',
  '*.key',
  '*.token',
  '*.secret',
  '*.password',
  '*.adminToken',
  '*.nodeToken',
  'adminToken',
  'nodeToken',
];

export interface LoggerOptions {
  level: LevelWithSilent;
  name: string;
  destination?: DestinationStream;
  /** Fields added to every line (the active trace's ids); left out when tracing is off. */
  mixin?: () => object;
}

export function createLogger({ level, name, destination, mixin }: LoggerOptions): Logger {
  return pino(
    {
      level,
      name,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      ...(mixin !== undefined && { mixin }),
    },
    destination,
  );
}
