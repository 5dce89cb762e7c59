import { randomBytes } from 'node:crypto';
import { SYSTEM_AUDIT } from './activity/log.js';
import type { Database } from './db/database.js';
import { SCOPES } from './tokens/scopes.js';
import { createToken } from './tokens/store.js';

/** Arbitrary constant: serialises first-start bootstrap across instances. */
const BOOTSTRAP_LOCK = 7_301_003;

/**
 * On the very first start (no admin token stored and none configured), creates a platform
 * admin token and returns its secret so it can be shown once. Returns undefined otherwise.
 */
export async function createFirstAdminToken(db: Database): Promise<string | undefined> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [BOOTSTRAP_LOCK]);
    const existing = await tx.query('SELECT 1 FROM tokens WHERE team_id IS NULL LIMIT 1');
    if (existing.rowCount > 0) return undefined;
    const created = await createToken(tx, SYSTEM_AUDIT, { teamId: null, name: 'bootstrap admin', scopes: SCOPES, expiresAt: null });
    return created.secret;
  });
}

/** The secret that signs list cursors, shared by every instance through the database. */
export async function loadCursorSecret(db: Database): Promise<string> {
  await db.query(`INSERT INTO settings (name, value) VALUES ('cursor_secret', $1) ON CONFLICT (name) DO NOTHING`, [randomBytes(32).toString('base64url')]);
  const { rows } = await db.query<{ value: string }>(`SELECT value FROM settings WHERE name = 'cursor_secret'`);
  return rows[0]!.value;
}
