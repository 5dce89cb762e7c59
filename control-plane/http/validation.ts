import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { fail } from '../errors.js';

/**
 * Bodies are validated strictly: unknown fields and wrong types are errors, never
 * silently dropped or coerced. Query strings and path parameters arrive as text, so
 * there numbers are coerced from strings (still rejecting unknown parameters).
 */
export function installValidation(app: FastifyInstance): void {
  const common: Options = { allErrors: false, useDefaults: true, removeAdditional: false, strict: true, allowUnionTypes: true };
  const bodyAjv = addFormats.default(new Ajv({ ...common, coerceTypes: false }));
  const textAjv = addFormats.default(new Ajv({ ...common, coerceTypes: true }));
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema));
}

/**
 * Text a person typed and others will read: no control characters (C0 and C1; PostgreSQL
 * cannot store NUL), no bidirectional embeddings, overrides or isolates (U+202A–U+202E,
 * U+2066–U+2069, which can make a name display as something else), and no lone UTF-16
 * surrogates (not valid UTF-8). Emoji and other astral characters are fine.
 */
export const PRINTABLE_TEXT = '^[^\\u0000-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069\\ud800-\\udfff]*$';
export const PRINTABLE_TEXT_PROBLEM = 'must not contain control characters or bidirectional overrides';

export const displayNameSchema = { type: 'string', minLength: 1, maxLength: 200, pattern: PRINTABLE_TEXT } as const;
export const poolNameSchema = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } as const;
export const idSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_]+$' } as const;
export const teamParams = { type: 'object', additionalProperties: false, required: ['team'], properties: { team: idSchema } } as const;
export const timestampSchema = { type: 'string', format: 'date-time' } as const;
export const nullableTimestampSchema = { type: ['string', 'null'], format: 'date-time' } as const;

/** An `expiresAt` as sent: absent stays absent, null clears, a date must be in the future. */
export function parseExpiry(value: string | null | undefined): Date | null | undefined {
  if (value === undefined || value === null) return value;
  const expiresAt = new Date(value);
  if (expiresAt.getTime() <= Date.now()) throw fail('expires_at_in_past');
  return expiresAt;
}
