/**
 * The whole deployment of the README's guide on one machine, each host a network namespace:
 * nginx (edge), three spike nodes (n1–n3), a Redis master with two replicas and a sentinel beside
 * each (r1–r3), PostgreSQL (db). Every process is real; ports are the ones a deployment uses, each
 * host having its own network stack.
 */
import type { Subprocess } from 'bun';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeRuntimeDirs, NGINX_TEMPLATE, renderNginxConf } from '../../../src/services/nginx.ts';
import { startTestNet, type TestNet } from '../netns.ts';

export const NODES = ['n1', 'n2', 'n3'] as const;
export const REDIS_HOSTS = ['r1', 'r2', 'r3'] as const;
export const WORKER_PORTS = [3001, 3002];
/** How long the sentinels wait before they call a silent master down. */
export const DOWN_AFTER_MS = 2000;
const QUEUE_SECRET = 'rehearsal-queue-secret-0123456789';

export interface Topology {
  readonly net: TestNet;
  /** nginx, as the buyers reach it. */
  readonly url: string;
  readonly sentinels: readonly string[];
  readonly databaseUrl: string;
  /** The IP of the Redis host whose server is master now (asked of a sentinel). */
  masterHost(): string;
  /** SIGKILL of the redis-server on `host`, and its start again (the sentinels make it a replica). */
  killRedis(host: string): Promise<void>;
  startRedis(host: string): void;
  /** SIGTERM to node `name`, its exit code, then its start again until ready; ms it took. */
  restartNode(name: string): Promise<{ exitCode: number; ms: number }>;
  close(): Promise<void>;
}

type Child = Subprocess<'ignore', 'pipe', 'pipe'>;

function drain(child: Child): void {
  void (async () => {
    for await (const _ of child.stdout) void _;
  })();
  void (async () => {
    for await (const _ of child.stderr) void _;
  })();
}

/** Waits until `child` prints `marker` on stdout (or throws with what it printed). */
async function waitFor(child: Child, marker: string, what: string): Promise<void> {
  let out = '';
  const reader = child.stdout.getReader();
  while (!out.includes(marker)) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error(`${what} ended before "${marker}": ${out}${await new Response(child.stderr).text()}`);
    out += new TextDecoder().decode(chunk.value);
  }
  reader.releaseLock();
  drain(child);
}

const cli = (net: TestNet, host: string, port: number, ...args: string[]) =>
  Bun.spawnSync(['redis-cli', '-h', net.hosts.get(host)!.ip, '-p', String(port), ...args])
    .stdout.toString()
    .trim();

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

/** Redis on r1 (master), r2 and r3 (replicas), and a sentinel on each; resolves once they know each other. */
async function startRedisSet(net: TestNet, dir: string, processes: Map<string, Child>): Promise<(host: string) => void> {
  const master = net.hosts.get('r1')!.ip;
  const startRedis = (host: string) => {
    const folder = join(dir, host);
    mkdirSync(folder, { recursive: true });
    const args = ['redis-server', '--bind', net.hosts.get(host)!.ip, '--port', '6379', '--dir', folder, '--appendonly', 'yes'];
    args.push('--appendfsync', 'always', '--save', '', '--protected-mode', 'no', '--min-replicas-to-write', '1');
    if (host !== 'r1' && !existsSync(join(folder, 'appendonlydir'))) args.push('--replicaof', master, '6379');
    processes.set(`redis-${host}`, net.spawn(host, args));
    drain(processes.get(`redis-${host}`)!);
  };
  for (const host of REDIS_HOSTS) startRedis(host);
  await until('the replicas to sync', () =>
    ['r2', 'r3'].every((h) => /master_link_status:up/.test(cli(net, h, 6379, 'info', 'replication'))),
  );
  for (const host of REDIS_HOSTS) {
    const file = join(dir, `sentinel-${host}.conf`);
    const lines = ['port 26379', `bind ${net.hosts.get(host)!.ip}`, 'protected-mode no', `sentinel monitor spike ${master} 6379 2`];
    lines.push(`sentinel down-after-milliseconds spike ${DOWN_AFTER_MS}`, 'sentinel failover-timeout spike 10000');
    writeFileSync(file, `${lines.join('\n')}\n`);
    processes.set(`sentinel-${host}`, net.spawn(host, ['redis-server', file, '--sentinel']));
    drain(processes.get(`sentinel-${host}`)!);
  }
  await until('the sentinels to know the set', () =>
    REDIS_HOSTS.every((h) => /num-slaves\n2\n[\s\S]*num-other-sentinels\n2\n/.test(cli(net, h, 26379, 'sentinel', 'master', 'spike'))),
  );
  return startRedis;
}

/** PostgreSQL on db:5432 (Debian's binaries, as the postgres user), open to the test subnet; its URL and its stop. */
async function startPostgres(net: TestNet, dir: string, processes: Map<string, Child>): Promise<{ url: string; stop: () => void }> {
  const bin = readdirSync('/usr/lib/postgresql')
    .map((v) => `/usr/lib/postgresql/${v}/bin`)
    .find((b) => existsSync(`${b}/initdb`));
  if (!bin) throw new Error('PostgreSQL is not installed: apt-get install -y postgresql');
  const data = join(dir, 'db');
  mkdirSync(data, { recursive: true });
  Bun.spawnSync(['chown', '-R', 'postgres:postgres', data]);
  const init = Bun.spawnSync(['runuser', '-u', 'postgres', '--', `${bin}/initdb`, '-D', `${data}/pg`, '-U', 'postgres', '--auth=trust']);
  if (init.exitCode !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  appendFileSync(`${data}/pg/pg_hba.conf`, 'host all all 0.0.0.0/0 trust\n');
  const ip = net.hosts.get('db')!.ip;
  const server = net.spawn('db', ['runuser', '-u', 'postgres', '--', `${bin}/postgres`, '-D', `${data}/pg`, '-h', ip, '-k', data]);
  processes.set('postgres', server);
  drain(server);
  await until('PostgreSQL', () => Bun.spawnSync([`${bin}/pg_isready`, '-h', ip, '-p', '5432']).exitCode === 0);
  // runuser passes no signal on: pg_ctl stops the postmaster itself.
  const stop = () => void Bun.spawnSync(['runuser', '-u', 'postgres', '--', `${bin}/pg_ctl`, '-D', `${data}/pg`, 'stop', '-m', 'fast']);
  return { url: `postgres://postgres@${ip}:5432/postgres`, stop };
}

/** nginx on edge:80 in front of every node's workers, exempting the load generator (the test's side of the bridge). */
async function startEdge(net: TestNet, dir: string, processes: Map<string, Child>): Promise<void> {
  const runtimeDir = join(dir, 'nginx');
  makeRuntimeDirs(runtimeDir);
  const ip = net.hosts.get('edge')!.ip;
  const upstreams = NODES.flatMap((n) => WORKER_PORTS.map((port) => ({ host: net.hosts.get(n)!.ip, port, weight: 1 })));
  const limits = { rate: 10, burst: 20, conn: 50, ipv6Prefix: 64, exempt: ['127.0.0.0/8', `${net.gateway}/32`] };
  const conf = renderNginxConf(readFileSync(NGINX_TEMPLATE, 'utf8'), { listen: `${ip}:80`, upstreams, runtimeDir, limits });
  const confPath = join(runtimeDir, 'nginx.conf');
  writeFileSync(confPath, conf);
  const child = net.spawn('edge', ['nginx', '-p', runtimeDir, '-e', `${runtimeDir}/error.log`, '-c', confPath, '-g', 'daemon off;']);
  processes.set('nginx', child);
  drain(child);
  await until('nginx', async () => (await fetch(`http://${ip}/livez`).catch(() => null))?.status === 200, 20_000);
}

export async function startTopology(dir: string, total: number, say: (line: string) => void): Promise<Topology> {
  const net = startTestNet(['edge', ...NODES, ...REDIS_HOSTS, 'db']);
  if (net.kind !== 'namespaces') {
    net.close();
    throw new Error('network namespaces are not available here (run as root, with iproute2)');
  }
  const processes = new Map<string, Child>();
  const ip = (host: string) => net.hosts.get(host)!.ip;
  let stopPostgres = () => {};
  try {
    const startRedis = await startRedisSet(net, dir, processes);
    say(`redis: master ${ip('r1')}:6379, replicas ${ip('r2')} and ${ip('r3')}, a sentinel on each (:26379)`);
    const postgres = await startPostgres(net, dir, processes);
    stopPostgres = postgres.stop;
    const databaseUrl = postgres.url;
    say(`postgresql: ${ip('db')}:5432`);
    const sentinels = REDIS_HOSTS.map((h) => `${ip(h)}:26379`);
    const nodeEnv = (name: string, first: boolean): Record<string, string> => ({
      REDIS_SENTINELS: sentinels.join(','),
      DATABASE_URL: databaseUrl,
      SPIKE_WAIT_REPLICAS: '1',
      SPIKE_WAIT_MS: '500',
      SPIKE_HOST: ip(name),
      SPIKE_PORTS: WORKER_PORTS.join(','),
      SPIKE_TRUSTED_PROXIES: ip('edge'),
      SPIKE_QUEUE_SECRET: QUEUE_SECRET,
      SPIKE_TOTAL: String(total),
      ...(first ? { SPIKE_RESET: 'force' } : {}),
      SPIKE_NODE_ID: name,
      SPIKE_NGINX: '0',
      SPIKE_ADMIN_PORT: '0',
      SPIKE_DATA_DIR: join(dir, name),
      SPIKE_LOG_DIR: join(dir, name, 'logs'),
    });
    const startNode = async (name: string, first = false) => {
      const child = net.spawn(
        name,
        [process.execPath, join(import.meta.dir, '..', '..', '..', 'src', 'cli', 'start.ts')],
        nodeEnv(name, first),
      );
      processes.set(name, child);
      await waitFor(child, 'ready:', `node ${name}`);
    };
    for (const [i, name] of NODES.entries()) await startNode(name, i === 0);
    say(`nodes: ${NODES.map((n) => `${n} ${ip(n)}:${WORKER_PORTS.join(',')}`).join('; ')} (SPIKE_WAIT_REPLICAS=1)`);
    await startEdge(net, dir, processes);
    say(`nginx: http://${ip('edge')}/ in front of the ${NODES.length * WORKER_PORTS.length} workers`);
    return {
      net,
      url: `http://${ip('edge')}`,
      sentinels,
      databaseUrl,
      masterHost: () => cli(net, 'r2', 26379, 'sentinel', 'get-master-addr-by-name', 'spike').split('\n')[0]!,
      killRedis: async (host) => {
        const server = processes.get(`redis-${host}`)!;
        server.kill('SIGKILL');
        await server.exited;
      },
      startRedis,
      restartNode: async (name) => {
        const started = Date.now();
        const node = processes.get(name)!;
        node.kill('SIGTERM');
        const exitCode = await node.exited;
        await startNode(name);
        return { exitCode, ms: Date.now() - started };
      },
      close: () => stopAll(net, processes, stopPostgres),
    };
  } catch (error) {
    await stopAll(net, processes, stopPostgres);
    throw error;
  }
}

/** The nodes first (they flush their orders), then nginx, Redis, the sentinels and PostgreSQL. */
async function stopAll(net: TestNet, processes: Map<string, Child>, stopPostgres: () => void): Promise<void> {
  for (const name of NODES) processes.get(name)?.kill('SIGTERM');
  await Promise.all(NODES.map((n) => processes.get(n)?.exited));
  for (const [name, child] of processes) if (!NODES.includes(name as (typeof NODES)[number]) && name !== 'postgres') child.kill('SIGTERM');
  stopPostgres();
  await Promise.all([...processes.values()].map((c) => c.exited));
  net.close();
}
