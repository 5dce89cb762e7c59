import { createEnvReader } from '../lib/env.js';

const TIMEOUT_MS = 2_000;

/**
 * `portcullis healthcheck`: the image's HEALTHCHECK. It runs beside whichever command the
 * container runs, with the same environment, so it asks `/healthz` on both ports that can
 * serve it (the control plane's and an exit's `PORT`, a node's `METRICS_PORT`) and exits 0
 * if either answers 200.
 */
export async function runHealthcheck(env: NodeJS.ProcessEnv): Promise<void> {
  const read = createEnvReader(env);
  const ports = [read.integer('PORT', { default: 8080, min: 1, max: 65535 }), read.integer('METRICS_PORT', { default: 9091, min: 1, max: 65535 })];
  read.finish();
  const answers = await Promise.all(
    ports.map((port) =>
      fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(TIMEOUT_MS) }).then(
        (response) => response.status,
        () => 0,
      ),
    ),
  );
  if (!answers.includes(200)) {
    process.stderr.write(`portcullis healthcheck: no /healthz answered 200 on ports ${ports.join(', ')} (got ${answers.join(', ')})\n`);
    process.exitCode = 1;
  }
}
