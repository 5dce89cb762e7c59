#!/usr/bin/env node
import { ConfigError } from '../lib/env.js';
import { StartupError } from '../lib/startup-error.js';

const USAGE = `usage: portcullis <command>

commands:
  start          control plane, one proxy node and the dashboard in one process
  control-plane  the control plane (admin API, node API, relay)
  proxy          one proxy node
  exit           a stand-in residential exit for development, tests and benchmarks
  audit verify   check the activity log's hash chains (portcullis audit verify [TEAM_ID…])

Every setting is an environment variable; see the README.`;

const commands: Record<string, () => Promise<void>> = {
  start: async () => (await import('./start.js')).runStart(process.env),
  'control-plane': async () => (await import('../control-plane/main.js')).runControlPlane(process.env),
  proxy: async () => (await import('../proxy/main.js')).runProxy(process.env),
  exit: async () => (await import('../exit/main.js')).runExit(process.env),
  audit: async () => {
    const { runAudit } = await import('../control-plane/activity/audit-command.js');
    process.exitCode = await runAudit(process.argv.slice(3), process.env, (line) => process.stdout.write(`${line}\n`));
  },
};

const name = process.argv[2];
const command = name === undefined ? undefined : commands[name];
if (command === undefined) {
  process.stderr.write(`${name === undefined || name === 'help' || name === '--help' ? '' : `unknown command "${name}"\n\n`}${USAGE}\n`);
  process.exit(name === 'help' || name === '--help' ? 0 : 2);
}
try {
  await command();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`portcullis ${name}: ${error.message}\n`);
    process.exit(78);
  }
  if (error instanceof StartupError) {
    process.stderr.write(`portcullis ${name}: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
