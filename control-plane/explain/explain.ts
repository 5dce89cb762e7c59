import { readCredentials, type ClientRequestTarget, type RequestHeaders } from '../../access/credentials.js';
import { decideGrant, exitRequestFor, isOverQuota, noExitRefusal, quotaRefusal } from '../../access/decide.js';
import { createGrantShapes, type KeyGrant } from '../../access/grant.js';
import { REFUSALS, Refusal } from '../../access/refusal.js';
import { createExitSelector } from '../../geo/exit-selection.js';
import { sha256Hex } from '../../lib/hash.js';
import { createDestinationPolicy } from '../../lib/http/destination-policy.js';
import { parseAbsoluteHttpTarget, parseConnectTarget, type RequestTarget } from '../../lib/http/request-target.js';
import { isWellFormedApiKey } from '../../lib/secret-format.js';
import type { Queryable } from '../db/database.js';
import { fail } from '../errors.js';
import { getKey } from '../keys/store.js';
import type { KeyView } from '../keys/rows.js';
import { findKeysByHashes } from '../node-api/verify.js';
import { listAllPools } from '../pools/store.js';

export interface ExplainRequest {
  /** The secret, as a client would send it. */
  key?: string;
  /** Or the key's id, for someone who does not hold the secret. */
  keyId?: string;
  /** The proxy username (targeting); with neither `key` nor `keyId`, `headers` carry the credentials. */
  username?: string;
  headers?: Record<string, string>;
  /** `http://host[:port]/path` for a plain request, `host:port` or `https://host[:port]` for a CONNECT. */
  destination?: string;
  /** The client's address, for the key's allowlist; without it the allowlist is not judged. */
  clientAddress?: string;
}

export interface ExplainOptions {
  /** What nodes are assumed to allow (ALLOW_PRIVATE_DESTINATIONS). */
  allowPrivateDestinations: boolean;
}

/** Stands in for the secret when the key is named by id: never hashed or looked up. */
const ID_PLACEHOLDER = 'key-named-by-id';

type Stage = 'credentials' | 'key' | 'destination' | 'exits' | 'limits';

/**
 * What a node would do with a request, without sending it: the node's own parsing and
 * decisions (access/), in the node's order, fed with what the control plane knows
 * (the verify answer a node would get, the pools). Stops at the first refusal, as a node
 * does, and says what it saw up to there. Rate limits and concurrency depend on live
 * traffic: they are shown, not judged.
 */
export async function explainRequest(db: Queryable, teamId: string, body: ExplainRequest, options: ExplainOptions) {
  const now = Date.now();
  const destination = body.destination === undefined ? undefined : parseDestination(body.destination);
  const isConnect = destination?.connect ?? false;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(body.headers ?? {})) headers[name.toLowerCase()] = value;
  const byId = body.keyId !== undefined;
  const secret = body.key ?? (byId ? ID_PLACEHOLDER : undefined);
  if (secret !== undefined) {
    headers['proxy-authorization'] =
      body.username === undefined ? `Bearer ${secret}` : `Basic ${Buffer.from(`${body.username}:${secret}`, 'latin1').toString('base64')}`;
  }

  const answer: {
    credential: ReturnType<typeof describeTarget> | null;
    key: ReturnType<typeof describeKey> | null;
    limits: ReturnType<typeof describeLimits> | null;
    destination: { host: string; port: number; connect: boolean; allowed: boolean } | null;
    exits: { pools: string[] | null; matching: number; countries: string[] } | null;
  } = { credential: null, key: null, limits: null, destination: null, exits: null };
  let stage: Stage = 'credentials';
  try {
    const target = readCredentials(headers as RequestHeaders, isConnect);
    answer.credential = describeTarget(target, byId);

    stage = 'key';
    let hash: string;
    if (byId) {
      const { rows } = await db.query<{ hash: string }>(`SELECT encode(key_hash, 'hex') AS hash FROM api_keys WHERE id = $1 AND team_id = $2`, [body.keyId, teamId]);
      if (rows[0] === undefined) throw fail('key_not_found');
      hash = rows[0].hash;
    } else {
      // A node refuses a key whose checksum fails before looking it up.
      if (!isWellFormedApiKey(target.key)) throw new Refusal('key_invalid');
      hash = sha256Hex(target.key);
    }
    // The node's own lookup. Another team's key is unknown from here: it tells nothing.
    const verified = (await findKeysByHashes(db, [hash])).keys.get(hash);
    const grant: KeyGrant | null = verified === undefined || verified.teamId !== teamId ? null : createGrantShapes().toGrant(verified, now);
    if (grant !== null) {
      const view = await getKey(db, teamId, grant.keyId);
      answer.key = describeKey(view, grant);
      answer.limits = describeLimits(view, grant);
    }
    const selector = createExitSelector({ now: () => now });
    selector.setPools((await listAllPools(db)).map((pool) => ({ name: pool.name, exits: pool.exits })));
    // Lockdowns come with the verify answer (`lockedDown`), as on a node that just started.
    const decided = decideGrant(grant, target, body.clientAddress, { now: () => now, hasPool: (name) => selector.hasPool(name), lockdownCovers: () => false });

    if (destination !== undefined) {
      stage = 'destination';
      const allowed = !createDestinationPolicy({ allowPrivate: options.allowPrivateDestinations }).forbids(destination.target.hostname, destination.target.port);
      answer.destination = { host: destination.target.hostname, port: destination.target.port, connect: destination.connect, allowed };
      if (!allowed) throw new Refusal('destination_forbidden');
    }

    stage = 'exits';
    // Which exits match does not depend on a session's length.
    const request = exitRequestFor(decided, target, 0, new Set());
    const matching = selector.matchingExits(request);
    answer.exits = {
      pools: request.pool !== undefined ? [request.pool] : request.pools === null ? null : [...request.pools].sort(),
      matching: matching.length,
      countries: [...new Set(matching.map((exit) => exit.country))].sort(),
    };
    if (matching.length === 0) throw noExitRefusal(request, selector.hasExits());

    stage = 'limits';
    if (isOverQuota(decided, now)) throw quotaRefusal(now);
    return { outcome: 'allowed' as const, refusal: null, ...answer };
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    return {
      outcome: 'refused' as const,
      refusal: { stage, status: error.status, code: error.code, hint: error.hint ?? REFUSALS[error.code].hint },
      ...answer,
    };
  }
}

function parseDestination(text: string): { target: RequestTarget; connect: boolean } {
  if (text.startsWith('http://')) {
    const target = parseAbsoluteHttpTarget(text);
    if (target !== undefined) return { target, connect: false };
  } else if (text.startsWith('https://')) {
    const authority = text.slice('https://'.length).split(/[/?#]/, 1)[0]!;
    const target = parseConnectTarget(authority.includes(':') && !authority.endsWith(']') ? authority : `${authority}:443`);
    if (target !== undefined) return { target, connect: true };
  } else {
    const target = parseConnectTarget(text);
    if (target !== undefined) return { target, connect: true };
  }
  throw fail('invalid_field', 'destination', 'body', 'must be http://host[:port]/path, https://host[:port] or host:port');
}

function describeTarget(target: ClientRequestTarget, byId: boolean) {
  return {
    // Only the public prefix of a secret, never the secret itself.
    keyPrefix: byId ? null : target.key.slice(0, 12),
    source: target.source,
    country: target.country ?? null,
    city: target.city ?? null,
    state: target.state ?? null,
    asn: target.asn ?? null,
    pool: target.pool ?? null,
    session: target.sessionId ?? null,
    sessionMinutes: target.sessionMinutes ?? null,
  };
}

function describeKey(view: KeyView, grant: KeyGrant) {
  return {
    id: view.id,
    name: view.name,
    status: view.status,
    lockedDown: grant.lockedDown,
    expiresAt: view.expiresAt,
    allowedClientCidrs: view.allowedClientCidrs,
    pools: view.pools,
    countries: view.countries,
  };
}

function describeLimits(view: KeyView, grant: KeyGrant) {
  return {
    rateLimit: view.rateLimit,
    concurrency: view.concurrency,
    monthlyQuotaBytes: view.monthlyQuotaBytes,
    monthlyUsedBytes: view.monthlyUsedBytes,
    monthlyRemainingBytes: view.monthlyRemainingBytes,
    overQuota: grant.overQuota,
  };
}
