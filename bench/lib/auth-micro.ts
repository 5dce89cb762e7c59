import type { Socket } from 'node:net';
import { sha256Hex } from '../../lib/hash.js';
import { generateApiKey } from '../../lib/secret-format.js';
import { createAuthorizer } from '../../proxy/auth/authorize.js';
import { createKeyCache } from '../../proxy/auth/key-cache.js';

export interface AuthMicroResult {
  name: string;
  nsPerDecision: number;
}

/**
 * The cost of one authorisation decision on a cache hit, in-process: credentials parsed,
 * key hashed (or remembered for the connection), grant looked up, decision made.
 */
export async function measureAuthDecision(iterations = 500_000): Promise<AuthMicroResult[]> {
  const key = generateApiKey();
  const allowlistedKey = generateApiKey();
  const noop = () => {};
  const cache = createKeyCache({
    verify: async (hash) => ({
      key: {
        id: 'key_1',
        teamId: 'team_1',
        status: 'active',
        pools: [],
        countries: ['DE', 'US'],
        expiresAt: null,
        rateLimit: null,
        concurrency: null,
        overQuota: false,
        allowedClientCidrs: hash === sha256Hex(allowlistedKey) ? ['198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'] : [],
      },
      seq: 0,
      epoch: 'e1',
    }),
    now: Date.now,
    maxEntries: 1000,
    maxNegativeEntries: 1000,
    negativeTtlMs: 10_000,
    unknownPerSecond: 100,
    unknownPerSecondPerClient: 100,
    maxVerifyInFlight: 10,
    trustWindowMs: () => 300_000,
    failOpen: false,
    epoch: () => 'e1',
    resync: async () => {},
    events: { hit: noop, miss: noop, coalesced: noop, negativeHit: noop, verified: noop, failedOpen: noop },
  });
  await cache.lookup(sha256Hex(key), '127.0.0.1');
  await cache.lookup(sha256Hex(allowlistedKey), '127.0.0.1');
  const authorizer = createAuthorizer({ cache, now: Date.now, hasPool: () => true, clientAddressOf: (socket) => socket.remoteAddress ?? '' });
  const headersOf = (secret: string) => ({ 'proxy-authorization': `Basic ${Buffer.from(`customer-country-de:${secret}`).toString('base64')}` });
  const results: AuthMicroResult[] = [];
  for (const [name, socketFor, headers] of [
    ['keep-alive connection (hash remembered)', () => sharedSocket, headersOf(key)],
    ['new connection each time (hash computed)', () => ({ remoteAddress: '203.0.113.9' }) as Socket, headersOf(key)],
    ['keep-alive, key with a 3-range client allowlist', () => sharedSocket, headersOf(allowlistedKey)],
  ] as const) {
    for (let i = 0; i < 10_000; i++) authorizer.authorize(headers, socketFor(), false);
    const started = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) authorizer.authorize(headers, socketFor(), false);
    results.push({ name, nsPerDecision: Number(process.hrtime.bigint() - started) / iterations });
  }
  return results;
}

const sharedSocket = { remoteAddress: '203.0.113.9' } as Socket;
