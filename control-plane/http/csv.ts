import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

/**
 * CSV exports, streamed page by page: a page is fetched (its connection goes back to the
 * pool at once), written, and the next one is fetched only once the client has taken
 * enough of it, so an export of any size holds about one page in memory.
 */

export type Cell = string | number | null;

/** A page of CSV rows, and where the next page starts (undefined: this was the last). */
export interface CsvPage {
  rows: Cell[][];
  after: string[] | undefined;
}

const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;
/** Spreadsheets run a cell starting with one of these as a formula (CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;

/** One RFC 4180 field: quoted when it must be, quotes doubled, formulas defused. */
export function csvField(value: Cell): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(cells: readonly Cell[]): string {
  return `${cells.map(csvField).join(',')}\r\n`;
}

export interface CsvExport {
  header: readonly string[];
  /** Fetches the page after `after` (undefined: the first). */
  page(after: string[] | undefined): Promise<CsvPage>;
  /** Called with each page's row count, for the export metrics. */
  onPage(rows: number): void;
}

/**
 * The export as a stream. The first page is read before anything is sent, so a failure
 * there (the database down, say) is still an ordinary error answer; a later one cuts the
 * response off, which a client sees as an incomplete transfer, never as a short file.
 */
export async function csvStream({ header, page, onPage }: CsvExport): Promise<Readable> {
  const first = await page(undefined);
  onPage(first.rows.length);
  async function* lines(): AsyncGenerator<string> {
    yield csvLine(header) + first.rows.map(csvLine).join('');
    let after = first.after;
    while (after !== undefined) {
      const next = await page(after);
      onPage(next.rows.length);
      if (next.rows.length > 0) yield next.rows.map(csvLine).join('');
      after = next.after;
    }
  }
  // Byte mode: a page is larger than the buffer, so the generator is asked for the next
  // page only after the previous one has drained into the response.
  return Readable.from(lines(), { objectMode: false });
}

/** Sends `stream` as a CSV download named `filename`. */
export function sendCsv(reply: FastifyReply, filename: string, stream: Readable): FastifyReply {
  return reply
    .header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${filename}"`)
    .header('cache-control', 'no-store')
    .send(stream);
}

/** The documented 200 answer of an export. */
export function csvResponse(description: string) {
  return { 200: { description, content: { 'text/csv': { schema: { type: 'string' } } } } } as const;
}
