import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const cspell = join(process.cwd(), 'node_modules/.bin/cspell');

t.test('the UI copy and the README pass the spell checker', async (t) => {
  const { stdout, stderr } = await run(cspell, ['--no-progress', '--no-summary', '--config', 'cspell.json']);
  t.equal(`${stdout}${stderr}`.trim(), '', 'no unknown words');
});

t.test('the spell checker catches "Create new keyy"', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-spell-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'copy.html'), '<button>Create new keyy</button>\n');
  const result = await run(cspell, ['--no-progress', '--no-summary', '--config', join(process.cwd(), 'cspell.json'), 'copy.html'], { cwd: dir }).then(
    () => ({ code: 0, output: '' }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: error.stdout + error.stderr }),
  );
  t.not(result.code, 0, 'fails');
  t.match(result.output, /Unknown word \(keyy\)/);
});
