import type http from 'node:http';
import type { Dispatcher } from 'undici';
import { FORBIDDEN_DESTINATION, isDnsFailure } from '../../lib/http/destination-policy.js';
import { forwardedRequestHeaders, forwardedResponseHeaders } from '../../lib/http/headers.js';
import type { RequestTarget } from '../../lib/http/request-target.js';
import type { ByteMeter } from '../limits/usage-meter.js';
import type { ExitAttempts } from './exit-attempts.js';
import type { ExitTransport } from './exit-transport.js';
import { DEBUG_INFO_HEADER, type RequestTrace } from '../ingress/request-trace.js';
import type { Span } from '../../lib/tracing/tracing.js';

/** Outcomes the client hears of as a refusal of ours. */
export type ForwardRefusal = 'exit_failed' | 'destination_forbidden' | 'dns_error';
export type ForwardOutcome = 'ok' | ForwardRefusal | 'client_aborted' | 'target_failed';

/** One request's forwarding: where to, through which exits, and what to tell whom. */
export interface HttpForward {
  target: RequestTarget & { path: string };
  /** The key came in `Authorization`, which then must not reach the target. */
  stripAuthorization: boolean;
  attempts: ExitAttempts;
  /** Headers of ours for the response (X-RateLimit-*), as [name, value, ...]. */
  extraResponseHeaders: string[];
  onRefusal(outcome: ForwardRefusal): void;
  /** Hears once, at the end, of the payload bytes that flowed each way. */
  meter: ByteMeter;
  /** Only when tracing is on: each exit tried and the exchange get a span. */
  trace?: RequestTrace;
}

export interface HttpForwardOptions {
  /** Time allowed for the target to start answering. */
  responseTimeoutMs: number;
}

/** Failures to reach an exit before anything was sent: another exit may do better. */
const RETRYABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

const EXIT_ERROR_HEADER = 'x-portcullis-exit-error';

export function hasBody(request: http.IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function latin1(raw: Buffer[]): string[] {
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw[i]!.toString('latin1');
  return out;
}

/** What an upstream exit's `X-Portcullis-Exit-Error` says, if it sent one. */
function exitErrorOf(headers: string[]): ForwardRefusal | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length !== EXIT_ERROR_HEADER.length || headers[i]!.toLowerCase() !== EXIT_ERROR_HEADER) continue;
    const value = headers[i + 1];
    return value === 'destination_forbidden' || value === 'dns_error' ? value : 'exit_failed';
  }
  return undefined;
}

/**
 * Forwards one plain-HTTP request through an exit, with undici: its HTTP/1.1 client costs
 * about two thirds of node:http's per proxied request (measured in bench/). A failure to
 * reach an exit before the request was written is retried on the next exit, so a body is
 * never sent twice or lost. Resolves with the outcome; never rejects.
 */
export function forwardHttp(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  { target, stripAuthorization, attempts, extraResponseHeaders, onRefusal, meter, trace }: HttpForward,
  options: HttpForwardOptions,
): Promise<ForwardOutcome> {
  const headers = forwardedRequestHeaders(request.rawHeaders, target.authority, stripAuthorization);
  const withBody = hasBody(request);
  return new Promise<ForwardOutcome>((resolve) => {
    let settled = false;
    let bytesUp = 0;
    let bytesDown = 0;
    let abortUpstream: ((reason?: Error) => void) | undefined;
    // The span of the step under way: an exit being tried, then the exchange with the target.
    let stepSpan: Span | undefined;
    const endStep = (outcome: ForwardOutcome | 'retry') => {
      if (stepSpan === undefined) return;
      if (outcome !== 'ok') trace!.tracing.fail(stepSpan, outcome);
      stepSpan.end();
      stepSpan = undefined;
    };
    const settle = (outcome: ForwardOutcome) => {
      if (settled) return;
      settled = true;
      endStep(outcome);
      trace?.span?.setAttributes({ 'portcullis.bytes_up': bytesUp, 'portcullis.bytes_down': bytesDown });
      if (bytesUp > 0 || bytesDown > 0) meter(bytesUp, bytesDown);
      resolve(outcome);
    };
    const refuse = (outcome: ForwardRefusal) => {
      onRefusal(outcome);
      settle(outcome);
    };
    response.once('close', () => {
      if (response.writableFinished) return;
      abortUpstream?.();
      settle('client_aborted');
    });

    let tries = 0;
    const attempt = (): void => {
      const transport = attempts.next();
      if (transport === undefined) return refuse('exit_failed');
      tries++;
      if (trace !== undefined) stepSpan = trace.step('exit.connect', { 'portcullis.exit.id': transport.exit.id, 'portcullis.exit.country': transport.exit.country, 'portcullis.exit.direct': transport.isDirect });
      transport.dispatcher.dispatch(requestFor(transport), handlerFor(transport));
    };

    const requestFor = (transport: ExitTransport): Dispatcher.DispatchOptions => ({
      origin: transport.isDirect ? `http://${target.authority}` : transport.origin,
      path: transport.isDirect ? target.path : `http://${target.authority}${target.path}`,
      method: request.method as Dispatcher.HttpMethod,
      headers: transport.proxyAuthorization === undefined ? headers : [...headers, 'Proxy-Authorization', transport.proxyAuthorization],
      body: withBody ? request : null,
      headersTimeout: options.responseTimeoutMs,
      bodyTimeout: 0,
    });

    const handlerFor = (transport: ExitTransport): Dispatcher.DispatchHandler => {
      let written = false;
      return {
        onConnect(abort) {
          written = true;
          abortUpstream = abort;
          if (settled) abort();
        },
        // undici passes the chunk itself, whatever its types say.
        onBodySent(chunk: unknown) {
          bytesUp += (chunk as Buffer).length;
        },
        onHeaders(statusCode, rawHeaders, resume) {
          if (settled) return false;
          const received = latin1(rawHeaders as unknown as Buffer[]);
          // An exit that could not, or would not, reach the target says so: that is our 502
          // or 403, not the target's answer.
          const exitError = exitErrorOf(received);
          if (exitError !== undefined) {
            // Settled first: the abort reports back through onError, which then stays silent.
            refuse(exitError);
            abortUpstream?.();
            return false;
          }
          const responseHeaders = forwardedResponseHeaders(received);
          if (extraResponseHeaders.length > 0) responseHeaders.push(...extraResponseHeaders);
          if (trace?.debug === true) responseHeaders.push(DEBUG_INFO_HEADER, trace.debugInfo(transport.exit.id, tries));
          // The reason phrase means nothing (RFC 9112 §4) and may hold what Node refuses to write.
          try {
            response.writeHead(statusCode, responseHeaders);
          } catch {
            // A status Node reads but will not write (under 100): the target failed to answer HTTP.
            refuse('exit_failed');
            abortUpstream?.();
            return false;
          }
          response.on('drain', resume);
          if (stepSpan !== undefined) {
            endStep('ok');
            stepSpan = trace!.step('upstream.exchange', { 'http.response.status_code': statusCode });
          }
          return true;
        },
        onData(chunk) {
          bytesDown += chunk.length;
          return response.write(chunk);
        },
        onComplete() {
          response.end();
          settle('ok');
        },
        onError(error) {
          const code = (error as NodeJS.ErrnoException).code ?? '';
          if (settled) return;
          if (response.headersSent) {
            response.destroy();
            return settle('target_failed');
          }
          if (code === FORBIDDEN_DESTINATION) return refuse('destination_forbidden');
          // Egressing directly, the lookup is the target's: no exit would find the name. Through
          // an exit it is the exit's own name, an exit failure like any other.
          if (transport.isDirect && isDnsFailure(code)) return refuse('dns_error');
          if (request.destroyed) return settle('client_aborted');
          if (!written && RETRYABLE.has(code)) {
            endStep('retry');
            attempts.failed(transport);
            return attempt();
          }
          refuse('exit_failed');
        },
      };
    };
    attempt();
  });
}
