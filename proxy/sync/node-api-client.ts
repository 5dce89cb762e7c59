import type { FeedEvent } from '../../contract/feed.js';

/**
 * The proxy node's side of the node API's wire contract (`/internal/v1`). This is the only
 * way a node learns about keys and pools; it never imports control plane modules.
 */

export interface VerifiedKeyWire {
  id: string;
  teamId: string;
  status: 'active' | 'revoked';
  pools: string[];
  countries: string[];
  expiresAt: string | null;
  rateLimit: { requestsPerSecond: number; burst: number } | null;
  concurrency: { perNode: number | null; perRegion: number | null } | null;
  overQuota: boolean;
}

export interface VerifyResult {
  key: VerifiedKeyWire | null;
  /** The latest outbox seq in the snapshot the answer was read from. */
  seq: number;
}

export interface BatchVerifyResult {
  /** By key hash; hashes of unknown keys are absent. */
  keys: Map<string, VerifiedKeyWire>;
  /** The latest outbox seq in the snapshot the answer was read from. */
  seq: number;
}

/** The node API refuses verify calls with more hashes than this. */
export const MAX_VERIFY_BATCH = 100;

export type RevocationEventWire = Omit<FeedEvent, 'type'>;

export interface PoolWire {
  name: string;
  exits: { id: string; country: string; url: string }[];
}

export interface NodeApiClient {
  /** Looks up to MAX_VERIFY_BATCH key hashes (hex) in one call. */
  verifyKeys(hashesHex: readonly string[]): Promise<BatchVerifyResult>;
  revocationsAfter(seq: number, limit?: number): Promise<{ events: RevocationEventWire[]; latestSeq: number }>;
  /** Pools, or `undefined` when unchanged since `etag`. */
  pools(etag: string | undefined): Promise<{ pools: PoolWire[]; etag: string | undefined } | undefined>;
  post(path: string, body: unknown): Promise<unknown>;
}

export class NodeApiError extends Error {
  readonly code = 'node_api_unavailable';
}

export interface NodeApiClientOptions {
  baseUrl: string;
  nodeToken: string;
  timeoutMs: number;
}

export function createNodeApiClient({ baseUrl, nodeToken, timeoutMs }: NodeApiClientOptions): NodeApiClient {
  const authorization = `Bearer ${nodeToken}`;

  async function call(path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(new URL(path, baseUrl), {
        method: init.method ?? 'GET',
        headers: { authorization, ...(init.body !== undefined && { 'content-type': 'application/json' }), ...init.headers },
        ...(init.body !== undefined && { body: init.body }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new NodeApiError(`node API unreachable: ${(error as Error).message}`);
    }
    if (response.status >= 500 || response.status === 401) {
      await response.body?.cancel();
      throw new NodeApiError(`node API answered ${response.status} for ${path}`);
    }
    return response;
  }

  return {
    async verifyKeys(hashesHex) {
      const response = await call('/internal/v1/keys/verify', { method: 'POST', body: JSON.stringify({ hashes: hashesHex }) });
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new NodeApiError(`unexpected verify answer ${response.status}`);
      }
      const body = (await response.json()) as { keys: Record<string, VerifiedKeyWire>; seq: number };
      return { keys: new Map(Object.entries(body.keys)), seq: body.seq };
    },
    async revocationsAfter(seq, limit = 1000) {
      const response = await call(`/internal/v1/revocations?after=${seq}&limit=${limit}`);
      if (response.status !== 200) throw new NodeApiError(`unexpected revocations answer ${response.status}`);
      return (await response.json()) as { events: RevocationEventWire[]; latestSeq: number };
    },
    async pools(etag) {
      const response = await call('/internal/v1/pools', etag === undefined ? {} : { headers: { 'if-none-match': etag } });
      if (response.status === 304) {
        await response.body?.cancel();
        return undefined;
      }
      if (response.status !== 200) throw new NodeApiError(`unexpected pools answer ${response.status}`);
      const body = (await response.json()) as { pools: PoolWire[] };
      return { pools: body.pools, etag: response.headers.get('etag') ?? undefined };
    },
    async post(path, body) {
      const response = await call(path, { method: 'POST', body: JSON.stringify(body) });
      if (response.status >= 400) throw new NodeApiError(`node API answered ${response.status} for ${path}`);
      return response.status === 204 ? undefined : response.json();
    },
  };
}
