import type { FastifyInstance } from 'fastify';
import { sha256Hex } from '../../lib/hash.js';
import { apiKeyDisplayPrefix, generateApiKey, generateId } from '../../lib/secret-format.js';
import { auditContextOf, recordActivities, type AuditContext } from '../activity/log.js';
import type { Database, Queryable } from '../db/database.js';
import { ApiError, fail, failedAt } from '../errors.js';
import { teamParams } from '../http/validation.js';
import { existingPools, parseGrantsAgainst, withDefaults } from './grants.js';
import { KEY_COLUMNS, renderKey, type KeyRow } from './rows.js';
import { createKeyBodySchema, keyWithSecretSchema, type CreateKeyBody } from './schemas.js';
import type { CreatedKey, KeyGrants } from './store.js';

/** The most keys one bulk call creates. */
export const MAX_BULK_KEYS = 1_000;
/** A bulk call's body may be this large even when BODY_LIMIT_BYTES is smaller. */
export const BULK_BODY_LIMIT_BYTES = 1_048_576;

export interface BulkKeyOptions {
  db: Database;
  bodyLimitBytes: number;
}

interface NewKey {
  name: string;
  grants: KeyGrants;
}

/**
 * Creates every key or none, in one statement, with one activity entry per key. A name
 * already taken (by an active key, or earlier in the same call) is reported with the
 * index of the first item that could not be created.
 */
export async function createKeys(tx: Queryable, audit: AuditContext, teamId: string, keys: readonly NewKey[]): Promise<CreatedKey[]> {
  const secrets = keys.map(() => generateApiKey());
  const ids = keys.map(() => generateId('key'));
  const rows = keys.map((key, index) => ({
    id: ids[index],
    name: key.name,
    prefix: apiKeyDisplayPrefix(secrets[index]!),
    hash: sha256Hex(secrets[index]!),
    pools: key.grants.pools,
    countries: key.grants.countries,
    expires_at: key.grants.expiresAt?.toISOString() ?? null,
    requests_per_second: key.grants.rateLimit?.requestsPerSecond ?? null,
    burst: key.grants.rateLimit?.burst ?? null,
    per_node: key.grants.concurrency?.perNode ?? null,
    per_region: key.grants.concurrency?.perRegion ?? null,
    quota: key.grants.monthlyQuotaBytes,
    client_cidrs: key.grants.allowedClientCidrs,
  }));
  const { rows: inserted } = await tx.query<KeyRow>(
    `INSERT INTO api_keys (id, team_id, name, prefix, key_hash, pools, countries, expires_at, rate_limit_per_second, rate_limit_burst,
       max_concurrent_per_node, max_concurrent_per_region, monthly_quota_bytes, allowed_client_cidrs)
     SELECT id, $1, name, prefix, decode(hash, 'hex'), pools, countries, expires_at, requests_per_second, burst, per_node, per_region, quota, client_cidrs
     FROM jsonb_to_recordset($2::jsonb) AS item(id text, name text, prefix text, hash text, pools text[], countries text[], expires_at timestamptz,
       requests_per_second integer, burst integer, per_node integer, per_region integer, quota bigint, client_cidrs text[])
     ON CONFLICT (team_id, lower(name)) WHERE status = 'active' DO NOTHING
     RETURNING ${KEY_COLUMNS}`,
    [teamId, JSON.stringify(rows)],
  );
  const byId = new Map(inserted.map((row) => [row.id, row]));
  const missing = ids.findIndex((id) => !byId.has(id!));
  if (missing >= 0) throw failedAt(`keys.${missing}`, fail('key_name_taken', keys[missing]!.name));
  await recordActivities(
    tx,
    audit,
    ids.map((id) => {
      const row = byId.get(id!)!;
      return { teamId, action: 'key.created', targetType: 'key', targetId: row.id, details: { name: row.name, prefix: row.prefix, pools: row.pools, countries: row.countries } };
    }),
  );
  return ids.map((id, index) => ({ view: renderKey(byId.get(id!)!), secret: secrets[index]! }));
}

/** Grants checked item by item; the first bad one is named by its index. */
async function parseBulk(db: Queryable, items: readonly CreateKeyBody[]): Promise<NewKey[]> {
  const known = await existingPools(db, items.flatMap((item) => item.pools ?? []));
  return items.map((item, index) => {
    try {
      return { name: item.name, grants: withDefaults(parseGrantsAgainst(known, item)) };
    } catch (error) {
      if (error instanceof ApiError) throw failedAt(`keys.${index}`, error);
      throw error;
    }
  });
}

export function registerBulkKeyRoute(app: FastifyInstance, { db, bodyLimitBytes }: BulkKeyOptions): void {
  app.post<{ Params: { team: string }; Body: { keys: CreateKeyBody[] } }>(
    '/v1/teams/:team/keys/bulk',
    {
      bodyLimit: Math.max(bodyLimitBytes, BULK_BODY_LIMIT_BYTES),
      config: { scope: 'keys:write', errors: ['pool_unknown', 'country_unknown', 'expires_at_in_past', 'client_cidr_invalid', 'key_name_taken'] },
      schema: {
        tags: ['keys'],
        summary: 'Create many keys at once',
        description: `Up to ${MAX_BULK_KEYS.toLocaleString('en-US')} keys, each like a single create, all or none: the first item that cannot be created is named by its index (\`keys.3\`) in the error, and nothing is written. One activity entry per key. The secrets are in this answer only, in the order given.`,
        params: teamParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['keys'],
          properties: { keys: { type: 'array', minItems: 1, maxItems: MAX_BULK_KEYS, items: createKeyBodySchema } },
        },
        response: {
          201: { type: 'object', required: ['data'], properties: { data: { type: 'array', items: keyWithSecretSchema } } },
        },
      },
    },
    async (request, reply) => {
      const { team } = request.params;
      const keys = await parseBulk(db, request.body.keys);
      const created = await db.transaction((tx) => createKeys(tx, auditContextOf(request), team, keys));
      return reply.status(201).send({ data: created.map(({ view, secret }) => ({ ...view, key: secret })) });
    },
  );
}
