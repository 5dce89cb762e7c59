import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Every error the API returns is `{error: {code, message}}` with a stable code. Handlers
 * throw ApiError; everything else is translated once, here.
 */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

const PG_QUERY_CANCELED = '57014';
const PG_UNIQUE_VIOLATION = '23505';

function fieldName(context: string | undefined, path: string, extra?: unknown): string {
  const segments = path.split('/').filter(Boolean);
  if (typeof extra === 'string') segments.push(extra);
  const name = segments.join('.');
  return name === '' ? (context ?? 'request') : name;
}

function fromValidation(error: FastifyError): ApiError {
  const first = (error.validation as AjvError[] | undefined)?.[0];
  const context = error.validationContext;
  if (first === undefined) return new ApiError(400, 'invalid_request', error.message);
  if (first.keyword === 'additionalProperties') {
    const field = fieldName(context, first.instancePath, first.params.additionalProperty);
    return new ApiError(400, 'unknown_field', `unknown field "${field}" in ${context}`);
  }
  if (first.keyword === 'required') {
    const field = fieldName(context, first.instancePath, first.params.missingProperty);
    return new ApiError(400, 'missing_field', `missing required field "${field}" in ${context}`);
  }
  const field = fieldName(context, first.instancePath);
  return new ApiError(400, 'invalid_field', `"${field}" in ${context} ${first.message ?? 'is invalid'}`);
}

/** Maps anything thrown while handling a request to the API's error shape. */
export function toApiError(error: unknown): ApiError | undefined {
  if (error instanceof ApiError) return error;
  const candidate = error as FastifyError & { code?: string };
  if (candidate.validation) return fromValidation(candidate);
  switch (candidate.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'body_too_large', 'request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'unsupported_media_type', 'send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'invalid_json', 'the JSON body is empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, 'invalid_json', 'the body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'invalid_request', 'Content-Length does not match the body');
    case PG_QUERY_CANCELED:
      return new ApiError(503, 'database_timeout', 'the database took too long; try again', { 'retry-after': '1' });
    case PG_UNIQUE_VIOLATION:
      return new ApiError(409, 'conflict', 'a resource with these values already exists');
  }
  if (candidate instanceof SyntaxError && candidate.statusCode === 400) {
    return new ApiError(400, 'invalid_json', 'the body is not valid JSON');
  }
  if (candidate.message?.includes('timeout exceeded when trying to connect')) {
    return new ApiError(503, 'database_busy', 'the database is busy; try again', { 'retry-after': '1' });
  }
  if (typeof candidate.statusCode === 'number' && candidate.statusCode >= 400 && candidate.statusCode < 500) {
    return new ApiError(candidate.statusCode, 'invalid_request', candidate.message);
  }
  return undefined;
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(error);
    if (apiError === undefined) {
      request.log.error({ err: error }, 'unhandled error');
      return reply.status(500).send({ error: { code: 'internal', message: 'internal error; the request id is in x-request-id' } });
    }
    if (apiError.statusCode >= 500) request.log.warn({ err: error, code: apiError.code }, 'request failed');
    return reply
      .status(apiError.statusCode)
      .headers(apiError.headers)
      .send({ error: { code: apiError.code, message: apiError.message } });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ error: { code: 'route_not_found', message: `no route for ${request.method} ${(request.url.split('?')[0] ?? '').slice(0, 200)}` } });
  });
}
