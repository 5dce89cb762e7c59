import { readControlPlaneConfig } from '../config.js';
import type { Database } from '../db/database.js';
import { createPgDatabase } from '../db/pg-database.js';
import { createPgliteDatabase } from '../db/pglite-database.js';
import { verifyChain } from './chain-store.js';

export const AUDIT_USAGE = `usage: portcullis audit verify [TEAM_ID…]

Walks the activity hash chain of each team named (without any: every team's, and the
platform's), reading the database of DATABASE_URL (or DATA_DIR), and names the first
broken link. Exit status 0 when every chain is intact, 1 when one is broken.`;

/**
 * `portcullis audit verify`: the same walk as `GET /v1/teams/{team}/activity/verify`,
 * straight from the database, for an auditor who holds database access but no token.
 * Returns the exit status.
 */
export async function runAudit(args: readonly string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  if (args[0] !== 'verify' || args.slice(1).some((arg) => arg.startsWith('-'))) {
    out(AUDIT_USAGE);
    return args[0] === 'help' || args[0] === '--help' ? 0 : 2;
  }
  const { database } = readControlPlaneConfig(env, { dataDir: './data', requireNodeToken: false });
  const db: Database =
    'dataDir' in database
      ? await createPgliteDatabase({ dataDir: database.dataDir })
      : createPgDatabase({ url: database.url, applicationName: 'portcullis-audit', maxConnections: 1, statementTimeoutMs: 60_000, connectionTimeoutMs: 10_000 });
  try {
    const { rows: tables } = await db.query<{ present: boolean }>(`SELECT to_regclass('activity_chains') IS NOT NULL AS present`);
    if (!tables[0]!.present) {
      out('portcullis audit verify: this database has no activity chain (a control plane of this version has never started on it)');
      return 1;
    }
    const named = args.slice(1);
    const chains =
      named.length > 0 ? named : (await db.query<{ chain: string }>('SELECT chain FROM activity_chains ORDER BY chain')).rows.map((row) => row.chain);
    let broken = 0;
    for (const chain of chains) {
      const label = chain === '' ? 'platform' : chain;
      const verdict = await verifyChain(db, chain === '' ? null : chain);
      if (verdict.firstBroken === null) {
        out(`${label}: intact, ${verdict.entries} entries${verdict.head?.hash ? `, head ${verdict.head.seq} ${verdict.head.hash}` : ''}`);
      } else {
        broken++;
        const { seq, id, problem, message } = verdict.firstBroken;
        out(`${label}: BROKEN ${problem}${seq === null ? '' : ` at entry ${seq}`}${id === null ? '' : ` (${id})`}: ${message}`);
      }
    }
    return broken === 0 ? 0 : 1;
  } finally {
    await db.close();
  }
}
