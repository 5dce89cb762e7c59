// Copies the files tsc does not emit (SQL migrations, dashboard assets) next to the build.
import { cpSync, existsSync } from 'node:fs';

for (const [from, to] of [
  ['control-plane/db/migrations', 'dist/control-plane/db/migrations'],
  ['control-plane/dashboard/static', 'dist/control-plane/dashboard/static'],
]) {
  if (existsSync(from)) cpSync(from, to, { recursive: true });
}
