import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';
import { ERRORS, type ErrorCode } from '../errors.js';
import { SCOPE_DESCRIPTIONS, SCOPES } from '../tokens/scopes.js';

/**
 * The OpenAPI 3.1 document at /openapi.json, generated from the route schemas. Each route
 * declares only the error codes particular to it (`config.errors`); the codes every route
 * of its kind can answer with (authentication, validation, the database) are derived from
 * its schema and config here, and every code's status comes from the one table in
 * errors.ts.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Error codes particular to this call; the common ones are derived from its schema and config. */
    errors?: readonly ErrorCode[];
  }
}

const TOKEN_ERRORS: readonly ErrorCode[] = ['token_missing', 'token_invalid', 'token_expired', 'token_revoked'];
const DATABASE_ERRORS: readonly ErrorCode[] = ['database_timeout', 'database_busy', 'database_unavailable'];
/** Any call that may carry a body can be sent one that is unreadable. */
const BODY_ERRORS: readonly ErrorCode[] = ['invalid_json', 'body_too_large', 'unsupported_media_type', 'conflict'];

function propertiesOf(schema: unknown): Record<string, unknown> {
  return ((schema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {}) as Record<string, unknown>;
}

/** Every error code `route` can answer with. */
export function errorCodesOf(route: Pick<RouteOptions, 'url' | 'method' | 'schema' | 'config'>): ErrorCode[] {
  const codes = new Set<ErrorCode>(['invalid_request', 'internal']);
  const add = (list: readonly ErrorCode[]) => list.forEach((code) => codes.add(code));
  const schema: FastifySchema = route.schema ?? {};
  const config = route.config ?? {};
  const isAdminApi = route.url.startsWith('/v1/');
  if (isAdminApi) add(TOKEN_ERRORS);
  if (route.url.startsWith('/internal/')) codes.add('node_token_invalid');
  if (isAdminApi || route.url.startsWith('/internal/')) add(DATABASE_ERRORS);
  if (config.adminOnly === true) codes.add('admin_required');
  if (config.scope !== undefined) codes.add('scope_missing');
  if (config.heavy === true) codes.add('busy');
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  if (methods.some((method) => method === 'POST' || method === 'PATCH' || method === 'PUT')) add(BODY_ERRORS);
  // Path parameters can be malformed but never unknown or missing: the route names them.
  if (schema.body !== undefined) add(['unknown_field', 'missing_field', 'invalid_field']);
  if (schema.querystring !== undefined) add(['unknown_field', 'invalid_field']);
  if (schema.params !== undefined) codes.add('invalid_field');
  if ('cursor' in propertiesOf(schema.querystring)) codes.add('cursor_invalid');
  // Team access is checked for every route with a team in its path (control-plane.ts).
  if (isAdminApi && 'team' in propertiesOf(schema.params)) codes.add('team_not_found');
  add(config.errors ?? []);
  return [...codes];
}

/** The documented error responses of a route: one per status, listing its codes. */
export function errorResponses(codes: readonly ErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, unknown> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    list.sort();
    responses[status] = {
      description: list.map((code) => `\`${code}\``).join(', '),
      type: 'object',
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          required: ['code', 'message'],
          properties: { code: { type: 'string', enum: list }, message: { type: 'string' } },
        },
      },
    };
  }
  return responses;
}

function securityOf(route: RouteOptions): FastifySchema['security'] {
  if (route.url.startsWith('/internal/')) return [{ nodeToken: [] }];
  if (!route.url.startsWith('/v1/')) return [];
  // OpenAPI 3.1 lets a bearer scheme name the roles a call needs: here, the scope.
  if (route.config?.adminOnly === true) return [{ adminToken: [] }];
  return [{ token: route.config?.scope === undefined ? [] : [route.config.scope] }];
}

function describeAccess(route: RouteOptions): string | undefined {
  if (route.config?.adminOnly === true) return 'Platform admin token only.';
  if (route.config?.scope !== undefined) return `Needs the \`${route.config.scope}\` scope (the platform admin token has every scope).`;
  return undefined;
}

const SUCCESS: Readonly<Record<string, string>> = { 200: 'OK', 201: 'Created' };

/** Success answers without a description of their own are described by their status. */
function describeSuccess(responses: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(responses).map(([status, response]) => {
      const described = (response as { description?: string }).description !== undefined || SUCCESS[status] === undefined;
      return [status, described ? response : { description: SUCCESS[status], ...(response as object) }];
    }),
  );
}

function documentRoute({ schema, route }: { schema: FastifySchema; route: RouteOptions }): FastifySchema {
  const access = describeAccess(route);
  const description = [schema.description, access].filter((part) => part !== undefined).join('\n\n');
  return {
    ...schema,
    ...(description !== '' && { description }),
    security: securityOf(route),
    response: { ...describeSuccess((schema.response ?? {}) as Record<string, unknown>), ...errorResponses(errorCodesOf(route)) },
  };
}

const DOCUMENT_DESCRIPTION = [
  'The control plane of Portcullis: teams, their tokens and API keys, usage, the activity log and pools (`/v1`), and the API proxy nodes call (`/internal/v1`).',
  'Every error is `{"error": {"code", "message"}}`; each operation lists the codes it can answer with, by status. Any unknown path answers 404 `route_not_found`.',
  `Team token scopes: ${SCOPES.map((scope) => `\`${scope}\` (${SCOPE_DESCRIPTIONS[scope]})`).join('; ')}.`,
].join('\n\n');

/** Registers the document generator; call before any route so that every route is seen. */
export async function registerApiDocument(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Portcullis control plane API', version: '1', description: DOCUMENT_DESCRIPTION },
      components: {
        securitySchemes: {
          token: { type: 'http', scheme: 'bearer', description: 'A team token (`pc_tok_…`) with the scopes listed, or the platform admin token.' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'The platform admin token.' },
          nodeToken: { type: 'http', scheme: 'bearer', description: 'NODE_TOKEN, held by proxy nodes only.' },
        },
      },
      tags: [
        { name: 'teams', description: 'Teams and who a token belongs to.' },
        { name: 'tokens', description: 'Team tokens: created with scopes, listed, revoked; rotating the calling token.' },
        { name: 'keys', description: 'API keys that clients present to proxy nodes.' },
        { name: 'usage', description: 'Metered traffic per key and team.' },
        { name: 'activity', description: 'The activity log: every change, who made it and from where.' },
        { name: 'pools', description: 'Pools of exits. Team tokens see names and countries only.' },
        { name: 'node API', description: 'Called by proxy nodes with the node token; versioned with the node, not for other clients.' },
        { name: 'operations', description: 'Health, readiness and metrics.' },
      ],
    },
    transform: ({ schema, url, route }) => ({ url, schema: documentRoute({ schema: schema ?? {}, route }) }),
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
