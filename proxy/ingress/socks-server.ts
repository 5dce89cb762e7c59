import net, { type AddressInfo, type Socket } from 'node:net';
import { drain } from '../../lib/drain.js';
import { endSocket } from '../../lib/http/end-socket.js';
import type { RequestTarget } from '../../lib/http/request-target.js';
import type { Logger } from '../../lib/logger.js';
import type { Authorization } from '../auth/authorize.js';
import { readLogin as readLoginCredentials } from '../auth/credentials.js';
import { Refusal } from '../refusal.js';
import type { Admitted, StepwiseAdmit } from './admission.js';
import type { ConnectRequests, TunnelDialect } from './connect-requests.js';
import {
  CHOOSE_LOGIN,
  CONNECT_COMMAND,
  LOGIN_ACCEPTED,
  LOGIN_REFUSALS,
  LOGIN_REFUSED,
  NO_ACCEPTABLE_METHOD,
  readGreeting,
  readLogin,
  readRequest,
  reply,
  REPLY,
  REPLY_FOR,
  SUCCEEDED,
  type Read,
} from './socks-messages.js';

export interface SocksServerOptions {
  host: string;
  port: number;
  admit: StepwiseAdmit;
  /** Where admitted clients get their tunnels: the same registry, meter and counts as CONNECT. */
  connectRequests: ConnectRequests;
  /** Counts a SOCKS connection refused before it had a tunnel, by refusal code. */
  countTunnel(outcome: string): void;
  /** How long a client has to finish its handshake. */
  handshakeTimeoutMs: number;
  logger: Logger;
}

export interface SocksServer {
  listen(): Promise<number>;
  /** Connections open now, in a handshake or tunnelling. */
  connections(): number;
  /** Stops accepting and ends handshakes at once; lets tunnels run up to `deadlineMs`, then closes the rest. */
  close(deadlineMs: number): Promise<void>;
}

/** The largest handshake a client may send before its request: greeting 257, login 513, request 262. */
const MAX_HANDSHAKE_BYTES = 1_100;
const INTERNAL = new Refusal('internal');

const dialect: TunnelDialect = {
  established: () => SUCCEEDED,
  refuse: (socket, refusal) => endSocket(socket, reply(REPLY_FOR[refusal.code])),
};

type Stage = 'greeting' | 'login' | 'request' | 'waiting';

/**
 * A SOCKS5 listener: username/password only (the key as the password, targeting in the
 * username, as for HTTP), CONNECT only. A connection goes greeting → login (the key is
 * authorised here: a bad key fails the login) → request (destination policy, exit choice and
 * limits, then the tunnel). Reads are bounded and the whole handshake has a deadline.
 */
export function createSocksServer({ host, port, admit, connectRequests, countTunnel, handshakeTimeoutMs, logger }: SocksServerOptions): SocksServer {
  const sockets = new Set<Socket>();
  const handshaking = new Set<Socket>();

  function serve(socket: Socket): void {
    let stage: Stage = 'greeting';
    let received: Buffer = Buffer.alloc(0);
    let authorization: Authorization | undefined;
    // A refusal found at login that is not about the credentials: answered at the request.
    let deferred: Refusal | undefined;
    handshaking.add(socket);
    const timer = setTimeout(() => socket.destroy(), handshakeTimeoutMs);
    timer.unref();

    function refuse(refusal: Refusal): void {
      finishHandshake();
      countTunnel(refusal.code);
      dialect.refuse(socket, refusal);
    }

    function finishHandshake(): void {
      clearTimeout(timer);
      handshaking.delete(socket);
      socket.off('data', onData);
    }

    function take<T>(read: Read<T>): (T & { length: number }) | undefined {
      if (read === 'more') return undefined;
      if (read === 'invalid') {
        // Not SOCKS5, or broken: nothing sensible to answer.
        finishHandshake();
        countTunnel('bad_request');
        socket.destroy();
        return undefined;
      }
      received = received.subarray(read.length);
      return read;
    }

    function loggedIn(decided: Authorization): void {
      authorization = decided;
      proceed(LOGIN_ACCEPTED);
    }

    function loginRefused(refusal: Refusal): void {
      if (LOGIN_REFUSALS.has(refusal.code)) {
        finishHandshake();
        countTunnel(refusal.code);
        return endSocket(socket, LOGIN_REFUSED);
      }
      deferred = refusal;
      proceed(LOGIN_ACCEPTED);
    }

    function proceed(answer: Buffer): void {
      if (socket.destroyed) return finishHandshake();
      socket.write(answer);
      stage = 'request';
      socket.resume();
      advance();
    }

    function tunnelTo(target: RequestTarget, admitted: Admitted): void {
      const head = received;
      connectRequests.tunnel(socket, head, target, admitted, dialect).catch((error: unknown) => {
        logger.error({ err: error }, 'unexpected error while opening a SOCKS tunnel');
        countTunnel(INTERNAL.code);
        socket.destroy();
      });
    }

    function request(command: number, knownAddressType: boolean, target: RequestTarget | undefined): void {
      finishHandshake();
      socket.pause();
      if (!knownAddressType) return endSocket(socket, reply(REPLY.addressTypeNotSupported));
      if (command !== CONNECT_COMMAND) return endSocket(socket, reply(REPLY.commandNotSupported));
      if (deferred !== undefined) return refuse(deferred);
      if (target === undefined) return refuse(new Refusal('bad_request'));
      let admitted: Admitted | Promise<Admitted>;
      try {
        admitted = admit.admitTo(authorization!, target);
      } catch (refusal) {
        return refuse(refusal as Refusal);
      }
      if (!(admitted instanceof Promise)) return tunnelTo(target, admitted);
      admitted.then(
        (resolved) => tunnelTo(target, resolved),
        (refusal: unknown) => refuse(refusal as Refusal),
      );
    }

    function advance(): void {
      while (stage !== 'waiting') {
        if (stage === 'greeting') {
          const greeting = take(readGreeting(received));
          if (greeting === undefined) return;
          if (!greeting.offersLogin) {
            finishHandshake();
            countTunnel('auth_required');
            return endSocket(socket, NO_ACCEPTABLE_METHOD);
          }
          socket.write(CHOOSE_LOGIN);
          stage = 'login';
        } else if (stage === 'login') {
          const login = take(readLogin(received));
          if (login === undefined) return;
          stage = 'waiting';
          // Whatever the client sent ahead waits until the key is decided.
          socket.pause();
          let decided: Authorization | Promise<Authorization>;
          try {
            decided = admit.authorize(readLoginCredentials(login.username, login.password), socket);
          } catch (refusal) {
            return loginRefused(refusal as Refusal);
          }
          if (!(decided instanceof Promise)) return loggedIn(decided);
          decided.then(loggedIn, (refusal: unknown) => loginRefused(refusal as Refusal));
          return;
        } else {
          const parsed = take(readRequest(received));
          if (parsed === undefined) return;
          stage = 'waiting';
          return request(parsed.command, parsed.knownAddressType, parsed.target);
        }
      }
    }

    function onData(chunk: Buffer): void {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (received.length > MAX_HANDSHAKE_BYTES) {
        finishHandshake();
        countTunnel('bad_request');
        return void socket.destroy();
      }
      if (stage === 'waiting') return;
      try {
        advance();
      } catch (error) {
        logger.error({ err: error }, 'unexpected error in a SOCKS handshake');
        finishHandshake();
        countTunnel(INTERNAL.code);
        socket.destroy();
      }
    }

    socket.on('data', onData);
    socket.once('close', finishHandshake);
  }

  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A client socket's errors are the client's business; the handshake hears of them as 'close'.
    socket.on('error', () => socket.destroy());
    serve(socket);
  });

  return {
    listen: () =>
      new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, backlog: 4096 }, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    connections: () => sockets.size,
    async close(deadlineMs) {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of handshaking) socket.destroy();
      await drain(() => sockets.size === 0, deadlineMs, () => {});
      for (const socket of sockets) socket.destroy();
      await closing;
    },
  };
}
