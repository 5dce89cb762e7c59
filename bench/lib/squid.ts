import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/ports.js';
import { startProcess, type ChildServer } from '../../test/helpers/processes.js';

export interface Squid {
  port: number;
  pid: number;
  close(): Promise<void>;
}

/** True when a squid binary is installed (`apt-get install squid`); the benchmark never installs it. */
export function hasSquid(): boolean {
  return spawnSync('squid', ['-v'], { stdio: 'ignore' }).status === 0;
}

/**
 * Squid as a plain forward proxy, tuned as an operator would for a fair comparison: no
 * cache, no access log, no headers added, one worker, pinned to `core`.
 */
export async function startSquid(core: number): Promise<Squid> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-squid-'));
  // Squid started as root drops to its own user, which must write its log and pid here.
  chmodSync(dir, 0o777);
  const port = await freePort();
  const config = join(dir, 'squid.conf');
  writeFileSync(
    config,
    [
      `http_port 127.0.0.1:${port}`,
      'http_access allow all',
      'cache deny all',
      'cache_mem 0 MB',
      'access_log none',
      `cache_log ${join(dir, 'cache.log')}`,
      `pid_filename ${join(dir, 'squid.pid')}`,
      `coredump_dir ${dir}`,
      'via off',
      'forwarded_for delete',
      'workers 1',
      'max_filedescriptors 65536',
      'shutdown_lifetime 0 seconds',
      'dns_v4_first on',
      '',
    ].join('\n'),
  );
  // -d 1 copies the cache log to stderr, where readiness is read.
  const child: ChildServer = await startProcess({ command: ['squid', '-N', '-d', '1', '-f', config], core, ready: /Accepting HTTP Socket connections/ });
  return {
    port,
    pid: child.pid,
    async close() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
