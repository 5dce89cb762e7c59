import { nullableTimestampSchema, timestampSchema } from '../http/validation.js';
import { scopeSchema } from './scopes.js';

/** How a token is shown through the API: never its secret, except once in `createdTokenSchema`. */

const nullableString = { type: ['string', 'null'] } as const;

export const tokenViewSchema = {
  type: 'object',
  required: ['id', 'teamId', 'name', 'prefix', 'scopes', 'status', 'createdBy', 'createdAt', 'expiresAt', 'lastUsedAt', 'revokedAt'],
  properties: {
    id: { type: 'string' },
    teamId: { ...nullableString, description: 'null for a platform admin token' },
    name: { type: 'string' },
    prefix: { ...nullableString, description: 'the public beginning of the secret; null for tokens made before prefixes were kept' },
    scopes: { type: 'array', items: scopeSchema },
    status: { type: 'string', enum: ['active', 'revoked', 'expired'] },
    createdBy: { ...nullableString, description: 'the id of the token that created it; null for the configured admin token or the system' },
    createdAt: timestampSchema,
    expiresAt: nullableTimestampSchema,
    lastUsedAt: { ...nullableTimestampSchema, description: 'to the minute' },
    revokedAt: nullableTimestampSchema,
  },
} as const;

export const createdTokenSchema = {
  ...tokenViewSchema,
  description: 'The token; its secret `token` is in this answer only.',
  required: [...tokenViewSchema.required, 'token'],
  properties: { ...tokenViewSchema.properties, token: { type: 'string' } },
} as const;

