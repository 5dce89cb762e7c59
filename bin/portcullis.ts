#!/usr/bin/env node
import { ConfigError } from '../lib/env.js';
import { StartupError } from '../lib/startup-error.js';
import { COMMANDS } from './commands.js';

const USAGE = `usage: portcullis <command>

commands:
  start          control plane, one proxy node and the dashboard in one process
  control-plane  the control plane (admin API, node API, relay)
  proxy          one proxy node
  exit           a stand-in residential exit for development, tests and benchmarks
  healthcheck    exits 0 if this container's process answers /healthz (the image's HEALTHCHECK)

Every setting is an environment variable; see the README.`;

const name = process.argv[2];
const command = name === undefined ? undefined : COMMANDS[name];
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
