import type { FastifyRequest } from 'fastify';
import { fail } from '../errors.js';
import { principalOf, requireTeamAccess } from './auth.js';
import type { Queryable } from '../db/database.js';

/**
 * Checks that the caller may act on `teamId` and that the team exists. Both failures
 * answer the same 404, so a team token learns nothing about other teams.
 */
export async function assertTeamAccess(db: Queryable, request: FastifyRequest, teamId: string): Promise<void> {
  requireTeamAccess(request, teamId);
  if (principalOf(request).kind === 'team') return;
  const { rowCount } = await db.query('SELECT 1 FROM teams WHERE id = $1', [teamId]);
  if (rowCount === 0) throw fail('team_not_found');
}
