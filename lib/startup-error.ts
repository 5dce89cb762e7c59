/**
 * A start-up failure the operator can fix: `bin/portcullis` prints its message as one
 * line, naming the setting, and exits non-zero — no stack trace.
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
  readonly code = 'startup_failed';
}

/**
 * A port that could not be bound, told by the setting that chose it (`ports` maps each
 * setting to its value); any other error passes through unchanged.
 */
export function explainListenError(error: unknown, ports: Record<string, number>): unknown {
  const { code, port } = error as NodeJS.ErrnoException & { port?: number };
  if (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL') return error;
  const settings = Object.entries(ports)
    .filter(([, value]) => value === port)
    .map(([name]) => name);
  const named = settings.length > 0 ? `${settings.join(' and ')}=${port}` : `port ${port}`;
  const problem =
    code === 'EADDRINUSE' ? 'is already in use by another process' : code === 'EACCES' ? 'may not be bound by this user' : 'names an address this host does not have (HOST)';
  return new StartupError(`${named} ${problem}; choose another`, { cause: error });
}

/** Two listeners on one port would fail at the second bind: said up front instead. */
export function samePortProblems(ports: Record<string, number>): string[] {
  const byPort = new Map<number, string[]>();
  for (const [name, port] of Object.entries(ports)) {
    if (port === 0) continue;
    byPort.set(port, [...(byPort.get(port) ?? []), name]);
  }
  return [...byPort].filter(([, names]) => names.length > 1).map(([port, names]) => `${names.join(' and ')} are both ${port}: each needs a port of its own`);
}
