import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * API keys and admin tokens share one shape: `<kind prefix><random base62><checksum>`.
 * The checksum (CRC32 of everything before it, in base62) lets a proxy node refuse a
 * mistyped or guessed secret without a cache or network lookup.
 */

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LENGTH = 32; // 32 base62 characters ≈ 190 bits of entropy
const CHECKSUM_LENGTH = 6; // 62^6 > 2^32
const BASE62 = /^[0-9A-Za-z]+$/;

export const API_KEY_PREFIX = 'sk_live_';
export const TOKEN_PREFIX = 'pc_tok_';
/** Characters after the kind prefix that are shown as a key's public `prefix`. */
const DISPLAY_CHARACTERS = 6;

export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 62 * 4: rejecting bytes above it keeps every character equally likely.
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function checksum(body: string): string {
  let value = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

function generate(kindPrefix: string): string {
  const body = kindPrefix + randomBase62(RANDOM_LENGTH);
  return body + checksum(body);
}

function isWellFormed(kindPrefix: string, value: string): boolean {
  if (value.length !== kindPrefix.length + RANDOM_LENGTH + CHECKSUM_LENGTH) return false;
  if (!value.startsWith(kindPrefix)) return false;
  const rest = value.slice(kindPrefix.length);
  if (!BASE62.test(rest)) return false;
  const body = value.slice(0, value.length - CHECKSUM_LENGTH);
  return checksum(body) === value.slice(value.length - CHECKSUM_LENGTH);
}

export function generateApiKey(): string {
  return generate(API_KEY_PREFIX);
}

export function isWellFormedApiKey(value: string): boolean {
  return isWellFormed(API_KEY_PREFIX, value);
}

/** The public, non-secret beginning of a key, shown in lists and searchable. */
export function apiKeyDisplayPrefix(key: string): string {
  return key.slice(0, API_KEY_PREFIX.length + DISPLAY_CHARACTERS);
}

export function generateToken(): string {
  return generate(TOKEN_PREFIX);
}

export function isWellFormedToken(value: string): boolean {
  return isWellFormed(TOKEN_PREFIX, value);
}

/** An opaque identifier such as `key_3kTMd92jXq0pLw7a`. */
export function generateId(kind: string): string {
  return `${kind}_${randomBase62(16)}`;
}
