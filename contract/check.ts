import { Ajv, type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import type { Static, TSchema } from 'typebox';

/**
 * Checking what arrives from the other side of a contract. Validators are compiled once,
 * when a module defines them, never per message. A failure names the field, so an
 * operator can tell which side of a version skew is wrong.
 */
export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

export type Check<T> = (value: unknown) => Checked<T>;

// Answers may carry fields this version does not know (a newer control plane): they are
// ignored, not refused. Types are never coerced.
const ajv = addFormats.default(new Ajv({ allErrors: false, strict: true, coerceTypes: false, useDefaults: false, removeAdditional: false }));

/** "keys.3fa….teamId must be string" from ajv's first error. */
export function describeProblem(error: ErrorObject | undefined): string {
  if (error === undefined) return 'invalid';
  const path = error.instancePath.split('/').filter(Boolean);
  if (error.keyword === 'required') return `${[...path, String(error.params.missingProperty)].join('.')} is missing`;
  if (error.keyword === 'additionalProperties') return `${[...path, String(error.params.additionalProperty)].join('.')} is not allowed`;
  const allowed = error.keyword === 'enum' ? ` (${(error.params.allowedValues as unknown[]).join(', ')})` : '';
  return `${path.length === 0 ? 'the message' : path.join('.')} ${error.message ?? 'is invalid'}${allowed}`;
}

export function compileCheck<S extends TSchema>(schema: S): Check<Static<S>> {
  const validate = ajv.compile(schema);
  return (value) => (validate(value) ? { ok: true, value: value as Static<S> } : { ok: false, problem: describeProblem(validate.errors?.[0]) });
}

/** Parses JSON text and checks it; malformed JSON is a problem like any other. */
export function parseAndCheck<T>(check: Check<T>, text: string): Checked<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'the message is not JSON' };
  }
  return check(value);
}
