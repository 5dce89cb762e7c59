import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { parse, parseAllDocuments } from 'yaml';
import { COMMANDS } from '../../bin/commands.js';
import { controlPlaneSettingNames, readControlPlaneConfig } from '../../control-plane/config.js';
import { exitSettingNames, readExitConfig } from '../../exit/config.js';
import { createOpsServer } from '../../lib/ops-server.js';
import { proxySettingNames, readProxyConfig } from '../../proxy/config.js';
import { startTestControlPlane } from '../helpers/control-plane.js';
import { freePort } from '../helpers/ports.js';
import { runToExit } from '../helpers/processes.js';

/**
 * The deployment recipes cannot be run here (no container runtime), so they are checked
 * against the code: every setting they give is one the command's config reader knows and
 * accepts, every port is the one that setting opens, every probe asks a path the process
 * serves, the image and commands are the Dockerfile's, and shutdown has time to drain.
 */

const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
const IMAGE = `portcullis:${VERSION}`;
const dockerfile = readFileSync('Dockerfile', 'utf8');

interface Process {
  /** The settings the command reads. */
  names: string[];
  /** Reads `env` with the real config reader (throws on a bad value); the ports it would open. */
  ports(env: NodeJS.ProcessEnv): { serving: number[]; health: number };
}

const PROCESSES: Record<string, Process> = {
  'control-plane': {
    names: controlPlaneSettingNames(),
    ports(env) {
      const { port } = readControlPlaneConfig(env, { dataDir: 'unused', requireNodeToken: true });
      return { serving: [port], health: port };
    },
  },
  proxy: {
    names: proxySettingNames(),
    ports(env) {
      const { port, metricsPort } = readProxyConfig(env);
      return { serving: [port, metricsPort], health: metricsPort };
    },
  },
  exit: {
    names: exitSettingNames(),
    ports(env) {
      const { port } = readExitConfig(env);
      return { serving: [port], health: port };
    },
  },
};

/** What the Dockerfile's runtime image sets itself: a recipe may override it. */
const IMAGE_ENV = new Set(['NODE_ENV', 'HOST', 'DATA_DIR']);

/** `${NAME:?message}` and `${NAME}` in compose values, filled with acceptable stand-ins. */
const STAND_INS: Record<string, string> = { POSTGRES_PASSWORD: 'stand-in', ADMIN_TOKEN: 'a'.repeat(32), NODE_TOKEN: 'n'.repeat(32), EXIT_TOKEN: 'e'.repeat(32) };
const interpolate = (value: string) =>
  value.replace(/\$\{(\w+)(?::?[?-][^}]*)?\}/g, (_, name: string) => {
    if (STAND_INS[name] === undefined) throw new Error(`no stand-in for \${${name}}`);
    return STAND_INS[name]!;
  });

function commandOf(t: Test, where: string, args: unknown): Process {
  t.ok(Array.isArray(args) && args.length === 1, `${where}: runs exactly one portcullis subcommand`);
  const name = (args as string[])[0]!;
  t.ok(name in COMMANDS && name in PROCESSES, `${where}: "${name}" is a portcullis subcommand for a long-running process`);
  return PROCESSES[name]!;
}

function checkEnv(t: Test, where: string, process: Process, env: Record<string, string>): { serving: number[]; health: number } {
  const unknown = Object.keys(env).filter((name) => !process.names.includes(name) && !IMAGE_ENV.has(name));
  t.same(unknown, [], `${where}: every variable it sets is one its config reader knows`);
  let ports = { serving: [] as number[], health: 0 };
  t.doesNotThrow(() => (ports = process.ports(env)), `${where}: its config reader accepts every value`);
  return ports;
}

t.test('the Dockerfile: entrypoint, HEALTHCHECK and OCI labels', async (t) => {
  t.match(dockerfile, /^ENTRYPOINT \["node", "dist\/bin\/portcullis\.js"\]$/m, 'the entrypoint is the portcullis executable, built from bin/portcullis.ts');
  t.ok(existsSync('bin/portcullis.ts'));
  const healthcheck = /^HEALTHCHECK .* CMD \["node", "dist\/bin\/portcullis\.js", "(\w+)"\]$/m.exec(dockerfile);
  t.equal(healthcheck?.[1], 'healthcheck', 'HEALTHCHECK runs a portcullis subcommand');
  t.ok('healthcheck' in COMMANDS);
  t.match(dockerfile, new RegExp(`org\\.opencontainers\\.image\\.version="${VERSION.replace(/\./g, '\\.')}"`), 'the version label is the package version');
  t.match(dockerfile, /org\.opencontainers\.image\.title="portcullis"/);
});

t.test('portcullis healthcheck exits 0 when /healthz answers on PORT, 1 when nothing does', async (t) => {
  const cp = await startTestControlPlane();
  t.teardown(() => cp.close());
  const metricsPort = String(await freePort());
  const healthy = await runToExit({ entry: 'bin/portcullis.ts', args: ['healthcheck'], env: { PORT: String(cp.port), METRICS_PORT: metricsPort } });
  t.equal(healthy.code, 0, healthy.output);
  const down = await runToExit({ entry: 'bin/portcullis.ts', args: ['healthcheck'], env: { PORT: String(await freePort()), METRICS_PORT: metricsPort } });
  t.equal(down.code, 1);
  t.match(down.output, /no \/healthz answered 200/);
});

t.test('deploy/compose.yaml', async (t) => {
  const compose = parse(readFileSync('deploy/compose.yaml', 'utf8'), { merge: true }) as { services: Record<string, any> };
  const services = compose.services;
  const ours = Object.entries(services).filter(([, service]) => String(service.image).startsWith('portcullis'));
  const byCommand = (name: string) => ours.filter(([, service]) => service.command?.[0] === name);
  t.equal(byCommand('control-plane').length, 2, 'two control planes');
  t.equal(byCommand('proxy').length, 3, 'a node per region');
  t.ok(byCommand('exit').length >= 3, 'stand-in exits');

  const servingPort = new Map<string, number>();
  for (const [name, service] of ours) {
    t.equal(service.image, IMAGE, `${name}: the image is this version's`);
    t.same(service.build, { context: '..', dockerfile: 'Dockerfile' }, `${name}: built from the repository's Dockerfile`);
    t.equal(service.entrypoint, undefined, `${name}: keeps the Dockerfile's entrypoint`);
    const process = commandOf(t, name, service.command);
    const env = Object.fromEntries(Object.entries(service.environment as Record<string, string>).map(([key, value]) => [key, interpolate(String(value))]));
    const ports = checkEnv(t, name, process, env);
    const published = ((service.ports ?? []) as string[]).map((mapping) => Number(mapping.split(':').at(-1)));
    t.ok(
      published.every((port) => ports.serving.includes(port)),
      `${name}: publishes only ports it opens (${published.join(', ') || 'none'} of ${ports.serving.join(', ')})`,
    );
    if (service.command[0] !== 'exit') t.same([...published].sort(), [...ports.serving].sort(), `${name}: publishes every port it opens`);
    servingPort.set(name, ports.serving[0]!);
    const grace = Number(/^(\d+)s$/.exec(service.stop_grace_period)?.[1]) * 1000;
    t.ok(grace > Number(env.SHUTDOWN_DEADLINE_MS ?? 10_000), `${name}: stop_grace_period ${service.stop_grace_period} outlasts SHUTDOWN_DEADLINE_MS`);
  }

  // Every address a process is given is a service of this file, on the port that service opens.
  const addressed = (url: string, where: string) => {
    const parsed = new URL(url);
    t.ok(services[parsed.hostname] !== undefined, `${where}: ${parsed.hostname} is a service`);
    if (servingPort.has(parsed.hostname)) t.equal(Number(parsed.port), servingPort.get(parsed.hostname), `${where}: ${parsed.hostname} listens on ${parsed.port}`);
  };
  const regions = new Set<string>();
  for (const [name, service] of byCommand('control-plane')) {
    addressed(interpolate(service.environment.DATABASE_URL), `${name} DATABASE_URL`);
    for (const entry of String(service.environment.REGIONS).split(',')) {
      const [region, url] = entry.split('=');
      regions.add(region!);
      addressed(url!, `${name} REGIONS ${region}`);
    }
  }
  for (const [name, service] of byCommand('proxy')) {
    addressed(service.environment.CONTROL_PLANE_URL, `${name} CONTROL_PLANE_URL`);
    addressed(service.environment.REDIS_URL, `${name} REDIS_URL`);
    t.ok(regions.has(service.environment.REGION), `${name}: its region ${service.environment.REGION} is one the control planes publish to`);
  }
  t.equal(regions.size, 3, 'three regions');
});

t.test('deploy/kubernetes', async (t) => {
  const documents = readdirSync('deploy/kubernetes')
    .filter((file) => file.endsWith('.yaml'))
    .flatMap((file) => parseAllDocuments(readFileSync(`deploy/kubernetes/${file}`, 'utf8')).map((document) => ({ file, manifest: document.toJS() as any })));
  const ofKind = (kind: string) => documents.filter(({ manifest }) => manifest.kind === kind).map(({ manifest }) => manifest);
  const secrets = new Map<string, Record<string, string>>(ofKind('Secret').map((secret) => [secret.metadata.name, secret.stringData]));
  const deployments = ofKind('Deployment');
  const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([key, value]) => labels[key] === value);

  const cp = await startTestControlPlane();
  t.teardown(() => cp.close());
  const ops = await createOpsServer({ host: '127.0.0.1', port: 0, registry: new Registry(), isReady: () => true });
  t.teardown(() => ops.close());
  const served = {
    'control-plane': (path: string) => cp.routes.some((route) => route.method === 'GET' && route.url === path),
    proxy: async (path: string) => (await fetch(`http://127.0.0.1:${ops.port}${path}`)).status !== 404,
  };

  t.equal(deployments.filter((deployment) => deployment.spec.template.spec.containers.some((c: any) => c.args?.[0] === 'control-plane'))[0]?.spec.replicas, 2, 'two control plane replicas');
  t.same(
    new Set(deployments.flatMap((deployment) => deployment.spec.template.spec.containers.filter((c: any) => c.args?.[0] === 'proxy').map((c: any) => c.env.find((e: any) => e.name === 'REGION').value))),
    new Set(['us', 'eu', 'ap']),
    'a node Deployment per region',
  );
  for (const deployment of deployments) {
    const name = deployment.metadata.name;
    const pod = deployment.spec.template;
    t.ok(matches(deployment.spec.selector.matchLabels, pod.metadata.labels), `${name}: its selector matches its pods`);
    for (const container of pod.spec.containers) {
      const where = `${name}/${container.name}`;
      t.equal(container.image, IMAGE, `${where}: the image is this version's`);
      t.equal(container.command, undefined, `${where}: keeps the Dockerfile's entrypoint`);
      const process = commandOf(t, where, container.args);
      const env: Record<string, string> = {};
      for (const variable of container.env) {
        const ref = variable.valueFrom?.secretKeyRef;
        if (ref !== undefined) t.ok(secrets.get(ref.name)?.[ref.key] !== undefined, `${where}: ${variable.name} comes from secret ${ref.name} key ${ref.key}, which exists`);
        env[variable.name] = ref !== undefined ? (secrets.get(ref.name)?.[ref.key] ?? '') : String(variable.value);
      }
      const ports = checkEnv(t, where, process, env);
      const containerPorts = new Map<string, number>(container.ports.map((port: any) => [port.name, port.containerPort]));
      t.same([...containerPorts.values()].sort(), [...ports.serving].sort(), `${where}: declares exactly the ports it opens`);
      for (const [probe, path] of [
        ['readinessProbe', '/readyz'],
        ['livenessProbe', '/healthz'],
      ] as const) {
        const get = container[probe]?.httpGet;
        t.equal(get?.path, path, `${where}: ${probe} asks ${path}`);
        t.equal(containerPorts.get(get?.port), ports.health, `${where}: ${probe} asks the port that serves it`);
        t.ok(await served[container.args[0] as 'control-plane' | 'proxy'](path), `${where}: ${path} exists on that server`);
      }
      const preStop = Number(container.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
      t.equal(container.lifecycle?.preStop?.exec?.command?.[0], 'sleep', `${where}: preStop waits for endpoints to stop routing to it`);
      const grace = pod.spec.terminationGracePeriodSeconds * 1000;
      const needed = preStop * 1000 + Number(env.SHUTDOWN_DEADLINE_MS ?? 10_000);
      t.ok(grace > needed && grace <= needed + 10_000, `${where}: terminationGracePeriodSeconds (${grace} ms) covers preStop and SHUTDOWN_DEADLINE_MS (${needed} ms), with a little to exit`);
    }
    const services = ofKind('Service').filter((service) => matches(service.spec.selector, pod.metadata.labels));
    t.ok(services.length > 0, `${name}: a Service selects its pods`);
    for (const service of services) {
      for (const port of service.spec.ports) {
        t.ok(
          pod.spec.containers.some((container: any) => container.ports.some((declared: any) => declared.name === port.targetPort)),
          `${service.metadata.name}: targetPort ${port.targetPort} is a named port of ${name}`,
        );
      }
    }
    const budgets = ofKind('PodDisruptionBudget').filter((budget) => matches(budget.spec.selector.matchLabels, pod.metadata.labels));
    t.equal(budgets.length, 1, `${name}: a PodDisruptionBudget`);
    t.ok(budgets[0]?.spec.minAvailable >= 1 && budgets[0]?.spec.minAvailable < deployment.spec.replicas, `${name}: keeps one pod up and lets one go`);
  }
});
