import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERRORS } from '../../control-plane/errors.js';
import { REFUSALS } from '../../access/refusal.js';

/**
 * Each service's error codes come from one table, and the README documents that table:
 * every code with its status, and nothing the code does not have.
 */

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** `code → status` from the first Markdown table after `heading`. */
function documentedCodes(heading: string): Map<string, number> {
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README has no "${heading}" section`);
  const lines = readme.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('| status'));
  const codes = new Map<string, number>();
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    const [status, codeCell] = line.split('|').slice(1).map((cell) => cell.trim());
    for (const [, code] of codeCell!.matchAll(/`([a-z_]+)`/g)) codes.set(code!, Number(status));
  }
  return codes;
}

function registryCodes(table: Record<string, { status: number }>): Map<string, number> {
  return new Map(Object.entries(table).map(([code, kind]) => [code, kind.status]));
}

t.test("the control plane's error table and the README's API errors agree", async (t) => {
  const documented = documentedCodes('### API errors');
  t.same(Object.fromEntries(documented), Object.fromEntries(registryCodes(ERRORS)));
});

t.test("the proxy's refusal table and the README's refusals agree", async (t) => {
  const documented = documentedCodes('## Using the proxy');
  t.same(Object.fromEntries(documented), Object.fromEntries(registryCodes(REFUSALS)));
});

t.test('every error code is snake_case', async (t) => {
  const codes = [...Object.keys(ERRORS), ...Object.keys(REFUSALS)];
  t.same(codes.filter((code) => !/^[a-z]+(?:_[a-z]+)*$/.test(code)), []);
});
