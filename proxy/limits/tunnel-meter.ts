import type { Socket } from 'node:net';

/**
 * Meters open CONNECT tunnels from their client sockets' own byte counters, read at every
 * usage flush and once more when the tunnel closes, instead of a listener on every chunk:
 * a tunnel open for hours is still counted while it streams, and bulk traffic pays nothing
 * per chunk.
 */
export interface TunnelMeter {
  /**
   * Starts metering a tunnel just established: `alreadyRead` bytes read before now (sent
   * with the CONNECT request) are tunnel payload too. Returns what to call when it closes.
   */
  open(keyId: string, teamId: string, client: Socket, alreadyRead: number): () => void;
  /** Adds what every open tunnel moved since the last reading. */
  collect(): void;
}

export interface TunnelMeterOptions {
  /** Up: from the client towards the target; down: back to the client. */
  addBytes(keyId: string, teamId: string, bytesUp: number, bytesDown: number): void;
}

interface Metered {
  keyId: string;
  teamId: string;
  client: Socket;
  read: number;
  written: number;
}

export function createTunnelMeter({ addBytes }: TunnelMeterOptions): TunnelMeter {
  const tunnels = new Set<Metered>();

  function take(tunnel: Metered): void {
    const read = tunnel.client.bytesRead;
    const written = tunnel.client.bytesWritten;
    const up = read - tunnel.read;
    const down = written - tunnel.written;
    tunnel.read = read;
    tunnel.written = written;
    if (up > 0 || down > 0) addBytes(tunnel.keyId, tunnel.teamId, up, down);
  }

  return {
    open(keyId, teamId, client, alreadyRead) {
      const tunnel: Metered = { keyId, teamId, client, read: client.bytesRead - alreadyRead, written: client.bytesWritten };
      tunnels.add(tunnel);
      return () => {
        if (!tunnels.delete(tunnel)) return;
        take(tunnel);
      };
    },
    collect() {
      for (const tunnel of tunnels) take(tunnel);
    },
  };
}
