/**
 * Reading settings from the environment. Each executable reads `process.env` in one
 * config module through an `EnvReader`, which collects every problem and reports them
 * together, naming the variable, before anything starts.
 */

import { parseRedisTarget } from './redis-target.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'config_invalid';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

export interface IntegerOptions {
  default: number;
  min?: number;
  max?: number;
}

export interface EnvReader {
  string(name: string, fallback: string): string;
  optionalString(name: string): string | undefined;
  integer(name: string, options: IntegerOptions): number;
  boolean(name: string, fallback: boolean): boolean;
  /** A URL whose protocol is one of `protocols`; undefined when unset. */
  optionalUrl(name: string, protocols: string[]): string | undefined;
  /** Comma-separated URLs, each with one of `protocols`, none twice; undefined when unset. */
  optionalUrlList(name: string, protocols: string[]): string[] | undefined;
  /** A Redis URL (`redis://`, `rediss://` or `redis+sentinel://`, lib/redis-target.ts); undefined when unset. */
  optionalRedisUrl(name: string): string | undefined;
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T;
  /** LOG_LEVEL, a pino level; `info` by default. */
  logLevel(): LogLevel;
  /** Adds a problem found by the config module itself (a cross-field rule). */
  problem(message: string): void;
  /** Throws a ConfigError listing every problem seen so far. */
  finish(): void;
}

export function createEnvReader(env: NodeJS.ProcessEnv): EnvReader {
  const problems: string[] = [];

  function raw(name: string): string | undefined {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  function checkedUrl(name: string, value: string, protocols: string[]): string | undefined {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      problems.push(`${name} must be a URL, got "${redactUrlPassword(value)}"`);
      return undefined;
    }
    if (!protocols.includes(parsed.protocol)) {
      problems.push(`${name} must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
      return undefined;
    }
    return value;
  }

  return {
    string(name, fallback) {
      return raw(name) ?? fallback;
    },
    optionalString(name) {
      return raw(name);
    },
    integer(name, { default: fallback, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER }) {
      const value = raw(name);
      if (value === undefined) return fallback;
      if (!/^-?\d+$/.test(value)) {
        problems.push(`${name} must be an integer, got "${value}"`);
        return fallback;
      }
      const parsed = Number(value);
      if (parsed < min || parsed > max) {
        problems.push(`${name} must be between ${min} and ${max}, got ${parsed}`);
        return fallback;
      }
      return parsed;
    },
    boolean(name, fallback) {
      const value = raw(name)?.toLowerCase();
      if (value === undefined) return fallback;
      if (['1', 'true', 'yes', 'on'].includes(value)) return true;
      if (['0', 'false', 'no', 'off'].includes(value)) return false;
      problems.push(`${name} must be true or false, got "${value}"`);
      return fallback;
    },
    optionalUrl(name, protocols) {
      const value = raw(name);
      return value === undefined ? undefined : checkedUrl(name, value, protocols);
    },
    optionalUrlList(name, protocols) {
      const value = raw(name);
      if (value === undefined) return undefined;
      const urls: string[] = [];
      for (const entry of value.split(',').map((part) => part.trim())) {
        if (entry === '') {
          problems.push(`${name} has an empty entry in its comma-separated list`);
          continue;
        }
        const url = checkedUrl(name, entry, protocols);
        if (url === undefined) continue;
        if (urls.includes(url)) problems.push(`${name} lists "${redactUrlPassword(url)}" twice`);
        else urls.push(url);
      }
      return urls.length > 0 ? urls : undefined;
    },
    optionalRedisUrl(name) {
      const value = raw(name);
      if (value === undefined) return undefined;
      const parsed = parseRedisTarget(value);
      if ('problem' in parsed) {
        problems.push(`${name} ${parsed.problem}, got "${redactUrlPassword(value)}"`);
        return undefined;
      }
      return value;
    },
    oneOf(name, allowed, fallback) {
      const value = raw(name);
      if (value === undefined) return fallback;
      if (!(allowed as readonly string[]).includes(value)) {
        problems.push(`${name} must be one of ${allowed.join(', ')}, got "${value}"`);
        return fallback;
      }
      return value as (typeof allowed)[number];
    },
    logLevel() {
      return this.oneOf('LOG_LEVEL', LOG_LEVELS, 'info');
    },
    problem(message) {
      problems.push(message);
    },
    finish() {
      if (problems.length > 0) throw new ConfigError(problems);
    },
  };
}

export function redactUrlPassword(value: string): string {
  return value.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@').replace(/([?&]sentinelPassword=)[^&]*/, '$1***');
}

/**
 * Every variable `read` looks at, found by running it on an empty environment that notes
 * each name asked for: the settings an executable knows, from its config module itself
 * (the deployment recipes are checked against them).
 */
export function settingNames(read: (env: NodeJS.ProcessEnv) => unknown): string[] {
  const names = new Set<string>();
  const env = new Proxy({} as NodeJS.ProcessEnv, {
    get(_target, name) {
      if (typeof name === 'string') names.add(name);
      return undefined;
    },
  });
  try {
    read(env);
  } catch (error) {
    // Required settings are missing from an empty environment; every name was read first.
    if (!(error instanceof ConfigError)) throw error;
  }
  return [...names].sort();
}
