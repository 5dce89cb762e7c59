import { createHash } from 'node:crypto';

/**
 * The canonical form of a chained activity entry, and its hash. An export line is exactly
 * these fields plus `hash`, so an auditor recomputes every hash from the export alone
 * (the README shows the few lines it takes; a test runs them).
 */
export interface ChainedEntry {
  /** Position in its chain, from 1 with no gaps. */
  seq: number;
  /** `hash` of the entry before it in the chain; null for the first. */
  prevHash: string | null;
  id: string;
  teamId: string | null;
  actorType: string;
  actorId: string | null;
  action: string;
  targetType: string;
  targetId: string;
  requestId: string | null;
  ip: string | null;
  details: unknown;
  createdAt: string;
}

/** JSON with object keys sorted at every depth: one text for one value, whatever order it was built in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** SHA-256, in hex, of the entry's canonical JSON (which includes the previous hash). */
export function entryHash(entry: ChainedEntry): string {
  return createHash('sha256').update(canonicalJson(entry)).digest('hex');
}

/**
 * Details as they will read back from the database: what JSON cannot carry (undefined,
 * functions, Dates as objects) is gone, so the hash written equals the hash recomputed.
 */
export function storedDetails(details: Record<string, unknown> | undefined): Record<string, unknown> {
  return JSON.parse(JSON.stringify(details ?? {})) as Record<string, unknown>;
}

/** The chain an entry belongs to: its team's, or the platform's for entries with no team. */
export function chainOf(teamId: string | null): string {
  return teamId ?? '';
}
