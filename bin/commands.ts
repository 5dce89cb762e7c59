/** The `portcullis` subcommands, by name: what the image's CMD and the deployment recipes may run. */
export const COMMANDS: Readonly<Record<string, () => Promise<void>>> = {
  start: async () => (await import('./start.js')).runStart(process.env),
  'control-plane': async () => (await import('../control-plane/main.js')).runControlPlane(process.env),
  proxy: async () => (await import('../proxy/main.js')).runProxy(process.env),
  exit: async () => (await import('../exit/main.js')).runExit(process.env),
  healthcheck: async () => (await import('./healthcheck.js')).runHealthcheck(process.env),
};
