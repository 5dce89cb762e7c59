import type { Socket } from 'node:net';

/**
 * Which client connections each key (by hash) of each team has authorised, so that traffic
 * already flowing can be ended when the key is revoked or its quota is used up.
 */
export interface ConnectionRegistry {
  track(keyHash: string, teamId: string, socket: Socket): void;
  /** Destroys every connection the key authorised; returns how many. */
  closeKey(keyHash: string): number;
  /** Destroys every connection any key of the team authorised; returns how many. */
  closeTeam(teamId: string): number;
  size(): number;
}

export function createConnectionRegistry(): ConnectionRegistry {
  const byKey = new Map<string, Set<Socket>>();
  const keysOfTeam = new Map<string, Set<string>>();
  const teamOfKey = new Map<string, string>();
  const keysOf = new Map<Socket, Set<string>>();

  function dropKey(keyHash: string): void {
    byKey.delete(keyHash);
    const teamId = teamOfKey.get(keyHash);
    if (teamId === undefined) return;
    teamOfKey.delete(keyHash);
    const keys = keysOfTeam.get(teamId);
    keys?.delete(keyHash);
    if (keys?.size === 0) keysOfTeam.delete(teamId);
  }

  function forget(socket: Socket): void {
    const keys = keysOf.get(socket);
    if (keys === undefined) return;
    keysOf.delete(socket);
    for (const keyHash of keys) {
      const sockets = byKey.get(keyHash);
      sockets?.delete(socket);
      if (sockets?.size === 0) dropKey(keyHash);
    }
  }

  function closeKey(keyHash: string): number {
    const sockets = byKey.get(keyHash);
    if (sockets === undefined) return 0;
    const count = sockets.size;
    for (const socket of [...sockets]) socket.destroy();
    dropKey(keyHash);
    return count;
  }

  return {
    track(keyHash, teamId, socket) {
      let sockets = byKey.get(keyHash);
      if (sockets === undefined) {
        byKey.set(keyHash, (sockets = new Set()));
        teamOfKey.set(keyHash, teamId);
        let keys = keysOfTeam.get(teamId);
        if (keys === undefined) keysOfTeam.set(teamId, (keys = new Set()));
        keys.add(keyHash);
      }
      if (sockets.has(socket)) return;
      sockets.add(socket);
      let keys = keysOf.get(socket);
      if (keys === undefined) {
        keysOf.set(socket, (keys = new Set()));
        socket.once('close', () => forget(socket));
      }
      keys.add(keyHash);
    },
    closeKey,
    closeTeam(teamId) {
      let count = 0;
      for (const keyHash of [...(keysOfTeam.get(teamId) ?? [])]) count += closeKey(keyHash);
      return count;
    },
    size: () => keysOf.size,
  };
}
