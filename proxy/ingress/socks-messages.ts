import { parseConnectTarget, type RequestTarget } from '../../lib/http/request-target.js';
import type { RefusalCode } from '../refusal.js';

/**
 * The client's side of a SOCKS5 handshake (RFC 1928, RFC 1929 for the login), read from the
 * bytes received so far, and the server's replies. Each reader answers `more` until it has
 * a whole message, `invalid` for one that breaks the protocol, or the message and its length.
 */

export type Read<T> = (T & { length: number }) | 'more' | 'invalid';

const VERSION = 0x05;
const LOGIN_VERSION = 0x01;
const USERNAME_PASSWORD = 0x02;
export const CONNECT_COMMAND = 0x01;

/** The methods the client offers; whether it offers username/password is all that matters here. */
export function readGreeting(buffer: Buffer): Read<{ offersLogin: boolean }> {
  if (buffer.length < 2) return buffer.length === 1 && buffer[0] !== VERSION ? 'invalid' : 'more';
  if (buffer[0] !== VERSION || buffer[1] === 0) return 'invalid';
  const length = 2 + buffer[1]!;
  if (buffer.length < length) return 'more';
  return { length, offersLogin: buffer.subarray(2, length).includes(USERNAME_PASSWORD) };
}

/** RFC 1929: version 1, then the username and the password, each up to 255 bytes. */
export function readLogin(buffer: Buffer): Read<{ username: string; password: string }> {
  if (buffer.length < 2) return buffer.length === 1 && buffer[0] !== LOGIN_VERSION ? 'invalid' : 'more';
  if (buffer[0] !== LOGIN_VERSION) return 'invalid';
  const usernameEnd = 2 + buffer[1]!;
  if (buffer.length < usernameEnd + 1) return 'more';
  const length = usernameEnd + 1 + buffer[usernameEnd]!;
  if (buffer.length < length) return 'more';
  return { length, username: buffer.toString('latin1', 2, usernameEnd), password: buffer.toString('latin1', usernameEnd + 1, length) };
}

/**
 * A request: its command and, for the address types there are, where to. `target` is
 * undefined for a destination this node cannot read (a malformed name, port 0); `knownAddressType`
 * false for an address type RFC 1928 does not have.
 */
export function readRequest(buffer: Buffer): Read<{ command: number; knownAddressType: boolean; target: RequestTarget | undefined }> {
  if (buffer.length < 5) return buffer.length >= 1 && buffer[0] !== VERSION ? 'invalid' : 'more';
  if (buffer[0] !== VERSION) return 'invalid';
  const command = buffer[1]!;
  let addressEnd: number;
  let host: string;
  switch (buffer[3]) {
    case 0x01:
      addressEnd = 8;
      if (buffer.length < addressEnd + 2) return 'more';
      host = [...buffer.subarray(4, 8)].join('.');
      break;
    case 0x03:
      addressEnd = 5 + buffer[4]!;
      if (buffer.length < addressEnd + 2) return 'more';
      host = buffer.toString('latin1', 5, addressEnd);
      break;
    case 0x04: {
      addressEnd = 20;
      if (buffer.length < addressEnd + 2) return 'more';
      const groups: string[] = [];
      for (let i = 4; i < 20; i += 2) groups.push(buffer.readUInt16BE(i).toString(16));
      host = `[${groups.join(':')}]`;
      break;
    }
    default:
      // Its length is unknown: nothing after it can be read.
      return { length: buffer.length, command, knownAddressType: false, target: undefined };
  }
  const port = buffer.readUInt16BE(addressEnd);
  return { length: addressEnd + 2, command, knownAddressType: true, target: parseConnectTarget(`${host}:${port}`) };
}

/** The server's choice of method: username/password, or none acceptable (0xff). */
export const CHOOSE_LOGIN = Buffer.from([VERSION, USERNAME_PASSWORD]);
export const NO_ACCEPTABLE_METHOD = Buffer.from([VERSION, 0xff]);
export const LOGIN_ACCEPTED = Buffer.from([LOGIN_VERSION, 0x00]);
export const LOGIN_REFUSED = Buffer.from([LOGIN_VERSION, 0x01]);

/** RFC 1928 reply codes. */
export const REPLY = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

/** A reply; the bound address is 0.0.0.0:0, since clients of CONNECT do not use it. */
export function reply(code: number): Buffer {
  return Buffer.from([VERSION, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}

export const SUCCEEDED = reply(REPLY.succeeded);

/**
 * Refusals that fail the login itself (RFC 1929 status 1): the credentials are wrong.
 * Every other refusal waits for the request and is answered with a reply code.
 */
export const LOGIN_REFUSALS: ReadonlySet<RefusalCode> = new Set(['auth_required', 'key_invalid', 'key_revoked', 'key_expired']);

/** The reply code for each refusal after the login (README "SOCKS5"). */
export const REPLY_FOR: Readonly<Record<RefusalCode, number>> = {
  auth_required: REPLY.notAllowed,
  key_invalid: REPLY.notAllowed,
  key_revoked: REPLY.notAllowed,
  key_expired: REPLY.notAllowed,
  pool_forbidden: REPLY.notAllowed,
  country_forbidden: REPLY.notAllowed,
  client_forbidden: REPLY.notAllowed,
  destination_forbidden: REPLY.notAllowed,
  rate_limited: REPLY.notAllowed,
  quota_exceeded: REPLY.notAllowed,
  concurrency_exceeded: REPLY.notAllowed,
  country_unknown: REPLY.notAllowed,
  targeting_unsupported: REPLY.notAllowed,
  bad_request: REPLY.generalFailure,
  exit_failed: REPLY.hostUnreachable,
  dns_error: REPLY.hostUnreachable,
  no_exit: REPLY.networkUnreachable,
  auth_unavailable: REPLY.generalFailure,
  internal: REPLY.generalFailure,
};
