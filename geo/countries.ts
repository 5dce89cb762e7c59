import { COUNTRIES, type Continent } from './country-list.js';

export type { Continent };

const BY_CODE = new Map(COUNTRIES.map(([code, name, continent]) => [code, { name, continent }]));

/**
 * Upper-cases and validates a country code; undefined when it is not ISO 3166-1 alpha-2.
 * `UK` is not an ISO code, but it is what people (and other providers) write for the United
 * Kingdom, so it is read as `GB` wherever a country is accepted.
 */
export function normalizeCountryCode(input: string): string | undefined {
  if (input.length !== 2) return undefined;
  const code = input.toUpperCase();
  if (code === 'UK') return 'GB';
  return BY_CODE.has(code) ? code : undefined;
}

export function countryName(code: string): string | undefined {
  return BY_CODE.get(code)?.name;
}

/** The continent a country is on: the region its traffic is closest to. */
export function continentOf(code: string): Continent | undefined {
  return BY_CODE.get(code)?.continent;
}

export { COUNTRIES };
