import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Counter, Gauge } from 'prom-client';
import { endSocket } from '../../lib/http/end-socket.js';
import { parseConnectTarget } from '../../lib/http/request-target.js';
import type { KeyGrant } from '../auth/grant.js';
import { openTunnel, type TunnelOptions } from '../egress/connect-tunnel.js';
import type { ByteMeter, UsageMeter } from '../limits/usage-meter.js';
import { Refusal, renderRefusal } from '../refusal.js';
import type { Admit } from './admission.js';
import type { ConnectionRegistry } from './connection-registry.js';

export interface ConnectRequestsOptions {
  admit: Admit;
  connections: ConnectionRegistry;
  usage: UsageMeter;
  meterFor(grant: KeyGrant): ByteMeter;
  /** Tunnels by outcome code, and open now. */
  tunnels: Counter<'outcome'>;
  openTunnels: Gauge;
  tunnelOptions: TunnelOptions;
}

/** CONNECT requests: admitted, then a tunnel through an exit that lives until either side closes. */
export interface ConnectRequests {
  handle(request: http.IncomingMessage, socket: Socket, head: Buffer): Promise<void>;
  /** Tunnels admitted and not yet closed, including those still connecting. */
  open(): number;
}

export function createConnectRequests({ admit, connections, usage, meterFor, tunnels, openTunnels, tunnelOptions }: ConnectRequestsOptions): ConnectRequests {
  let open = 0;

  function refuse(socket: Socket, refusal: Refusal): void {
    tunnels.inc({ outcome: refusal.code });
    endSocket(socket, renderRefusal(refusal, false));
  }

  return {
    async handle(request, socket, head) {
      const target = parseConnectTarget(request.url);
      if (target === undefined) return refuse(socket, new Refusal('bad_request'));
      let admitted;
      try {
        admitted = await admit(request, socket, target, true);
      } catch (error) {
        return refuse(socket, error as Refusal);
      }
      const { authorization, attempts, admission } = admitted;
      // The client may have left while it was being admitted: its slot comes back at once.
      if (socket.destroyed) {
        admission.release();
        return void tunnels.inc({ outcome: 'client_aborted' });
      }
      connections.track(authorization.keyHash, authorization.grant.teamId, socket, true);
      open++;
      openTunnels.inc();
      let isClosed = false;
      const closed = () => {
        if (isClosed) return;
        isClosed = true;
        open--;
        openTunnels.dec();
        admission.release();
      };
      let outcome;
      try {
        outcome = await openTunnel(socket, head, target, attempts, tunnelOptions, admission.headers, meterFor(authorization.grant), closed);
      } catch (error) {
        closed();
        throw error;
      }
      // Only a tunnel that opened counts in usage; its bytes were metered as they flowed.
      if (outcome === 'ok') usage.count(authorization.grant.keyId, authorization.grant.teamId, 'tunnel');
      if (outcome === 'ok' || outcome === 'client_aborted') tunnels.inc({ outcome });
      if (outcome !== 'ok') {
        closed();
        if (outcome !== 'client_aborted') refuse(socket, new Refusal(outcome));
      }
    },
    open: () => open,
  };
}
