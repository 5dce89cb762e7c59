import { mkdirSync, writeFileSync } from 'node:fs';

export type Row = Record<string, string | number>;

/** Prints rows as a Markdown table (pasteable into the README). */
export function printTable(title: string, rows: Row[]): string {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (value: string | number | undefined) => (value === undefined ? '' : typeof value === 'number' ? formatNumber(value) : value);
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)));
  const line = (values: string[]) => `| ${values.map((value, i) => value.padEnd(widths[i]!)).join(' | ')} |`;
  const text = [
    `### ${title}`,
    '',
    line(columns),
    `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`,
    ...rows.map((row) => line(columns.map((column) => cell(row[column])))),
    '',
  ].join('\n');
  process.stdout.write(`${text}\n`);
  return text;
}

function formatNumber(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(value >= 10 ? 1 : 2);
}

/** Writes a benchmark's raw results under bench/results (not committed). */
export function saveResults(name: string, data: unknown): string {
  mkdirSync('bench/results', { recursive: true });
  const path = `bench/results/${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}
