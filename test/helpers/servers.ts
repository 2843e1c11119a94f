/** Real redis-server and nginx processes for tests, on free loopback ports in temporary folders. */
import Redis from 'ioredis';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createRedis, waitReady, type RedisClient } from '../../src/redis/client.ts';
import { startNginx, weightedUpstreams, type EdgeLimits, type Nginx } from '../../src/services/nginx.ts';
import { startRedisServer, type RedisServer } from '../../src/services/redis-server.ts';
import { freePort } from '../../src/services/free-port.ts';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `spike-${prefix}-`));
}

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** A plain client for the test's own reads and writes. */
  readonly client: Redis;
  /** Stops the server (SIGTERM: the AOF is flushed), keeping its data folder. */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder. */
  start(): Promise<void>;
  /** Stops it for good and removes its folder. */
  close(): Promise<void>;
}

/** A private redis-server with AOF on. Fails (never skips) when redis-server is missing. */
export async function startTestRedis(): Promise<TestRedis> {
  const dir = tempDir('redis');
  let server: RedisServer | undefined = await startRedisServer({ dir });
  const port = server.port;
  const client = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  client.on('error', () => {});
  return {
    url: server.url,
    port,
    client,
    stop: async () => {
      await server?.stop();
      server = undefined;
    },
    start: async () => {
      server = await startRedisServer({ dir, port });
    },
    close: async () => {
      client.disconnect();
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** nginx with the runtime copy of nginx.conf on a free loopback port, in front of `ports`. */
export async function startTestNginx(
  ports: readonly number[],
  options: { host?: string; limits?: EdgeLimits } = {},
): Promise<Nginx & { url: string; close(): Promise<void> }> {
  const dir = tempDir('nginx');
  const port = await freePort();
  const host = options.host ?? '127.0.0.1';
  const nginx = await startNginx({
    listen: `${host}:${port}`,
    upstreams: weightedUpstreams('127.0.0.1', ports),
    runtimeDir: dir,
    limits: options.limits,
  });
  return {
    ...nginx,
    url: `http://${host}:${port}`,
    close: async () => {
      await nginx.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `n` distinct free loopback ports. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export interface TestPostgres {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A private PostgreSQL from Debian's package, on a free loopback port in a temporary folder.
 * PostgreSQL refuses to run as root, so initdb and postgres run as the `postgres` user.
 * Fails (never skips) when the package is missing.
 */
export async function startTestPostgres(): Promise<TestPostgres> {
  const bin = readdirSync('/usr/lib/postgresql', { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => `/usr/lib/postgresql/${d.name}/bin`)
    .find((dir) => existsSync(`${dir}/initdb`));
  if (!bin) throw new Error('PostgreSQL is not installed: apt-get install -y postgresql');
  const dir = tempDir('postgres');
  const asPostgres = (cmd: string[]) => (process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', ...cmd] : cmd);
  if (process.getuid?.() === 0) Bun.spawnSync(['chown', '-R', 'postgres:postgres', dir]);
  const init = Bun.spawnSync(asPostgres([`${bin}/initdb`, '-D', `${dir}/data`, '-U', 'postgres', '--auth=trust', '--no-sync']), {
    stdout: 'pipe',
    stderr: 'pipe',
  });
  if (init.exitCode !== 0) throw new Error(`initdb failed: ${init.stderr.toString()}`);
  const port = await freePort();
  const server = Bun.spawn(
    asPostgres([`${bin}/postgres`, '-D', `${dir}/data`, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off']),
    { stdout: 'ignore', stderr: 'pipe' },
  );
  const deadline = Date.now() + 20_000;
  while (Bun.spawnSync([`${bin}/pg_isready`, '-h', '127.0.0.1', '-p', String(port)]).exitCode !== 0) {
    if (server.exitCode !== null) throw new Error(`postgres exited: ${await new Response(server.stderr).text()}`);
    if (Date.now() > deadline) throw new Error('postgres did not start within 20 s');
    await Bun.sleep(100);
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    close: async () => {
      // runuser does not pass signals on; pg_ctl stops the postmaster itself (fast: no waiting for clients).
      Bun.spawnSync(asPostgres([`${bin}/pg_ctl`, '-D', `${dir}/data`, 'stop', '-m', 'fast']), { stdout: 'ignore', stderr: 'ignore' });
      await server.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `n` free ports that can each host a cluster node: a node also listens on its port + 10 000 (the
 * cluster bus), so the port must be at most 55 535 and that bus port free too.
 */
export async function clusterPorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let tries = 0; ports.size < n; tries++) {
    if (tries > 10_000) throw new Error('no free ports with a free cluster bus port');
    const port = await freePort();
    if (port > 55_535 || ports.has(port) || ports.has(port + 10_000) || ports.has(port - 10_000)) continue;
    if (await canBind(port + 10_000)) ports.add(port);
  }
  return [...ports];
}

/** Whether nothing listens on `port` (loopback) right now. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface TestCluster {
  /** `host:port` of every node, masters first. */
  readonly nodes: readonly string[];
  /** Kills one node with SIGKILL (its replica takes over after cluster-node-timeout). */
  kill(node: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real Redis Cluster on loopback: three masters and three replicas (`redis-server
 * --cluster-enabled yes`, joined by `redis-cli --cluster create`), AOF on, failover after 1 s.
 */
export async function startTestCluster(): Promise<TestCluster> {
  const dir = tempDir('cluster');
  const ports = await clusterPorts(6);
  const servers = new Map<string, ReturnType<typeof Bun.spawn>>();
  for (const port of ports) {
    const nodeDir = join(dir, String(port));
    mkdirSync(nodeDir);
    servers.set(
      `127.0.0.1:${port}`,
      Bun.spawn(
        [
          'redis-server',
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '1000',
          '--dir',
          nodeDir,
          '--appendonly',
          'yes',
          '--save',
          '',
          '--logfile',
          join(nodeDir, 'log'),
        ],
        { stdout: 'ignore', stderr: 'ignore' },
      ),
    );
  }
  const nodes = [...servers.keys()];
  const ping = (node: string) =>
    Bun.spawnSync(['redis-cli', '-h', '127.0.0.1', '-p', node.split(':')[1]!, 'ping'])
      .stdout.toString()
      .trim() === 'PONG';
  const deadline = Date.now() + 10_000;
  while (!nodes.every(ping)) {
    if (Date.now() > deadline) throw new Error('cluster nodes did not start');
    await Bun.sleep(50);
  }
  const create = Bun.spawnSync(['redis-cli', '--cluster', 'create', ...nodes, '--cluster-replicas', '1', '--cluster-yes'], {
    stdout: 'pipe',
    stderr: 'pipe',
  });
  if (create.exitCode !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
  const ok = (node: string) =>
    Bun.spawnSync(['redis-cli', '-p', node.split(':')[1]!, 'cluster', 'info'])
      .stdout.toString()
      .includes('cluster_state:ok');
  // A replica can take over only once its first sync is done (the master may first finish its AOF rewrite).
  const synced = (node: string) => {
    const info = Bun.spawnSync(['redis-cli', '-p', node.split(':')[1]!, 'info', 'replication']).stdout.toString();
    return info.includes('role:master') || info.includes('master_link_status:up');
  };
  while (!nodes.every((n) => ok(n) && synced(n))) {
    if (Date.now() > deadline + 20_000) throw new Error('cluster did not reach cluster_state:ok with every replica in sync');
    await Bun.sleep(100);
  }
  return {
    nodes,
    kill: async (node) => {
      const server = servers.get(node)!;
      server.kill('SIGKILL');
      await server.exited;
    },
    close: async () => {
      for (const server of servers.values()) server.kill('SIGTERM');
      await Promise.all([...servers.values()].map((s) => s.exited));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A private redis-server and a client made the way spike makes its own (`createRedis`: scripts
 * defined, fails fast), ready to use. `redis.close()` also closes the client.
 */
export async function startTestRedisWithClient(name: string, timeoutMs = 2000): Promise<{ redis: TestRedis; client: RedisClient }> {
  const redis = await startTestRedis();
  const client = createRedis(redis.url, { timeoutMs, name });
  await waitReady(client, 5000, redis.url);
  return {
    client,
    redis: {
      ...redis,
      close: async () => {
        client.disconnect();
        await redis.close();
      },
    },
  };
}

/** A private Redis whose data folder can be copied and put back, as a backup restore would. */
export class RestorableRedis {
  readonly dir = tempDir('restorable');
  readonly #copy = tempDir('restorable-copy');
  server!: RedisServer;

  async start(port?: number): Promise<void> {
    this.server = await startRedisServer({ dir: this.dir, port });
  }

  /** Copies the data as it is now (Redis stops for the copy, and starts again on its port). */
  async snapshot(): Promise<void> {
    await this.server.stop();
    rmSync(this.#copy, { recursive: true, force: true });
    cpSync(this.dir, this.#copy, { recursive: true });
    await this.start(this.server.port);
  }

  /** Kills Redis and starts it from the copy: every write since the snapshot is lost. */
  async restoreSnapshot(): Promise<void> {
    this.server.process.kill('SIGKILL');
    await this.server.process.exited;
    rmSync(this.dir, { recursive: true, force: true });
    cpSync(this.#copy, this.dir, { recursive: true });
    rmSync(`${this.dir}/redis.pid`, { force: true });
    await this.start(this.server.port);
  }

  /** Freezes Redis (SIGSTOP): connections stay open, nothing is answered. */
  freeze(): void {
    this.server.process.kill('SIGSTOP');
  }

  thaw(): void {
    this.server.process.kill('SIGCONT');
  }

  /** Kills Redis (SIGKILL) and starts it again on its port from its own data: nothing acknowledged is lost. */
  async killAndRestart(): Promise<void> {
    this.server.process.kill('SIGKILL');
    await this.server.process.exited;
    rmSync(`${this.dir}/redis.pid`, { force: true });
    await this.start(this.server.port);
  }

  async close(): Promise<void> {
    await this.server.stop();
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.#copy, { recursive: true, force: true });
  }
}
