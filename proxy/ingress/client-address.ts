import type { Socket } from 'node:net';

/**
 * Where each client connection comes from. Behind a load balancer speaking PROXY protocol
 * the socket's peer is the balancer; the client is what the balancer's header said, and
 * that is the address allowlists and per-client budgets judge.
 */
export interface ClientAddresses {
  /** Records the address a PROXY protocol header gave for a connection. */
  set(socket: Socket, address: string): void;
  /** The client's address; '' for a socket already gone. */
  of(socket: Socket): string;
}

export function createClientAddresses(): ClientAddresses {
  const fromHeader = new WeakMap<Socket, string>();
  return {
    set: (socket, address) => void fromHeader.set(socket, address),
    of: (socket) => fromHeader.get(socket) ?? socket.remoteAddress ?? '',
  };
}
