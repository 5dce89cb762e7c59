import type { Socket } from 'node:net';

/**
 * Which client connections each key (by hash) has authorised: tunnels and keep-alive
 * connections. A revocation closes them all, so it ends traffic already flowing.
 */
export interface ConnectionRegistry {
  track(keyHash: string, socket: Socket): void;
  /** Destroys every connection the key authorised; returns how many. */
  closeKey(keyHash: string): number;
  size(): number;
}

export function createConnectionRegistry(): ConnectionRegistry {
  const byKey = new Map<string, Set<Socket>>();
  const keysOf = new Map<Socket, Set<string>>();

  function forget(socket: Socket): void {
    const keys = keysOf.get(socket);
    if (keys === undefined) return;
    keysOf.delete(socket);
    for (const keyHash of keys) {
      const sockets = byKey.get(keyHash);
      sockets?.delete(socket);
      if (sockets?.size === 0) byKey.delete(keyHash);
    }
  }

  return {
    track(keyHash, socket) {
      let sockets = byKey.get(keyHash);
      if (sockets === undefined) byKey.set(keyHash, (sockets = new Set()));
      if (sockets.has(socket)) return;
      sockets.add(socket);
      let keys = keysOf.get(socket);
      if (keys === undefined) {
        keysOf.set(socket, (keys = new Set()));
        socket.once('close', () => forget(socket));
      }
      keys.add(keyHash);
    },
    closeKey(keyHash) {
      const sockets = byKey.get(keyHash);
      if (sockets === undefined) return 0;
      const count = sockets.size;
      for (const socket of [...sockets]) socket.destroy();
      byKey.delete(keyHash);
      return count;
    },
    size: () => keysOf.size,
  };
}
