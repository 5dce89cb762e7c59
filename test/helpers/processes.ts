import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { waitFor } from './deadline.js';

const hasTaskset = spawnSync('taskset', ['--version']).status === 0;

/** Pins this process to one core so a load generator and the server it measures do not fight. */
export function pinSelf(core: number): void {
  if (hasTaskset) spawnSync('taskset', ['-cp', String(core), String(process.pid)], { stdio: 'ignore' });
}

export interface ChildServer {
  process: ChildProcess;
  pid: number;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Its JSON log lines so far (pino), parsed. */
  logLines(): Record<string, unknown>[];
  /** Waits for a log line whose `msg` is `message` (and that passes `where`), and returns it. */
  waitForLog(message: string, where?: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with how it ended, once it has. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal (SIGKILL for a crash) and waits for the exit. */
  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL if it has not exited in time. */
  stop(): Promise<void>;
}

export interface StartProcessOptions {
  /** A TS entry file relative to the repository root, e.g. `bin/portcullis.ts`, run with tsx's loader. */
  entry?: string;
  /** Or any other program and its arguments (squid, say). */
  command?: string[];
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Started once its output matches this. */
  ready: RegExp;
  /** Pin it to this core (benchmarks). */
  core?: number;
  /** Raises its limit of open files (tests holding thousands of connections). */
  fileLimit?: number;
  startTimeoutMs?: number;
}

/**
 * Runs a TS entry (`portcullis <command>` or a benchmark server) or another program as a
 * real child process, resolving once its output matches `ready`. A TS entry runs under
 * node with tsx's loader rather than the tsx command, so a signal reaches the program itself.
 */
export async function startProcess({ entry, command, args = [], env = {}, ready, core, fileLimit, startTimeoutMs = 60_000 }: StartProcessOptions): Promise<ChildServer> {
  let program = command ?? [process.execPath, '--import', import.meta.resolve('tsx'), entry!, ...args];
  // The shell execs the program, so signals still reach it directly.
  if (fileLimit !== undefined) program = ['sh', '-c', `ulimit -n ${fileLimit} && exec "$0" "$@"`, ...program];
  const [executable, ...programArgs] = core !== undefined && hasTaskset ? ['taskset', '-c', String(core), ...program] : program;
  const child = spawn(executable!, programArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const name = command?.[0] ?? `${entry} ${args.join(' ')}`;
  let output = '';
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk;
    partial += chunk;
    const complete = partial.split('\n');
    partial = complete.pop()!;
    for (const line of complete) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line));
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  await waitFor(
    () => {
      if (ready.test(output)) return true;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output}`);
      return false;
    },
    { what: `${name} to start`, timeoutMs: startTimeoutMs, intervalMs: 20 },
  ).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error instanceof Error && error.message.includes('exited') ? error : new Error(`${(error as Error).message}\n${output}`);
  });
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return {
    process: child,
    pid: child.pid!,
    output: () => output,
    logLines: () => lines,
    waitForLog: (message, where = () => true, timeoutMs) =>
      waitFor(() => lines.find((line) => line.msg === message && where(line)), { what: `"${message}" in the log of ${name}`, timeoutMs }),
    exited,
    kill,
    async stop() {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await kill('SIGTERM');
      clearTimeout(timer);
    },
  };
}

/** Runs a TS entry to its end (a start that must fail); resolves with how it ended and what it said. */
export function runToExit({ entry, args = [], env = {} }: { entry: string; args?: string[]; env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), entry, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

export interface ControlPlaneProcess extends ChildServer {
  url: string;
  port: number;
}

/** `portcullis control-plane` with `env` (DATABASE_URL, ADMIN_TOKEN and NODE_TOKEN at least), on a free port unless PORT is set. */
export async function startControlPlaneProcess(env: NodeJS.ProcessEnv): Promise<ControlPlaneProcess> {
  const child = await startProcess({ entry: 'bin/portcullis.ts', args: ['control-plane'], env: { PORT: '0', LOG_LEVEL: 'info', ...env }, ready: /control plane listening/ });
  const url = String((await child.waitForLog('control plane listening')).url);
  return Object.assign(child, { url, port: Number(new URL(url).port) });
}

export interface ProxyProcess extends ChildServer {
  /** The proxy port. */
  port: number;
  metricsPort: number;
  nodeId: string;
}

/**
 * `portcullis proxy` with `env` (CONTROL_PLANE_URL, REDIS_URL and NODE_TOKEN at least), on free
 * ports; loopback targets allowed; one process unless `env` sets WORKERS.
 */
export async function startProxyProcess(env: NodeJS.ProcessEnv, { fileLimit }: Pick<StartProcessOptions, 'fileLimit'> = {}): Promise<ProxyProcess> {
  const child = await startProcess({
    entry: 'bin/portcullis.ts',
    args: ['proxy'],
    env: { PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'info', ALLOW_PRIVATE_DESTINATIONS: 'true', WORKERS: '1', ...env },
    ready: /proxy node listening/,
    ...(fileLimit !== undefined && { fileLimit }),
  });
  const line = await child.waitForLog('proxy node listening');
  return Object.assign(child, { port: Number(new URL(String(line.url)).port), metricsPort: Number(line.metricsPort), nodeId: String(line.nodeId) });
}
