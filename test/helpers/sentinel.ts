import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from './deadline.js';
import { freePort } from './ports.js';
import { answersPing, startRedis, type TestRedis } from './redis.js';

export const SENTINEL_MASTER_NAME = 'portcullis';

export interface TestSentinelSet {
  /** `redis+sentinel://…/portcullis`, naming every sentinel. */
  url: string;
  /** The first primary and its replica; after a failover the replica is the primary. */
  servers: [TestRedis, TestRedis];
  /** The port of the primary the sentinels name now. */
  primaryPort(): Promise<number>;
  close(): Promise<void>;
}

/**
 * A primary, one replica and three sentinels (quorum 2), each a private process on a free
 * port. The sentinels call the primary down after 500 ms of silence and fail over at once,
 * so a test sees a failover within a few seconds of killing the primary.
 */
export async function startSentinelSet(): Promise<TestSentinelSet> {
  const directory = await mkdtemp(path.join(tmpdir(), 'portcullis-sentinel-'));
  const sentinels: ChildProcess[] = [];
  const primary = await startRedis();
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  const close = async () => {
    await Promise.all(
      sentinels.map(async (sentinel) => {
        if (sentinel.exitCode !== null || sentinel.signalCode !== null) return;
        const exited = new Promise((resolve) => sentinel.once('exit', resolve));
        sentinel.kill('SIGKILL');
        await exited;
      }),
    );
    await replica.close();
    await primary.close();
    await rm(directory, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => (await info(replica.port, 'replication')).includes('master_link_status:up'), { what: 'the replica to sync with the primary' });
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // Sentinel rewrites its own configuration file, so each one gets a file of its own.
      const file = path.join(directory, `sentinel-${i}.conf`);
      await writeFile(
        file,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${directory}`,
          `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} 500`,
          `sentinel failover-timeout ${SENTINEL_MASTER_NAME} 2000`,
          `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      const sentinel = spawn('redis-server', [file, '--sentinel'], { stdio: 'ignore' });
      sentinels.push(sentinel);
      await waitFor(() => (sentinel.exitCode !== null ? Promise.reject(new Error(`sentinel on port ${port} exited`)) : answersPing(port)), {
        what: `a sentinel on port ${port}`,
      });
      ports.push(port);
    }
    // Sentinels find each other through the primary's hello channel; a failover needs a majority that knows the others.
    await waitFor(async () => (await sentinelCommand(ports[0]!, ['sentinel', 'master', SENTINEL_MASTER_NAME])).join(' ').includes('num-other-sentinels 2'), {
      what: 'the sentinels to know each other',
      timeoutMs: 15_000,
    });
    return {
      url: `redis+sentinel://${ports.map((port) => `127.0.0.1:${port}`).join(',')}/${SENTINEL_MASTER_NAME}`,
      servers: [primary, replica],
      primaryPort: async () => Number((await sentinelCommand(ports[0]!, ['sentinel', 'get-master-addr-by-name', SENTINEL_MASTER_NAME]))[1]),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function info(port: number, section: string): Promise<string> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await client.connect();
    return await client.info(section);
  } finally {
    client.disconnect();
  }
}

async function sentinelCommand(port: number, [command, ...args]: string[]): Promise<string[]> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await client.connect();
    const reply = (await client.call(command!, ...args)) as unknown[];
    return reply.map(String);
  } finally {
    client.disconnect();
  }
}
