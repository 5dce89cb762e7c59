import type http from 'node:http';
import type { Counter } from 'prom-client';
import { parseAbsoluteHttpTarget } from '../../lib/http/request-target.js';
import type { KeyGrant } from '../auth/grant.js';
import { forwardHttp, hasBody, type HttpForwardOptions } from '../egress/forward-http.js';
import type { ByteMeter, UsageMeter } from '../limits/usage-meter.js';
import { Refusal, refusalParts } from '../refusal.js';
import type { Admit } from './admission.js';
import type { ConnectionRegistry } from './connection-registry.js';

export interface HttpRequestsOptions {
  admit: Admit;
  connections: ConnectionRegistry;
  usage: UsageMeter;
  meterFor(grant: KeyGrant): ByteMeter;
  /** Requests by outcome code. */
  requests: Counter<'outcome'>;
  timeouts: HttpForwardOptions;
}

/** Plain-HTTP proxy requests (absolute-form URLs): admitted, then forwarded through an exit. */
export interface HttpRequests {
  /** `expectsContinue`: the client waits for `100 Continue` before sending its body. */
  handle(request: http.IncomingMessage, response: http.ServerResponse, expectsContinue: boolean): Promise<void>;
}

export function createHttpRequests({ admit, connections, usage, meterFor, requests, timeouts }: HttpRequestsOptions): HttpRequests {
  function refuse(response: http.ServerResponse, request: http.IncomingMessage, refusal: Refusal): void {
    requests.inc({ outcome: refusal.code });
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const { status, headers, body } = refusalParts(refusal);
    // An unread request body would desynchronise the connection: close it instead.
    if (!request.complete && hasBody(request)) headers.connection = 'close';
    response.writeHead(status, headers);
    response.end(body);
  }

  return {
    async handle(request, response, expectsContinue) {
      const target = parseAbsoluteHttpTarget(request.url);
      if (target === undefined) return refuse(response, request, new Refusal('bad_request'));
      let admitted;
      try {
        admitted = await admit(request, request.socket, target, false);
      } catch (error) {
        return refuse(response, request, error as Refusal);
      }
      const { authorization, attempts, admission } = admitted;
      // A client that left while it was being admitted must not keep its concurrency slot.
      if (request.socket.destroyed) {
        admission.release();
        return void requests.inc({ outcome: 'client_aborted' });
      }
      response.once('close', admission.release);
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
          onRefusal: (code) => refuse(response, request, new Refusal(code)),
          meter: meterFor(authorization.grant),
        },
        timeouts,
      );
      if (outcome === 'ok' || outcome === 'client_aborted' || outcome === 'target_failed') requests.inc({ outcome });
    },
  };
}
