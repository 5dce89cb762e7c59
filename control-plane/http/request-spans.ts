import http from 'node:http';
import type { FastifyInstance, FastifyServerFactory } from 'fastify';
import { SpanKind, type Span, type Tracing } from '../../lib/tracing/tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The `traceparent` of this request's span, when tracing is on: revocations carry it to the nodes. */
    traceparent: string | null;
  }
}

/**
 * A span for every API call, joining the caller's trace when it sends `traceparent` (a
 * proxy node's verify call does). The span is active while the call is served, so SQL
 * spans and log lines belong to it; route handlers run inside it again after the body was
 * read, since the body's events arrive outside the request's async context.
 */
export interface RequestSpans {
  serverFactory: FastifyServerFactory;
  /** Call before any route is registered. */
  install(app: FastifyInstance): void;
}

export function createRequestSpans(tracing: Tracing): RequestSpans {
  const spans = new WeakMap<http.IncomingMessage, Span>();
  return {
    serverFactory: (handler) =>
      http.createServer((request, response) => {
        const span = tracing.startSpan(`${request.method ?? 'GET'}`, {
          kind: SpanKind.SERVER,
          parent: tracing.parentFrom(request.headers.traceparent),
          attributes: { 'http.request.method': request.method ?? '' },
        });
        spans.set(request, span);
        response.once('close', () => {
          span.setAttribute('http.response.status_code', response.statusCode);
          if (response.statusCode >= 500) tracing.fail(span, String(response.statusCode));
          span.end();
        });
        tracing.withSpan(span, () => handler(request, response));
      }),
    install(app) {
      app.decorateRequest('traceparent', null);
      app.addHook('onRequest', async (request) => {
        const span = spans.get(request.raw);
        if (span === undefined) return;
        const route = request.routeOptions.url ?? 'unmatched';
        span.updateName(`${request.method} ${route}`);
        span.setAttribute('http.route', route);
        request.traceparent = tracing.traceparentOf(span);
      });
      app.addHook('onRoute', (route) => {
        const handler = route.handler;
        route.handler = function (request, reply) {
          const span = spans.get(request.raw);
          return span === undefined ? handler.call(this, request, reply) : tracing.withSpan(span, () => handler.call(this, request, reply));
        };
      });
    },
  };
}
