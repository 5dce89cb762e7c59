import { EventEmitter } from 'node:events';
import { Client, Dispatcher, errors } from 'undici';

/**
 * Keep-alive connections to one origin, as many as there are requests in flight, with the
 * one freed last handed out first. undici's Pool finds a free connection by walking its
 * list from the start on every request (twice when the connection it picks fills up): with
 * hundreds of requests in flight to one origin that walk was 6% of the node's time. Here
 * the free connections are a stack, so a request takes one in constant time, and the warm
 * connections are the ones kept busy.
 *
 * Same contract as undici's Pool for an Agent's `factory`: the connections' connect,
 * disconnect, connectionError and drain events are re-emitted with the pool among the
 * targets, and a connection that failed to connect is dropped, not reused.
 */
export class IdleFirstPool extends Dispatcher {
  readonly #origin: string | URL;
  readonly #options: Client.Options;
  /** Connections that can take a request now, the last freed on top. */
  readonly #free: Client[] = [];
  readonly #clients = new Set<Client>();
  #closed = false;

  constructor(origin: string | URL, options: Client.Options) {
    super();
    this.#origin = origin;
    this.#options = options;
  }

  get destroyed(): boolean {
    return this.#closed;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#closed) {
      // As undici's dispatchers answer a request to a closed one.
      const closed = new errors.ClientClosedError();
      const onError = (handler as { onError?: (error: Error) => void }).onError;
      if (onError === undefined) throw closed;
      onError.call(handler, closed);
      return false;
    }
    const client = this.#free.pop() ?? this.#open();
    // false: the connection is busy until it says 'drain'.
    if (client.dispatch(options, handler)) this.#free.push(client);
    return true;
  }

  #open(): Client {
    const client = new Client(this.#origin, this.#options);
    this.#clients.add(client);
    client
      .on('drain', (origin: URL) => {
        if (!this.#clients.has(client)) return;
        this.#free.push(client);
        this.#announce('drain', origin, [this, client]);
      })
      .on('connect', (origin: URL, targets: readonly Dispatcher[]) => this.#announce('connect', origin, [this, ...targets]))
      .on('disconnect', (origin: URL, targets: readonly Dispatcher[], error: Error) => this.#announce('disconnect', origin, [this, ...targets], error))
      .on('connectionError', (origin: URL, targets: readonly Dispatcher[], error: Error) => {
        this.#forget(client);
        this.#announce('connectionError', origin, [this, ...targets], error);
      });
    return client;
  }

  /** What undici's own pools emit, targets included (an Agent reads them), which its types leave out for 'drain'. */
  #announce(event: 'drain' | 'connect' | 'disconnect' | 'connectionError', ...args: unknown[]): void {
    EventEmitter.prototype.emit.call(this, event, ...args);
  }

  #forget(client: Client): void {
    this.#clients.delete(client);
    const index = this.#free.indexOf(client);
    if (index >= 0) this.#free.splice(index, 1);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#closed = true;
    const closing = Promise.all([...this.#clients].map((client) => client.close())).then(() => undefined);
    if (callback === undefined) return closing;
    void closing.then(callback);
  }

  override destroy(): Promise<void>;
  override destroy(error: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(error: Error | null, callback: () => void): void;
  override destroy(errorOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    this.#closed = true;
    const error = typeof errorOrCallback === 'function' ? null : (errorOrCallback ?? null);
    const done = typeof errorOrCallback === 'function' ? errorOrCallback : callback;
    const destroying = Promise.all([...this.#clients].map((client) => client.destroy(error))).then(() => undefined);
    if (done === undefined) return destroying;
    void destroying.then(done);
  }
}
