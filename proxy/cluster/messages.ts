import type { NodeReport } from '../../contract/node-api.js';

/**
 * What a node's primary and its workers say to each other over the cluster's IPC channel.
 * Both ends are this same program, so messages are trusted as typed; each carries a
 * `portcullis:` type so that prom-client's own messages on the channel pass by.
 */
export type WorkerMessage =
  /** The worker listens for messages now: the primary answers with `start`. */
  | { type: 'portcullis:hello' }
  /** The worker's node listens (`url`), and whether it is ready; sent again on every change. */
  | { type: 'portcullis:state'; url: string; ready: boolean }
  /** The worker's report, as it would have sent it to the control plane; answered with `answer`. */
  | { type: 'portcullis:report'; id: number; report: NodeReport }
  /** Asks for one of the node's per-node concurrency slots of a key; answered with `slot-answer`. */
  | { type: 'portcullis:slot'; id: number; keyId: string; perNode: number }
  /** Gives back a slot the primary granted; no answer. */
  | { type: 'portcullis:slot-release'; keyId: string };

export type PrimaryMessage =
  /**
   * The worker's number, which stays with its place when a worker is replaced, and the
   * node's id (NODE_ID, or the one the primary drew for the node when it is unset).
   */
  | { type: 'portcullis:start'; index: number; nodeId: string }
  /** Live processes in the region, for the worker's share of regional limits. */
  | { type: 'portcullis:answer'; id: number; regionNodes: number }
  /** Whether the slot asked for under `id` was granted. */
  | { type: 'portcullis:slot-answer'; id: number; granted: boolean }
  /** SIGTERM reached the node: drain and exit. */
  | { type: 'portcullis:drain' };

export function isOurs<T extends { type: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' && (message as { type: string }).type.startsWith('portcullis:');
}
