import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';

/**
 * The exit's own credential. An exit must not be an open proxy: only nodes that know its
 * token may send traffic through it. A pool names the exit with the token as the password
 * of its URL (`http://exit:TOKEN@host:port`), which the node sends as Basic credentials.
 */
export interface ExitCredential {
  /** Whether the request carries the exit's token (compared in constant time). */
  accepts(headers: http.IncomingHttpHeaders): boolean;
  /** The exit's URL with the credential, as a pool lists it. */
  poolUrl(host: string, port: number): string;
}

/** Tokens are URL-safe, so they can be pasted into a pool's exit URL as they are. */
export const EXIT_TOKEN_PATTERN = /^[A-Za-z0-9._~-]{16,256}$/;

const digest = (value: string) => createHash('sha256').update(value).digest();

export function createExitCredential(token: string): ExitCredential {
  if (!EXIT_TOKEN_PATTERN.test(token)) throw new Error('the exit token must be 16 to 256 URL-safe characters');
  const expected = digest(token);
  return {
    accepts(headers) {
      const header = headers['proxy-authorization'];
      if (header === undefined || !/^basic /i.test(header)) return false;
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('latin1');
      const colon = decoded.indexOf(':');
      return colon >= 0 && timingSafeEqual(digest(decoded.slice(colon + 1)), expected);
    },
    poolUrl: (host, port) => `http://exit:${token}@${host.includes(':') ? `[${host}]` : host}:${port}`,
  };
}

/** The raw answer to a request without the credential (CONNECT, or a request refused before reading its body). */
export function credentialRequired(exitId: string): string {
  return (
    'HTTP/1.1 407 Proxy Authentication Required\r\n' +
    'Proxy-Authenticate: Basic realm="portcullis-exit"\r\n' +
    `X-Portcullis-Exit: ${exitId}\r\n` +
    'X-Portcullis-Exit-Error: auth_required\r\n' +
    'Connection: close\r\nContent-Length: 0\r\n\r\n'
  );
}
