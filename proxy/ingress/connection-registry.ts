import type { Socket } from 'node:net';

/**
 * Which client connections each key (by hash) of each team has authorised, so that traffic
 * already flowing can be ended when the key is revoked or its quota is used up.
 */
export interface ConnectionRegistry {
  /** `tunnel` marks a CONNECT tunnel, which a used-up quota closes too. */
  track(keyHash: string, teamId: string, socket: Socket, tunnel: boolean): void;
  /** Destroys every connection the key authorised (a revocation); returns how many. */
  closeKey(keyHash: string): number;
  /**
   * Destroys the tunnels of one key or of every key of a team (a used-up quota): plain
   * requests end by themselves and the next one is refused.
   */
  closeTunnels(of: { keyHash: string } | { teamId: string }): void;
  /** Hashes of the keys that have connections open now. */
  keysInUse(): string[];
  /** Hashes of one team's keys that have connections open now. */
  keysOfTeam(teamId: string): string[];
  size(): number;
}

export function createConnectionRegistry(): ConnectionRegistry {
  const byKey = new Map<string, Set<Socket>>();
  const keysOfTeam = new Map<string, Set<string>>();
  const teamOfKey = new Map<string, string>();
  const keysOf = new Map<Socket, Set<string>>();
  // A plain set, emptied as each socket closes: a weak one costs the collector work for every connection.
  const tunnels = new Set<Socket>();

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
    tunnels.delete(socket);
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
    track(keyHash, teamId, socket, tunnel) {
      // A socket already gone may never emit 'close' again, and would be kept for ever.
      if (socket.destroyed) return;
      if (tunnel) tunnels.add(socket);
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
    closeTunnels(of) {
      const keyHashes = 'keyHash' in of ? [of.keyHash] : [...(keysOfTeam.get(of.teamId) ?? [])];
      for (const keyHash of keyHashes) {
        // Each is forgotten when it emits 'close'.
        for (const socket of byKey.get(keyHash) ?? []) if (tunnels.has(socket)) socket.destroy();
      }
    },
    keysInUse: () => [...byKey.keys()],
    keysOfTeam: (teamId) => [...(keysOfTeam.get(teamId) ?? [])],
    size: () => keysOf.size,
  };
}
