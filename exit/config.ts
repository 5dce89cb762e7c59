import { normalizeCountryCode } from '../geo/countries.js';
import { createEnvReader, settingNames, type LogLevel } from '../lib/env.js';
import { EXIT_TOKEN_PATTERN } from './exit-credential.js';

export interface ExitConfig {
  country: string;
  host: string;
  port: number;
  id: string;
  token: string;
  allowPrivateDestinations: boolean;
  shutdownDeadlineMs: number;
  logLevel: LogLevel;
}

export function readExitConfig(env: NodeJS.ProcessEnv): ExitConfig {
  const read = createEnvReader(env);
  const rawCountry = read.optionalString('COUNTRY');
  const country = rawCountry === undefined ? undefined : normalizeCountryCode(rawCountry);
  if (rawCountry === undefined) read.problem('COUNTRY is required: the ISO 3166-1 alpha-2 country this exit stands for');
  else if (country === undefined) read.problem(`COUNTRY must be an ISO 3166-1 alpha-2 code such as DE, got "${rawCountry}"`);
  const port = read.integer('PORT', { default: 9000, min: 0, max: 65535 });
  const token = read.optionalString('EXIT_TOKEN');
  if (token === undefined) read.problem('EXIT_TOKEN is required: the credential nodes present (the password of the exit URL in a pool)');
  else if (!EXIT_TOKEN_PATTERN.test(token)) read.problem('EXIT_TOKEN must be 16 to 256 characters from A-Z a-z 0-9 . _ ~ -');
  const config: ExitConfig = {
    country: country ?? 'ZZ',
    host: read.string('HOST', '127.0.0.1'),
    port,
    id: read.string('EXIT_ID', `exit-${(country ?? 'zz').toLowerCase()}-${port}`),
    token: token ?? '',
    allowPrivateDestinations: read.boolean('ALLOW_PRIVATE_DESTINATIONS', false),
    shutdownDeadlineMs: read.integer('SHUTDOWN_DEADLINE_MS', { default: 10_000, min: 0, max: 600_000 }),
    logLevel: read.logLevel(),
  };
  read.finish();
  return config;
}

/** Every variable `portcullis exit` reads. */
export const exitSettingNames = (): string[] => settingNames(readExitConfig);
