import type http from 'node:http';
import { parseAbsoluteHttpTarget, type RequestTarget } from '../../lib/http/request-target.js';
import type { KeyGrant } from '../auth/grant.js';
import { forwardHttp, hasBody, type HttpForwardOptions } from '../egress/forward-http.js';
import type { ByteMeter, UsageMeter } from '../limits/usage-meter.js';
import { Refusal, refusalParts } from '../refusal.js';
import type { Admit, Admitted } from './admission.js';
import type { ConnectionRegistry } from './connection-registry.js';
import { RequestTrace } from './request-trace.js';
import type { Tracing } from '../../lib/tracing/tracing.js';

export interface HttpRequestsOptions {
  admit: Admit;
  connections: ConnectionRegistry;
  usage: UsageMeter;
  meterFor(grant: KeyGrant): ByteMeter;
  /** Counts a request by its outcome code. */
  countOutcome(outcome: string): void;
  timeouts: HttpForwardOptions;
  tracing: Tracing;
}

/** Plain-HTTP proxy requests (absolute-form URLs): admitted, then forwarded through an exit. */
export interface HttpRequests {
  /**
   * `expectsContinue`: the client waits for `100 Continue` before sending its body.
   * Synchronous when admission is; a promise otherwise. Rejects only on a bug.
   */
  handle(request: http.IncomingMessage, response: http.ServerResponse, expectsContinue: boolean): void | Promise<void>;
}

const BAD_REQUEST = new Refusal('bad_request');
export const TRACE_ID_HEADER = 'x-portcullis-trace-id';

export function createHttpRequests({ admit, connections, usage, meterFor, countOutcome, timeouts, tracing }: HttpRequestsOptions): HttpRequests {
  function refuse(response: http.ServerResponse, request: http.IncomingMessage, refusal: Refusal, trace: RequestTrace | undefined): void {
    countOutcome(refusal.code);
    trace?.end(refusal.code);
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const { status, headers, body } = refusalParts(refusal);
    // A user's bug report can name the trace of the refusal.
    if (trace?.traceId !== undefined) headers[TRACE_ID_HEADER] = trace.traceId;
    // An unread request body would desynchronise the connection: close it instead.
    if (!request.complete && hasBody(request)) headers.connection = 'close';
    response.writeHead(status, headers);
    response.end(body);
  }

  async function forward(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    target: RequestTarget & { path: string },
    { authorization, attempts, admission }: Admitted,
    expectsContinue: boolean,
    trace: RequestTrace | undefined,
  ): Promise<void> {
    // A client that left while it was being admitted must not keep its concurrency slot.
    if (request.socket.destroyed) {
      admission.release();
      trace?.end('client_aborted');
      return countOutcome('client_aborted');
    }
    response.once('close', admission.release);
    if (trace?.wantsDebug === true && authorization.grant.debug) trace.debug = true;
    if (expectsContinue) response.writeContinue();
    connections.track(authorization.keyHash, authorization.grant.teamId, request.socket, false);
    usage.count(authorization.grant.keyId, authorization.grant.teamId, 'request');
    const outcome = await forwardHttp(
      request,
      response,
      {
        target,
        stripAuthorization: authorization.target.source === 'authorization',
        attempts,
        extraResponseHeaders: admission.headers,
        onRefusal: (code) => refuse(response, request, new Refusal(code), trace),
        meter: meterFor(authorization.grant),
        trace,
      },
      timeouts,
    );
    if (outcome === 'ok' || outcome === 'client_aborted' || outcome === 'target_failed') {
      countOutcome(outcome);
      trace?.end(outcome, { 'http.response.status_code': response.statusCode });
    }
  }

  return {
    handle(request, response, expectsContinue) {
      const wantsDebug = request.headers['proxy-debug'] === '1';
      const trace = tracing.enabled || wantsDebug ? new RequestTrace(tracing, 'proxy.request', { 'http.request.method': request.method ?? '' }, wantsDebug) : undefined;
      const target = parseAbsoluteHttpTarget(request.url);
      if (target === undefined) return refuse(response, request, BAD_REQUEST, trace);
      trace?.span?.setAttributes({ 'server.address': target.hostname, 'server.port': target.port });
      let admitted: Admitted | Promise<Admitted>;
      try {
        admitted = admit(request, request.socket, target, false, trace);
      } catch (refusal) {
        return refuse(response, request, refusal as Refusal, trace);
      }
      if (!(admitted instanceof Promise)) return forward(request, response, target, admitted, expectsContinue, trace);
      return admitted.then(
        (resolved) => forward(request, response, target, resolved, expectsContinue, trace),
        (refusal: unknown) => refuse(response, request, refusal as Refusal, trace),
      );
    },
  };
}
