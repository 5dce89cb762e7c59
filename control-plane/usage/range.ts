import { fail } from '../errors.js';
import { timestampSchema } from '../http/validation.js';

/** The time range of a usage query: its bounds, its buckets, and how long it may be. */

/** The longest range a series may cover, so an answer stays small without pages. */
export const MAX_BUCKETS = { hour: 24 * 31, day: 366 } as const;
export const BUCKET_MS = { hour: 3_600_000, day: 86_400_000 } as const;

export interface UsageQuery {
  from?: string;
  to?: string;
  granularity: 'hour' | 'day';
}

export const usageQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { ...timestampSchema, description: 'default: 24 buckets before `to`' },
    to: { ...timestampSchema, description: 'default: now' },
    granularity: { type: 'string', enum: ['hour', 'day'], default: 'hour', description: `at most ${MAX_BUCKETS.hour} hours or ${MAX_BUCKETS.day} days per call` },
  },
} as const;

export const RANGE_ERRORS = ['range_invalid', 'range_too_long'] as const;

export function usageRange({ from, to, granularity }: UsageQuery): { from: Date; to: Date } {
  const end = to === undefined ? new Date() : new Date(to);
  const start = from === undefined ? new Date(end.getTime() - 24 * BUCKET_MS[granularity]) : new Date(from);
  if (start.getTime() >= end.getTime()) throw fail('range_invalid');
  if ((end.getTime() - start.getTime()) / BUCKET_MS[granularity] > MAX_BUCKETS[granularity]) {
    throw fail('range_too_long', MAX_BUCKETS[granularity], granularity);
  }
  return { from: start, to: end };
}

