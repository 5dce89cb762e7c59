import { idSchema, poolNameSchema } from '../http/validation.js';
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

export const grantProperties = {
  pools: { type: 'array', maxItems: 100, uniqueItems: true, items: poolNameSchema },
  countries: { type: 'array', maxItems: 300, uniqueItems: true, items: { type: 'string', minLength: 2, maxLength: 2 } },
  expiresAt: { type: ['string', 'null'], format: 'date-time' },
  rateLimit: rateLimitSchema,
  concurrency: concurrencySchema,
  monthlyQuotaBytes: { type: ['integer', 'null'], minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
} as const;

export const teamParams = { type: 'object', additionalProperties: false, required: ['team'], properties: { team: idSchema } } as const;
export const keyParams = {
  type: 'object',
  additionalProperties: false,
  required: ['team', 'id'],
  properties: { team: idSchema, id: idSchema },
} as const;

export interface GrantsBody {
  pools?: string[];
  countries?: string[];
  expiresAt?: string | null;
  rateLimit?: { requestsPerSecond: number; burst?: number } | null;
  concurrency?: { perNode?: number | null; perRegion?: number | null } | null;
  monthlyQuotaBytes?: number | null;
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

const nullableString = { type: ['string', 'null'] } as const;
const stringArray = { type: 'array', items: { type: 'string' } } as const;

/** The response shape of a key, compiled by fastify into a fast serializer. */
export const keyViewSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    teamId: { type: 'string' },
    name: { type: 'string' },
    prefix: { type: 'string' },
    status: { type: 'string' },
    pools: stringArray,
    countries: stringArray,
    expiresAt: nullableString,
    rateLimit: {
      type: ['object', 'null'],
      properties: { requestsPerSecond: { type: 'integer' }, burst: { type: 'integer' } },
    },
    concurrency: {
      type: ['object', 'null'],
      properties: { perNode: { type: ['integer', 'null'] }, perRegion: { type: ['integer', 'null'] } },
    },
    monthlyQuotaBytes: { type: ['integer', 'null'] },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    lastUsedAt: nullableString,
    revokedAt: nullableString,
  },
} as const;
