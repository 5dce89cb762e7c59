import { MAX_CIDR_LENGTH } from '../../lib/cidr.js';
import { displayNameSchema, idSchema, nullableTimestampSchema, poolNameSchema, PRINTABLE_TEXT, timestampSchema } from '../http/validation.js';
import type { KeyStatus } from './rows.js';

/** The shapes of the key routes: what they accept and how a key is shown. */

const rateLimitSchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['requestsPerSecond'],
  properties: {
    requestsPerSecond: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    burst: { type: 'integer', minimum: 1, maximum: 10_000_000 },
  },
} as const;

const concurrencySchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  minProperties: 1,
  properties: {
    perNode: { type: ['integer', 'null'], minimum: 1, maximum: 1_000_000 },
    perRegion: { type: ['integer', 'null'], minimum: 1, maximum: 1_000_000 },
  },
} as const;

/** The most client ranges one key may carry. */
export const MAX_CLIENT_CIDRS = 100;

export const grantProperties = {
  pools: { type: 'array', maxItems: 100, uniqueItems: true, items: poolNameSchema },
  countries: { type: 'array', maxItems: 300, uniqueItems: true, items: { type: 'string', minLength: 2, maxLength: 2 } },
  expiresAt: { type: ['string', 'null'], format: 'date-time' },
  rateLimit: rateLimitSchema,
  concurrency: concurrencySchema,
  monthlyQuotaBytes: { type: ['integer', 'null'], minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  allowedClientCidrs: {
    type: 'array',
    maxItems: MAX_CLIENT_CIDRS,
    items: { type: 'string', minLength: 1, maxLength: MAX_CIDR_LENGTH },
    description: 'client addresses the key may be used from, IPv4 or IPv6 (`203.0.113.0/24`, `2001:db8::/32`, or one address); empty: any',
  },
} as const;

export const keyParams = {
  type: 'object',
  additionalProperties: false,
  required: ['team', 'id'],
  properties: { team: idSchema, id: idSchema },
} as const;

/** The filters of the key list, which its export takes too. */
export const keyFilterProperties = {
  status: { type: 'string', enum: ['active', 'revoked', 'expired'] },
  q: { type: 'string', maxLength: 200, pattern: PRINTABLE_TEXT, description: 'a case-insensitive name prefix, or a key prefix (`sk_live_…`)' },
} as const;

export interface GrantsBody {
  pools?: string[];
  countries?: string[];
  expiresAt?: string | null;
  rateLimit?: { requestsPerSecond: number; burst?: number } | null;
  concurrency?: { perNode?: number | null; perRegion?: number | null } | null;
  monthlyQuotaBytes?: number | null;
  allowedClientCidrs?: string[];
}

export interface CreateKeyBody extends GrantsBody {
  name: string;
}

export interface KeyListQuery {
  limit: number;
  cursor?: string;
  status?: KeyStatus;
  q?: string;
}

const stringArray = { type: 'array', items: { type: 'string' } } as const;

/** The body of a new key: a name and, optionally, its grants and limits. */
export const createKeyBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: displayNameSchema, ...grantProperties },
} as const;

/** How a key is shown, compiled by fastify into a fast serializer; never its secret. */
export const keyViewSchema = {
  type: 'object',
  required: [
    'id',
    'teamId',
    'name',
    'prefix',
    'status',
    'pools',
    'countries',
    'expiresAt',
    'rateLimit',
    'concurrency',
    'monthlyQuotaBytes',
    'monthlyUsedBytes',
    'monthlyRemainingBytes',
    'allowedClientCidrs',
    'createdAt',
    'updatedAt',
    'lastUsedAt',
    'revokedAt',
  ],
  properties: {
    id: { type: 'string' },
    teamId: { type: 'string' },
    name: { type: 'string' },
    prefix: { type: 'string', description: 'the public beginning of the secret, searchable with `q`' },
    status: { type: 'string', enum: ['active', 'revoked', 'expired'] },
    pools: { ...stringArray, description: 'pools the key may use; empty: all' },
    countries: { ...stringArray, description: 'countries the key may use; empty: all' },
    expiresAt: nullableTimestampSchema,
    rateLimit: {
      type: ['object', 'null'],
      properties: { requestsPerSecond: { type: 'integer' }, burst: { type: 'integer' } },
    },
    concurrency: {
      type: ['object', 'null'],
      properties: { perNode: { type: ['integer', 'null'] }, perRegion: { type: ['integer', 'null'] } },
    },
    monthlyQuotaBytes: { type: ['integer', 'null'], description: 'bytes up and down per calendar month (UTC); null: no quota of its own' },
    monthlyUsedBytes: { type: 'integer', description: 'bytes up and down this calendar month (UTC), as nodes have reported them (every 2 s)' },
    monthlyRemainingBytes: { type: ['integer', 'null'], description: 'what is left of the key\'s own quota this month; null without one (a team quota applies on top)' },
    allowedClientCidrs: { ...stringArray, description: 'client addresses the key may be used from, as canonical CIDRs; empty: any' },
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
    lastUsedAt: nullableTimestampSchema,
    revokedAt: nullableTimestampSchema,
  },
} as const;

/** A key with its secret: the answer to creating or rotating one, the only time it is shown. */
export const keyWithSecretSchema = {
  ...keyViewSchema,
  required: [...keyViewSchema.required, 'key'],
  properties: { ...keyViewSchema.properties, key: { type: 'string', description: 'the secret (`sk_live_…`), shown only in this answer' } },
} as const;
