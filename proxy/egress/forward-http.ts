import http from 'node:http';
import type { Socket } from 'node:net';
import { FORBIDDEN_DESTINATION, isDnsFailure } from '../../lib/http/destination-policy.js';
import type { ByteMeter } from '../limits/usage-meter.js';
import type { ExitAttempts } from './exit-attempts.js';
import { forwardedRequestHeaders, forwardedResponseHeaders } from '../../lib/http/headers.js';
import type { RequestTarget } from '../../lib/http/request-target.js';

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
  meter: ByteMeter;
}

export interface HttpForwardOptions {
  connectTimeoutMs: number;
  /** Time allowed for the target to start answering. */
  responseTimeoutMs: number;
}

const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

export function hasBody(request: http.IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Forwards one plain-HTTP request through an exit. A failure to reach an exit before the
 * request body was sent and before any byte went to the client is retried on the next exit;
 * the body is piped only once the upstream socket is connected, so it is never lost.
 * Resolves with the outcome; never rejects.
 */
export function forwardHttp(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  { target, stripAuthorization, attempts, extraResponseHeaders, onRefusal, meter }: HttpForward,
  options: HttpForwardOptions,
): Promise<ForwardOutcome> {
  const headers = forwardedRequestHeaders(request.rawHeaders, target.authority, stripAuthorization);
  const withBody = hasBody(request);
  return new Promise<ForwardOutcome>((resolve) => {
    let settled = false;
    const settle = (outcome: ForwardOutcome) => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };

    const attempt = (): void => {
      const transport = attempts.next();
      if (transport === undefined) {
        onRefusal('exit_failed');
        settle('exit_failed');
        return;
      }
      let upstreamHeaders = headers;
      if (transport.proxyAuthorization !== undefined) upstreamHeaders = [...headers, 'Proxy-Authorization', transport.proxyAuthorization];
      const upstream = http.request({
        agent: transport.agent,
        method: request.method,
        setHost: false,
        headers: upstreamHeaders as unknown as http.OutgoingHttpHeaders,
        ...(transport.isDirect
          ? { host: target.hostname, port: target.port, path: target.path }
          : { host: transport.host, port: transport.port, path: `http://${target.authority}${target.path}` }),
      });
      let bodyStarted = false;
      let connectTimer: NodeJS.Timeout | undefined;
      const startBody = () => {
        if (connectTimer !== undefined) clearTimeout(connectTimer);
        if (!withBody) return upstream.end();
        bodyStarted = true;
        request.pipe(upstream);
        // Counted only once piping starts: a listener earlier would let the body flow away.
        request.on('data', (chunk: Buffer) => meter(chunk.length, 0));
      };
      upstream.once('socket', (socket: Socket) => {
        if (!socket.connecting) return startBody();
        connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), options.connectTimeoutMs);
        socket.once('connect', startBody);
      });
      upstream.setTimeout(options.responseTimeoutMs, () => upstream.destroy(Object.assign(new Error('response timeout'), { code: 'ETIMEDOUT' })));

      upstream.on('response', (upstreamResponse) => {
        upstream.setTimeout(0);
        // An exit that could not, or would not, reach the target says so; that is our 502 or
        // 403, not the target's answer.
        const exitError = upstreamResponse.headers['x-portcullis-exit-error'];
        if (exitError !== undefined) {
          upstreamResponse.resume();
          const outcome = exitError === 'destination_forbidden' || exitError === 'dns_error' ? exitError : 'exit_failed';
          onRefusal(outcome);
          settle(outcome);
          return;
        }
        const responseHeaders = forwardedResponseHeaders(upstreamResponse.rawHeaders);
        if (extraResponseHeaders.length > 0) responseHeaders.push(...extraResponseHeaders);
        // The reason phrase means nothing (RFC 9112 §4) and may hold what Node refuses to write.
        try {
          response.writeHead(upstreamResponse.statusCode ?? 502, responseHeaders);
        } catch {
          // A status Node reads but will not write (under 100): the target failed to answer HTTP.
          upstream.destroy();
          onRefusal('exit_failed');
          settle('exit_failed');
          return;
        }
        upstreamResponse.on('data', (chunk: Buffer) => meter(0, chunk.length));
        upstreamResponse.pipe(response);
        upstreamResponse.once('end', () => settle('ok'));
        upstreamResponse.once('error', () => {
          response.destroy();
          settle('target_failed');
        });
      });

      upstream.on('error', (error: NodeJS.ErrnoException) => {
        if (connectTimer !== undefined) clearTimeout(connectTimer);
        if (settled || response.headersSent) {
          response.destroy();
          settle('target_failed');
          return;
        }
        if (error.code === FORBIDDEN_DESTINATION) {
          onRefusal('destination_forbidden');
          settle('destination_forbidden');
          return;
        }
        // Egressing directly, the lookup is the target's; through an exit it is the exit's
        // own name, an exit failure like any other.
        if (transport.isDirect && isDnsFailure(error.code)) {
          onRefusal('dns_error');
          settle('dns_error');
          return;
        }
        if (request.destroyed) return settle('client_aborted');
        if (!bodyStarted && RETRYABLE.has(error.code ?? '')) {
          attempts.failed(transport);
          return attempt();
        }
        onRefusal('exit_failed');
        settle('exit_failed');
      });

      response.once('close', () => {
        if (!response.writableFinished) {
          upstream.destroy();
          settle('client_aborted');
        }
      });
    };
    attempt();
  });
}
