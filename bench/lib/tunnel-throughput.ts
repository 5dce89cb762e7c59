import net from 'node:net';

export interface ThroughputResult {
  bytes: number;
  seconds: number;
  megabytesPerSecond: number;
}

/**
 * Reads everything a bulk TCP target sends, through one CONNECT tunnel of the proxy on
 * `proxyPort` (or straight from the target when `proxyPort` is undefined), and times it
 * from the first payload byte to the last.
 */
export function measureTunnelThroughput(proxyPort: number | undefined, target: string, headers: Record<string, string>): Promise<ThroughputResult> {
  return new Promise((resolve, reject) => {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    const socket = proxyPort === undefined ? net.connect(port, host) : net.connect(proxyPort, '127.0.0.1');
    let established = proxyPort === undefined;
    let bytes = 0;
    let started = 0;
    let head = Buffer.alloc(0);
    const count = (chunk: Buffer) => {
      if (bytes === 0) started = performance.now();
      bytes += chunk.length;
    };
    socket.on('connect', () => {
      if (proxyPort === undefined) return;
      const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${lines.join('')}\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      if (established) return count(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!head.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 200')) {
        socket.destroy();
        return reject(new Error(`CONNECT refused: ${head.subarray(0, end).toString('latin1')}`));
      }
      established = true;
      if (head.length > end + 4) count(head.subarray(end + 4));
    });
    socket.on('end', () => {
      const seconds = (performance.now() - started) / 1000;
      socket.destroy();
      resolve({ bytes, seconds, megabytesPerSecond: bytes / 1e6 / seconds });
    });
    socket.on('error', reject);
  });
}
