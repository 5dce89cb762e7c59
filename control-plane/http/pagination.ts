import type { CursorCodec } from './cursor.js';

export const MAX_PAGE_SIZE = 500;
export const DEFAULT_PAGE_SIZE = 50;

/** Query-string schema shared by every paginated list. */
export const pageQuerySchema = {
  limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE, description: 'Page size.' },
  cursor: { type: 'string', minLength: 1, maxLength: 1024, description: 'The `nextCursor` of the previous page.' },
} as const;

export const pageQuery = { type: 'object', additionalProperties: false, properties: pageQuerySchema } as const;

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

/**
 * Lists fetch `limit + 1` rows: the extra row only tells whether another page exists.
 * The cursor is the sort position of the last row returned.
 */
export function toPage<Row, T>(
  rows: Row[],
  limit: number,
  codec: CursorCodec,
  scope: string,
  position: (row: Row) => string[],
  render: (row: Row) => T,
): Page<T> {
  const hasMore = rows.length > limit;
  const visible = hasMore ? rows.slice(0, limit) : rows;
  const last = visible[visible.length - 1];
  return {
    data: visible.map(render),
    nextCursor: hasMore && last !== undefined ? codec.encode(scope, position(last)) : null,
  };
}

/** The response schema of a list page of `item`. */
export function pageSchema(item: object, description: string) {
  return {
    description,
    type: 'object',
    required: ['data', 'nextCursor'],
    properties: {
      data: { type: 'array', items: item },
      nextCursor: { type: ['string', 'null'], description: 'Pass as `cursor` for the next page; null on the last page.' },
    },
  } as const;
}
