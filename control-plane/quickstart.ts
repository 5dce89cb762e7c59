import { SYSTEM_AUDIT, recordActivity } from './activity/log.js';
import type { Database } from './db/database.js';
import { createKey } from './keys/store.js';
import { exitId } from './pools/store.js';
import { generateId } from '../lib/secret-format.js';

export interface Quickstart {
  teamId: string;
  key: string;
}

/**
 * For `portcullis start` on an empty database (no team yet): a `default` pool egressing
 * directly from the node. Made before the node starts, so it loads the pool at once.
 */
export async function createQuickstartPool(db: Database, directCountry: string): Promise<void> {
  await db.transaction(async (tx) => {
    const teams = await tx.query('SELECT 1 FROM teams LIMIT 1');
    if (teams.rowCount > 0) return;
    const exits = [{ id: exitId('default', directCountry, 'direct'), country: directCountry, url: 'direct' }];
    const pool = await tx.query(`INSERT INTO pools (name, exits) VALUES ('default', $1) ON CONFLICT DO NOTHING`, [JSON.stringify(exits)]);
    if (pool.rowCount > 0) await recordActivity(tx, SYSTEM_AUDIT, { teamId: null, action: 'pool.created', targetType: 'pool', targetId: 'default', details: { exits: 1 } });
  });
}

/**
 * Then, once every port is bound, a `default` team and a `quickstart` key, so the first
 * run ends with a working curl line. Returns undefined when any team already exists.
 */
export async function createQuickstart(db: Database): Promise<Quickstart | undefined> {
  return db.transaction(async (tx) => {
    const teams = await tx.query('SELECT 1 FROM teams LIMIT 1');
    if (teams.rowCount > 0) return undefined;
    const teamId = generateId('team');
    await tx.query(`INSERT INTO teams (id, name) VALUES ($1, 'default')`, [teamId]);
    await recordActivity(tx, SYSTEM_AUDIT, { teamId, action: 'team.created', targetType: 'team', targetId: teamId, details: { name: 'default' } });
    const created = await createKey(tx, SYSTEM_AUDIT, teamId, 'quickstart', { pools: [], countries: [], expiresAt: null, rateLimit: null, concurrency: null, monthlyQuotaBytes: null, allowedClientCidrs: [] });
    return { teamId, key: created.secret };
  });
}
