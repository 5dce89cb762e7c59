import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Gauge } from 'prom-client';
import { endSocket } from '../../lib/http/end-socket.js';
import { parseConnectTarget, type RequestTarget } from '../../lib/http/request-target.js';
import { connectEstablished, openTunnel, type TunnelOptions } from '../egress/connect-tunnel.js';
import type { TunnelMeter } from '../limits/tunnel-meter.js';
import type { UsageMeter } from '../limits/usage-meter.js';
import { Refusal, renderRefusal } from '../refusal.js';
import type { Admit, Admitted } from './admission.js';
import type { ConnectionRegistry } from './connection-registry.js';
import { RequestTrace } from './request-trace.js';
import type { Span, Tracing } from '../../lib/tracing/tracing.js';

export interface ConnectRequestsOptions {
  admit: Admit;
  connections: ConnectionRegistry;
  usage: UsageMeter;
  tunnelMeter: TunnelMeter;
  /** Counts a tunnel by its outcome code. */
  countOutcome(outcome: string): void;
  openTunnels: Gauge;
  tunnelOptions: TunnelOptions;
  tracing: Tracing;
}

/** How a client hears about its tunnel: HTTP CONNECT answers, or SOCKS5 replies. */
export interface TunnelDialect {
  /** What the client hears once its tunnel is open, given our headers (X-RateLimit-*) as [name, value, ...]. */
  established(extraHeaders: string[]): string | Uint8Array;
  /** Answers a refusal and closes the connection; `traceId`: the tunnel's trace, when tracing is on. */
  refuse(socket: Socket, refusal: Refusal, traceId?: string): void;
}

/** CONNECT requests: admitted, then a tunnel through an exit that lives until either side closes. */
export interface ConnectRequests {
  /** Synchronous when admission is; a promise otherwise. Rejects only on a bug. */
  handle(request: http.IncomingMessage, socket: Socket, head: Buffer): void | Promise<void>;
  /**
   * A tunnel for a client admitted elsewhere (SOCKS5), tracked, metered and counted like a
   * CONNECT's; `head` is payload the client sent ahead. Rejects only on a bug.
   */
  tunnel(socket: Socket, head: Buffer, target: RequestTarget, admitted: Admitted, dialect: TunnelDialect, trace?: RequestTrace): Promise<void>;
  /** Tunnels admitted and not yet closed, including those still connecting. */
  open(): number;
}

const BAD_REQUEST = new Refusal('bad_request');

export function createConnectRequests({ admit, connections, usage, tunnelMeter, countOutcome, openTunnels, tunnelOptions, tracing }: ConnectRequestsOptions): ConnectRequests {
  let open = 0;

  const httpDialect: TunnelDialect = {
    established: connectEstablished,
    refuse: (socket, refusal, traceId) => endSocket(socket, renderRefusal(refusal, false, traceId)),
  };
  function refuse(socket: Socket, refusal: Refusal, trace: RequestTrace | undefined): void {
    countOutcome(refusal.code);
    trace?.end(refusal.code);
    httpDialect.refuse(socket, refusal, trace?.traceId);
  }

  async function tunnel(
    socket: Socket,
    head: Buffer,
    target: RequestTarget,
    { authorization, attempts, admission }: Admitted,
    dialect: TunnelDialect,
    trace?: RequestTrace,
  ): Promise<void> {
    // The client may have left while it was being admitted: its slot comes back at once.
    if (socket.destroyed) {
      admission.release();
      trace?.end('client_aborted');
      return countOutcome('client_aborted');
    }
    // Connecting through the exits, then the tunnel's life: one span each.
    let stepSpan: Span | undefined = trace?.step('exit.connect');
    const { keyId, teamId } = authorization.grant;
    connections.track(authorization.keyHash, teamId, socket, true);
    open++;
    openTunnels.inc();
    let stopMetering: (() => void) | undefined;
    let isClosed = false;
    const closed = () => {
      if (isClosed) return;
      isClosed = true;
      stopMetering?.();
      open--;
      openTunnels.dec();
      admission.release();
      if (trace !== undefined && stepSpan !== undefined) {
        stepSpan.end();
        stepSpan = undefined;
        trace.end('ok', { 'portcullis.bytes_up': socket.bytesRead, 'portcullis.bytes_down': socket.bytesWritten });
      }
    };
    let outcome;
    try {
      outcome = await openTunnel(socket, head, target, attempts, tunnelOptions, dialect.established(admission.headers), {
        established: () => {
          stopMetering = tunnelMeter.open(keyId, teamId, socket, head.length);
          if (trace !== undefined) {
            stepSpan?.end();
            stepSpan = trace.step('upstream.exchange');
          }
        },
        closed,
      });
    } catch (error) {
      closed();
      throw error;
    }
    // Only a tunnel that opened counts in usage.
    if (outcome === 'ok') usage.count(keyId, teamId, 'tunnel');
    if (outcome === 'ok' || outcome === 'client_aborted') countOutcome(outcome);
    if (outcome !== 'ok') {
      if (trace !== undefined && stepSpan !== undefined) {
        trace.tracing.fail(stepSpan, outcome);
        stepSpan.end();
        stepSpan = undefined;
        trace.end(outcome);
      }
      closed();
      if (outcome !== 'client_aborted') {
        countOutcome(outcome);
        dialect.refuse(socket, new Refusal(outcome), trace?.traceId);
      }
    }
  }

  return {
    handle(request, socket, head) {
      // Proxy-Debug-Info answers plain-HTTP requests only: a tunnel's reply goes out before its exit is known to work.
      const trace = tracing.enabled ? new RequestTrace(tracing, 'proxy.tunnel', { 'http.request.method': 'CONNECT' }, false) : undefined;
      const target = parseConnectTarget(request.url);
      if (target === undefined) return refuse(socket, BAD_REQUEST, trace);
      trace?.span?.setAttributes({ 'server.address': target.hostname, 'server.port': target.port });
      let admitted: Admitted | Promise<Admitted>;
      try {
        admitted = admit(request, socket, target, true, trace);
      } catch (refusal) {
        return refuse(socket, refusal as Refusal, trace);
      }
      if (!(admitted instanceof Promise)) return tunnel(socket, head, target, admitted, httpDialect, trace);
      return admitted.then(
        (resolved) => tunnel(socket, head, target, resolved, httpDialect, trace),
        (refusal: unknown) => refuse(socket, refusal as Refusal, trace),
      );
    },
    tunnel,
    open: () => open,
  };
}
