import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

const hasTaskset = spawnSync('taskset', ['--version']).status === 0;

/** Pins this process to one core so the load generator and the server do not fight. */
export function pinSelf(core: number): void {
  if (hasTaskset) spawnSync('taskset', ['-cp', String(core), String(process.pid)], { stdio: 'ignore' });
}

export interface ChildServer {
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Runs `portcullis <command>` (or another TS entry) in a child process pinned to `core`,
 * resolving once its output matches `ready`.
 */
export async function startPinned(core: number | undefined, entry: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<ChildServer> {
  // Node with tsx's loader rather than the tsx command, so SIGTERM reaches the server itself.
  const node = [process.execPath, '--import', import.meta.resolve('tsx'), entry, ...args];
  const [command, ...commandArgs] = core !== undefined && hasTaskset ? ['taskset', '-c', String(core), ...node] : node;
  const child = spawn(command, commandArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${entry} did not start:\n${output}`)), 60_000);
    const check = () => {
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited ${code}:\n${output}`));
    });
  });
  return {
    process: child,
    output: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}
