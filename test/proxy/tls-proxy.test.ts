import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError } from '../../lib/env.js';
import { readProxyConfig } from '../../proxy/config.js';
import { waitFor, within } from '../helpers/deadline.js';
import { startHttpsOrigin } from '../helpers/origin.js';
import { startWorld } from '../helpers/world.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'portcullis-tls-proxy-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A throwaway self-signed certificate for 127.0.0.1 and its key, as PEM files. */
function selfSigned(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.cert.pem`);
  const key = join(dir, `${name}.key.pem`);
  // prettier-ignore
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { cert, key };
}

const proxyCertificate = selfSigned('proxy');
const other = selfSigned('other');
const world = await startWorld({ exitCountries: ['DE'] });
t.teardown(() => world.close());
const node = await world.startNode({ tlsProxy: { port: 0, cert: readFileSync(proxyCertificate.cert), key: readFileSync(proxyCertificate.key) } });
const tlsPort = node.tlsPort!;
const httpsOrigin = await startHttpsOrigin();
t.teardown(() => httpsOrigin.close());
const { key } = await world.createKey();
const proxyOverTls = ['--proxy', `https://127.0.0.1:${tlsPort}`, '--proxy-cacert', proxyCertificate.cert];

t.test('curl --proxy https://… forwards plain HTTP requests over TLS to the proxy', async (t) => {
  const { stdout } = await run('curl', ['-sS', ...proxyOverTls, '-U', `customer:${key}`, `${world.origin.url}/over-tls`]);
  t.equal(JSON.parse(stdout).url, '/over-tls');
  t.match(JSON.parse(stdout).exit, /^exit-de/, 'through an exit, like any request');
});

t.test('curl --proxy https://… opens CONNECT tunnels inside TLS', async (t) => {
  const { stdout } = await run('curl', ['-sS', ...proxyOverTls, '-U', `customer-country-de:${key}`, '-k', `${httpsOrigin.url}/tunnel-in-tls`]);
  t.equal(JSON.parse(stdout).url, '/tunnel-in-tls');
});

t.test('a tunnel inside TLS carries 4 MiB each way intact, metered as tunnel payload', async (t) => {
  const echo = net.createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => echo.close(() => resolve())));
  const payload = randomBytes(4 * 1024 * 1024);
  const metered = await world.createKey();
  const echoed = await within(
    new Promise<Buffer>((resolve, reject) => {
      const client = tls.connect({ host: '127.0.0.1', port: tlsPort, ca: readFileSync(proxyCertificate.cert) }, () => {
        client.write(`CONNECT 127.0.0.1:${(echo.address() as net.AddressInfo).port} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer ${metered.key}\r\n\r\n`);
      });
      client.on('error', reject);
      let received = Buffer.alloc(0);
      let established = false;
      client.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (!established) {
          const end = received.indexOf('\r\n\r\n');
          if (end < 0) return;
          if (!received.toString('latin1', 0, end).startsWith('HTTP/1.1 200')) return reject(new Error(received.toString('latin1', 0, end)));
          established = true;
          received = received.subarray(end + 4);
          client.write(payload);
        }
        if (received.length >= payload.length) {
          client.destroy();
          resolve(received);
        }
      });
    }),
    { what: '4 MiB back through the tunnel', timeoutMs: 30_000 },
  );
  const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
  t.equal(digest(echoed), digest(payload), 'byte for byte');
  const usage = await waitFor(
    async () => {
      await node.flushUsage();
      const response = await world.cp.request('GET', `/v1/teams/${world.team.id}/keys/${metered.id}/usage?granularity=day&from=${new Date(Date.now() - 2 * 86_400_000).toISOString()}`);
      const totals = response.body.data.reduce((sum: { up: number; down: number }, point: { bytesUp: number; bytesDown: number }) => ({ up: sum.up + point.bytesUp, down: sum.down + point.bytesDown }), { up: 0, down: 0 });
      return totals.up >= payload.length && totals.down >= payload.length ? totals : undefined;
    },
    { what: 'the tunnel in usage' },
  );
  t.same(usage, { up: payload.length, down: payload.length }, 'the decrypted payload, not its TLS records');
});

t.test('refusals come back over TLS, and the plain listener keeps working', async (t) => {
  const { stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', ...proxyOverTls, '-U', 'customer:sk_live_nope', `${world.origin.url}/refused`]);
  t.equal(stdout, '407');
  const plain = await run('curl', ['-sS', '-x', `http://127.0.0.1:${node.port}`, '-U', `customer:${key}`, `${world.origin.url}/plain`]);
  t.equal(JSON.parse(plain.stdout).url, '/plain');
});

t.test('the listener is TLS only: an untrusted certificate is refused by curl, plain HTTP gets no answer', async (t) => {
  await t.rejects(run('curl', ['-sS', '--proxy', `https://127.0.0.1:${tlsPort}`, '--proxy-cacert', other.cert, '-U', `customer:${key}`, `${world.origin.url}/x`]), 'a certificate curl does not trust');
  const answer = await within(
    new Promise<string>((resolve) => {
      const socket = net.connect(tlsPort, '127.0.0.1', () => socket.write(`GET ${world.origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`));
      let received = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (received += chunk));
      socket.on('error', () => {});
      socket.on('close', () => resolve(received));
    }),
    { what: 'the TLS listener to drop a plain HTTP client' },
  );
  t.notMatch(answer, /^HTTP\//, 'no HTTP answer in clear text');
});

t.test('TLS settings are checked at start with a clear message', async (t) => {
  const base = { CONTROL_PLANE_URL: 'http://127.0.0.1:1', REDIS_URL: 'redis://127.0.0.1:1', NODE_TOKEN: 'n'.repeat(30) };
  const problemsWith = (env: Record<string, string>) => {
    try {
      readProxyConfig({ ...base, ...env });
    } catch (error) {
      if (error instanceof ConfigError) return error.message;
      throw error;
    }
    return '';
  };
  const good = readProxyConfig({ ...base, TLS_PROXY_PORT: '8443', TLS_CERT_FILE: proxyCertificate.cert, TLS_KEY_FILE: proxyCertificate.key });
  t.equal(good.tlsProxy?.port, 8443);
  t.equal(readProxyConfig(base).tlsProxy, undefined, 'off by default');
  t.match(problemsWith({ TLS_PROXY_PORT: '8443' }), /TLS_CERT_FILE is required with TLS_PROXY_PORT[\s\S]*TLS_KEY_FILE is required/);
  t.match(problemsWith({ TLS_PROXY_PORT: '8443', TLS_CERT_FILE: join(dir, 'missing.pem'), TLS_KEY_FILE: proxyCertificate.key }), /TLS_CERT_FILE=.*missing\.pem: there is no such file/);
  const directory = join(dir, 'a-directory');
  mkdirSync(directory);
  t.match(problemsWith({ TLS_PROXY_PORT: '8443', TLS_CERT_FILE: proxyCertificate.cert, TLS_KEY_FILE: directory }), /TLS_KEY_FILE=.*a-directory: it is a directory/);
  t.match(
    problemsWith({ TLS_PROXY_PORT: '8443', TLS_CERT_FILE: proxyCertificate.cert, TLS_KEY_FILE: other.key }),
    /TLS_KEY_FILE is not the private key of the certificate in TLS_CERT_FILE/,
  );
  t.match(problemsWith({ TLS_PROXY_PORT: '8443', TLS_CERT_FILE: proxyCertificate.key, TLS_KEY_FILE: proxyCertificate.cert }), /must be a PEM certificate \(chain\) and its PEM private key/);
  t.match(problemsWith({ TLS_CERT_FILE: proxyCertificate.cert }), /TLS_CERT_FILE is set but TLS_PROXY_PORT is not/);
  t.match(problemsWith({ PORT: '8443', TLS_PROXY_PORT: '8443', TLS_CERT_FILE: proxyCertificate.cert, TLS_KEY_FILE: proxyCertificate.key }), /PORT and TLS_PROXY_PORT are both 8443/);
});
