import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The tree shows the product (STYLE "The tree shows the product"): parts meet only
 * through contract/ and lib/, geo/ is pure, access/ holds the pure decisions a node takes
 * (so the control plane can explain them with the same code), and no two files import
 * each other, directly or round a loop.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const SOURCE_DIRS = ['bin', 'contract', 'lib', 'geo', 'access', 'proxy', 'control-plane', 'exit'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return name === 'static' ? [] : sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

const files = SOURCE_DIRS.flatMap((dir) => sourceFiles(path.join(ROOT, dir)));
const importsOf = new Map<string, string[]>();
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((match) =>
    path.resolve(path.dirname(file), match[1]!).replace(/\.js$/, '.ts'),
  );
  importsOf.set(file, targets);
}
const part = (file: string) => path.relative(ROOT, file).split(path.sep)[0]!;

/** Which parts each part may import from. */
const ALLOWED: Record<string, string[]> = {
  contract: ['contract'],
  lib: ['lib', 'contract'],
  geo: ['geo', 'contract'],
  access: ['access', 'lib', 'contract', 'geo'],
  proxy: ['proxy', 'access', 'lib', 'contract', 'geo'],
  'control-plane': ['control-plane', 'access', 'lib', 'contract', 'geo'],
  exit: ['exit', 'lib', 'contract', 'geo'],
  bin: ['bin', 'proxy', 'control-plane', 'exit', 'access', 'lib', 'contract', 'geo'],
};

t.test('parts import only what they may: proxy and exit never import each other or the control plane', async (t) => {
  const violations: string[] = [];
  for (const [file, targets] of importsOf) {
    for (const target of targets) {
      if (!ALLOWED[part(file)]!.includes(part(target))) violations.push(`${path.relative(ROOT, file)} → ${path.relative(ROOT, target)}`);
    }
  }
  t.same(violations, []);
});

t.test('geo/, access/ and contract/ do no I/O', async (t) => {
  const io = /from 'node:(?:net|http|https|fs|fs\/promises|dns|child_process)'|from '(?:ioredis|pg|fastify)'/;
  const offenders = files.filter((file) => ['geo', 'access', 'contract'].includes(part(file)) && io.test(readFileSync(file, 'utf8')));
  t.same(offenders.map((file) => path.relative(ROOT, file)), []);
});

t.test('no import cycles between source files', async (t) => {
  const cycles: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      cycles.push([...stack.slice(stack.indexOf(file)), file].map((entry) => path.relative(ROOT, entry)).join(' → '));
      return;
    }
    state.set(file, 'visiting');
    stack.push(file);
    for (const target of importsOf.get(file) ?? []) visit(target);
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of importsOf.keys()) visit(file);
  t.same(cycles, []);
});
