import net from 'node:net';

/** Where a proxied request goes: an absolute-form `http://` URL or a CONNECT authority. */
export interface RequestTarget {
  hostname: string;
  port: number;
  /** host[:port] as the client wrote it, for CONNECT lines and Host headers. */
  authority: string;
}

const HOSTNAME = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function parseAuthority(authority: string, defaultPort: number | undefined): RequestTarget | undefined {
  if (authority.length === 0 || authority.length > 260) return undefined;
  let hostname: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    if (end < 0) return undefined;
    hostname = authority.slice(1, end);
    if (net.isIPv6(hostname) === false) return undefined;
    const rest = authority.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) return undefined;
    portText = rest === '' ? undefined : rest.slice(1);
  } else {
    const colon = authority.lastIndexOf(':');
    hostname = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
    if (!HOSTNAME.test(hostname)) return undefined;
  }
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
  }
  if (port === undefined || port < 1 || port > 65535) return undefined;
  return { hostname, port, authority };
}

/** `host:port` of a CONNECT request; undefined when malformed. */
export function parseConnectTarget(url: string | undefined): RequestTarget | undefined {
  return url === undefined ? undefined : parseAuthority(url, undefined);
}

/** The target of an absolute-form `http://` request; undefined when malformed or not http. */
export function parseAbsoluteHttpTarget(url: string | undefined): (RequestTarget & { path: string }) | undefined {
  if (url === undefined || !url.startsWith('http://')) return undefined;
  const slash = url.indexOf('/', 7);
  const question = url.indexOf('?', 7);
  const end = slash < 0 ? (question < 0 ? url.length : question) : question < 0 ? slash : Math.min(slash, question);
  const authority = url.slice(7, end);
  if (authority.includes('@')) return undefined;
  const target = parseAuthority(authority, 80);
  if (target === undefined) return undefined;
  const rest = url.slice(end);
  return { ...target, path: rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest };
}
