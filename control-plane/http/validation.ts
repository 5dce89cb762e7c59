import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

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
 * Text a person typed: no control characters (PostgreSQL cannot store NUL) and no lone
 * UTF-16 surrogates (not valid UTF-8). Emoji and other astral characters are fine.
 */
export const PRINTABLE_TEXT = '^[^\\u0000-\\u001f\\u007f\\ud800-\\udfff]*$';

export const displayNameSchema = { type: 'string', minLength: 1, maxLength: 200, pattern: PRINTABLE_TEXT } as const;
export const poolNameSchema = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } as const;
export const idSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_]+$' } as const;
