import t from 'tap';
import net from 'node:net';
import { createFuzzInputs, type FuzzInput } from '../helpers/fuzz-inputs.js';
import { startProcessWorld } from '../helpers/process-world.js';

/**
 * 100,000 seeded hostile requests against a node process (credentials, usernames, targeting
 * headers, request lines), none with a usable key. Promise: the node never crashes or logs
 * an unexpected error, answers every one with a 4xx or the documented 503 auth_unavailable,
 * and proxies nothing (the origin sees nothing).
 */

const INPUTS = 100_000;
const SEED = 0x5eed_2026;
const CONNECTIONS = 32;
/** An answer slower than this counts as none. */
const ANSWER_TIMEOUT_MS = 10_000;

const world = await startProcessWorld();
t.teardown(() => world.close());
const { cp, origin, team } = world;
const revoked = await world.createKey();
await cp.request('POST', `/v1/teams/${team.id}/keys/${revoked.id}/revoke`);
const expired = await world.createKey();
await cp.adminDb.query(`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [expired.id]);
const node = await world.startNode();

interface Answer {
  status: number;
  code: string | undefined;
  closes: boolean;
}

/** One connection sending requests one at a time, reading each answer; reopens after a close. */
function connection(port: number) {
  let socket: net.Socket | undefined;
  let received = '';
  let waiting: { resolve: (answer: Answer | undefined) => void; isHead: boolean; on: net.Socket } | undefined;

  function parse(): void {
    const end = received.indexOf('\r\n\r\n');
    if (waiting === undefined || end < 0) return;
    const head = received.slice(0, end);
    const status = Number(head.slice(9, 12));
    const header = (name: string) => new RegExp(`^${name}: *(.*)$`, 'im').exec(head)?.[1]?.trim();
    const length = waiting.isHead || status === 100 ? 0 : Number(header('content-length') ?? 0);
    if (received.length < end + 4 + length) return;
    received = received.slice(end + 4 + length);
    if (status === 100) return parse();
    const done = waiting;
    waiting = undefined;
    done.resolve({ status, code: header('x-portcullis-error'), closes: /close/i.test(header('connection') ?? '') });
  }

  function open(): net.Socket {
    const opened = net.connect(port, '127.0.0.1');
    opened.setEncoding('latin1');
    opened.on('data', (chunk: string) => {
      received += chunk;
      parse();
    });
    opened.on('error', () => {});
    opened.on('close', () => {
      if (socket === opened) socket = undefined;
      if (waiting?.on !== opened) return;
      const left = waiting;
      waiting = undefined;
      left.resolve(undefined);
    });
    return opened;
  }

  return {
    send(input: FuzzInput): Promise<Answer | undefined> {
      socket ??= open();
      received = '';
      const current = socket;
      return new Promise((resolve) => {
        const timer = setTimeout(() => current.destroy(), ANSWER_TIMEOUT_MS);
        waiting = {
          isHead: input.method === 'HEAD',
          on: current,
          resolve: (answer) => {
            clearTimeout(timer);
            if (answer === undefined || answer.closes) {
              current.destroy();
              if (socket === current) socket = undefined;
            }
            resolve(answer);
          },
        };
        current.write(input.bytes, 'latin1');
      });
    },
    close: () => socket?.destroy(),
  };
}

t.test(`a seeded fuzz of ${INPUTS} hostile requests (seed ${SEED.toString(16)}): no crash, no unexpected 5xx, nothing proxied`, async (t) => {
  const next = createFuzzInputs(SEED, { origin: `127.0.0.1:${origin.port}`, refusedKeys: [revoked.key, expired.key] });
  const outcomes = new Map<string, number>();
  let unanswered = 0;
  let sent = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      const client = connection(node.port);
      while (sent < INPUTS) {
        sent++;
        const answer = await client.send(next());
        if (answer === undefined) unanswered++;
        else outcomes.set(`${answer.status} ${answer.code ?? '-'}`, (outcomes.get(`${answer.status} ${answer.code ?? '-'}`) ?? 0) + 1);
      }
      client.close();
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  t.comment(`${INPUTS} requests in ${seconds.toFixed(1)} s: ${JSON.stringify(Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])))}`);

  t.equal(node.process.exitCode, null, 'the node is still running');
  t.same(node.logLines().filter((line) => Number(line.level) >= 50), [], 'it logged no error');
  const serverErrors = [...outcomes.keys()].filter((outcome) => outcome.startsWith('5') && outcome !== '503 auth_unavailable');
  t.same(serverErrors, [], 'no 5xx but the documented 503 auth_unavailable');
  t.notOk([...outcomes.keys()].some((outcome) => outcome.startsWith('2') || outcome.startsWith('3')), 'nothing was let through');
  t.equal(origin.seen.length, 0, 'the origin saw nothing');
  t.ok(unanswered < INPUTS / 100, `${unanswered} requests the node closed without an answer (malformed beyond a reply)`);
});
