import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { waitFor } from './deadline.js';
import { freePort } from './ports.js';

const run = promisify(execFile);

/**
 * A PostgreSQL server of the test's own, on a free port, so that a fault test can stop,
 * crash and restart it — or kill its sessions — without touching the machine's server that
 * every other test uses. Debian's binaries (initdb, pg_ctl) run as the `postgres` user.
 */
export interface PgCluster {
  port: number;
  /** A connection URL for `database` (default `postgres`). */
  url(database?: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** `fast` is a clean shutdown; `immediate` is a crash (no checkpoint, sessions cut). */
  stop(mode: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** Ends every session whose application_name matches `pattern` (SQL LIKE); returns how many. */
  terminateSessions(pattern: string): Promise<number>;
  /** A logical backup of a database, taken while it is in use (pg_dump); returns the file. */
  dump(database: string): Promise<string>;
  /** Restores a dump into a new database (pg_restore), as after losing one; returns its URL. */
  restoreDump(file: string): Promise<string>;
  /** A copy of the server's files, as a volume snapshot: a clean stop, a copy, a start. */
  snapshotFiles(): Promise<string>;
  /** Puts a snapshot's files back in place of the current ones: a crash, the copy, a start. */
  restoreFiles(snapshot: string): Promise<void>;
  close(): Promise<void>;
}

function binary(name: string): string {
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort().reverse() : [];
  for (const version of versions) {
    const path = `/usr/lib/postgresql/${version}/bin/${name}`;
    if (existsSync(path)) return path;
  }
  return name;
}

const asRoot = userInfo().uid === 0;

/** Runs a PostgreSQL program as `postgres` (it refuses to run as root). */
function asPostgres(program: string, args: string[]) {
  return asRoot ? run('runuser', ['-u', 'postgres', '--', binary(program), ...args]) : run(binary(program), args);
}

export async function startPgCluster(): Promise<PgCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-pg-'));
  if (asRoot) {
    const { uid, gid } = await run('id', ['-u', 'postgres']).then(async ({ stdout }) => ({
      uid: Number(stdout.trim()),
      gid: Number((await run('id', ['-g', 'postgres'])).stdout.trim()),
    }));
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions']);
  const port = await freePort();
  const settings = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    // A commit must survive the server crashing (the tests crash it), not the machine: WAL
    // is written before a commit returns, but never flushed to disk.
    '-c fsync=off',
    '-c synchronous_commit=on',
    '-c full_page_writes=off',
  ].join(' ');
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;

  async function start(): Promise<void> {
    await asPostgres('pg_ctl', ['-D', data, '-o', settings, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    await waitFor(
      async () => {
        const client = new pg.Client({ connectionString: url() });
        try {
          await client.connect();
          return true;
        } finally {
          await client.end().catch(() => undefined);
        }
      },
      { what: `the test PostgreSQL on port ${port} to accept connections` },
    );
  }

  async function adminQuery<Row>(sql: string): Promise<Row[]> {
    const client = new pg.Client({ connectionString: url() });
    await client.connect();
    try {
      return (await client.query(sql)).rows as Row[];
    } finally {
      await client.end();
    }
  }

  let databases = 0;
  let dumps = 0;
  await start();
  return {
    port,
    url,
    async createDatabase() {
      const name = `fault_${process.pid}_${++databases}`;
      await adminQuery(`CREATE DATABASE ${name}`);
      return url(name);
    },
    async stop(mode) {
      await asPostgres('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
    },
    start,
    async terminateSessions(pattern) {
      const rows = await adminQuery<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE application_name LIKE '${pattern.replace(/'/g, "''")}' AND pg_terminate_backend(pid)`,
      );
      return rows.length;
    },
    async dump(database) {
      const file = join(dir, `${database}-${++dumps}.dump`);
      await asPostgres('pg_dump', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-Fc', '-f', file, database]);
      return file;
    },
    async restoreDump(file) {
      const name = `fault_${process.pid}_${++databases}`;
      await adminQuery(`CREATE DATABASE ${name}`);
      await asPostgres('pg_restore', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', name, file]);
      return url(name);
    },
    async snapshotFiles() {
      const copy = join(dir, `snapshot-${++dumps}`);
      await asPostgres('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
      await run('cp', ['-a', data, copy]);
      await start();
      return copy;
    },
    async restoreFiles(snapshot) {
      await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '60', 'stop']);
      rmSync(data, { recursive: true, force: true });
      await run('cp', ['-a', snapshot, data]);
      await start();
    },
    async close() {
      await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
