import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DatabaseUnavailableError } from '../db/database.js';
import { ApiError, fail } from '../errors.js';
import { PRINTABLE_TEXT, PRINTABLE_TEXT_PROBLEM } from './validation.js';

/**
 * Translates anything thrown while handling a request into the API's error shape,
 * `{error: {code, message}}`, in one place: our own errors as they are, validation and
 * body errors from fastify by their codes, database errors by SQLSTATE.
 */

interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** Errors PostgreSQL reports by SQLSTATE; most mean "try again", not "you asked for something wrong". */
const byState = (state: string): (() => ApiError) | undefined => {
  if (state === '57014') return () => fail('database_timeout'); // query_canceled: a statement timeout
  if (state === '23505') return () => fail('conflict'); // unique_violation not handled by the route
  if (state === '53300' || state === '40001' || state === '40P01') return () => fail('database_busy'); // too many connections, serialization, deadlock
  // connection exceptions, and the server shutting down or starting up
  if (state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03') return () => fail('database_unavailable');
  return undefined;
};

const FASTIFY: Record<string, () => ApiError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => fail('body_too_large'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => fail('unsupported_media_type'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => fail('invalid_json'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => fail('invalid_json'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => fail('invalid_request', 'Content-Length does not match the body'),
};

function fieldName(context: string | undefined, path: string, extra?: unknown): string {
  const segments = path.split('/').filter(Boolean);
  if (typeof extra === 'string') segments.push(extra);
  const name = segments.join('.');
  return name === '' ? (context ?? 'request') : name;
}

function fromValidation(error: FastifyError): ApiError {
  const first = (error.validation as AjvError[] | undefined)?.[0];
  const context = error.validationContext ?? 'request';
  if (first === undefined) return fail('invalid_request', error.message);
  if (first.keyword === 'additionalProperties') return fail('unknown_field', fieldName(context, first.instancePath, first.params.additionalProperty), context);
  if (first.keyword === 'required') return fail('missing_field', fieldName(context, first.instancePath, first.params.missingProperty), context);
  const problem = first.keyword === 'pattern' && first.params.pattern === PRINTABLE_TEXT ? PRINTABLE_TEXT_PROBLEM : (first.message ?? 'is invalid');
  return fail('invalid_field', fieldName(context, first.instancePath), context, problem);
}

/** Maps anything thrown while handling a request to the API's error shape; undefined for a bug. */
export function toApiError(error: unknown): ApiError | undefined {
  if (error instanceof ApiError) return error;
  if (error instanceof DatabaseUnavailableError) return fail(error.code);
  const candidate = error as FastifyError & { code?: string };
  if (candidate.validation) return fromValidation(candidate);
  const known = candidate.code === undefined ? undefined : (FASTIFY[candidate.code] ?? byState(candidate.code));
  if (known !== undefined) return known();
  if (candidate instanceof SyntaxError && candidate.statusCode === 400) return fail('invalid_json');
  if (typeof candidate.statusCode === 'number' && candidate.statusCode >= 400 && candidate.statusCode < 500) return fail('invalid_request', candidate.message);
  return undefined;
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(error);
    if (apiError === undefined) {
      request.log.error({ err: error }, 'unhandled error');
      const internal = fail('internal');
      return reply.status(internal.statusCode).send({ error: { code: internal.code, message: internal.message } });
    }
    if (apiError.statusCode >= 500) request.log.warn({ err: error, code: apiError.code }, 'request failed');
    return reply
      .status(apiError.statusCode)
      .headers(apiError.headers)
      .send({ error: { code: apiError.code, message: apiError.message } });
  });
  app.setNotFoundHandler((request, reply) => {
    const notFound = fail('route_not_found', request.method, (request.url.split('?')[0] ?? '').slice(0, 200));
    reply.status(notFound.statusCode).send({ error: { code: notFound.code, message: notFound.message } });
  });
}
