/** Everything a bench run starts: its own Redis, the supervisor (workers + nginx), and the bare-Bun baseline. */
import Redis from 'ioredis';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nginxLimits } from '../../src/config.ts';
import type { RedisClient } from '../../src/redis/client.ts';
import { DEFAULT_SALE, keyList, queueKeys, SALES_KEY, saleKeys, SOLD_FIELD, TOTAL_FIELD } from '../../src/redis/keys.ts';
import { setQueue } from '../../src/redis/queue.ts';
import { startNginx, weightedUpstreams } from '../../src/services/nginx.ts';
import { raiseOpenFiles } from '../../src/services/open-files.ts';
import { ensureSale } from '../../src/redis/sale.ts';
import { unwrittenEvents } from '../../src/orders/audit.ts';
import { freePort } from '../../src/services/free-port.ts';
import { CHANGES_CHANNEL, SALES_CHANGED } from '../../src/redis/changes.ts';
import { startRedisServer, type RedisServer } from '../../src/services/redis-server.ts';

const ROOT = join(import.meta.dir, '..', '..');
export const keys = saleKeys(DEFAULT_SALE);

export interface System {
  readonly redis: Redis;
  readonly redisUrl: string;
  readonly workerUrls: readonly string[];
  readonly nginxUrl: string;
  readonly baselineUrl: string;
  /** Bun + ioredis, one Lua call per request doing the purchase's checks, count and XADD (baseline-durable.ts). */
  readonly durableUrl: string;
  readonly durablePid: number;
  /** nginx with the same rendered config in front of four bare Bun.serve: the ceiling of every nginx phase. */
  readonly nginxBaselineUrl: string;
  readonly supervisorPid: number;
  /** The supervisor's admin API (the dashboards' events), and its token. */
  readonly adminUrl: string;
  readonly adminToken: string;
  readonly baselinePid: number;
  readonly redisPid: number;
  /** Starts a fresh default sale of `total` tickets and waits until the workers see it and Redis is not rewriting its AOF. */
  newSale(total: number): Promise<void>;
  /** Ends the current sale (total = sold) and waits until the workers see it sold out and Redis is not rewriting its AOF. */
  finishSale(): Promise<void>;
  /** Waits until the order writer has written every order of the sale; returns the seconds it took. */
  writerCaughtUp(): Promise<number>;
  /**
   * Waits until Redis is not rewriting its AOF: a rewrite started by the previous phase's writes
   * is a process of its own that would take a core from the next phase.
   */
  aofQuiet(): Promise<void>;
  stock(sale?: string): Promise<{ total: number; sold: number; soldOut: boolean; local: { sales: number; answered: number } }[]>;
  /** Requests answered so far: by the workers (their purchase answers), or by the bare servers. */
  answered(which: 'workers' | 'baseline' | 'durable'): Promise<number>;
  /** Puts the current default sale behind a waiting room, and waits until every worker knows. */
  queueSale(admitPerSecond: number): Promise<void>;
  /** Registers `count` more sales `bs0`, `bs1`, … of `total` tickets each, and waits until every worker serves them. */
  addSales(count: number, total: number): Promise<void>;
  /** Redis commands run since the last reset (INFO commandstats, counting those scripts run), and script calls. */
  commands(): Promise<{ calls: number; scripts: number }>;
  resetCommands(): Promise<void>;
  /** Resident memory of the supervisor process (all four worker threads), in MiB. */
  rssMiB(): number;
  stop(): Promise<void>;
}

async function readUntil(stream: ReadableStream<Uint8Array>, marker: string, ms: number): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + ms;
  try {
    while (!text.includes(marker)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${marker}" within ${ms} ms:\n${text}`);
      const chunk = await Promise.race([reader.read(), Bun.sleep(left).then(() => null)]);
      if (!chunk) continue;
      if (chunk.done) throw new Error(`process ended before "${marker}":\n${text}`);
      text += decoder.decode(chunk.value);
    }
  } finally {
    reader.releaseLock();
  }
  return text;
}

/** Reads the rest of a child's output so a full pipe never blocks it. */
function drain(stream: ReadableStream<Uint8Array>, into: (text: string) => void): void {
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) into(decoder.decode(chunk));
  })();
}

/** A bare Bun.serve (baseline-server.ts) on `port`, or another baseline `script` (with `env`). */
async function startBaseline(
  port: number,
  started: { kill(signal?: number | NodeJS.Signals): void; exited: Promise<number> }[],
  script = 'baseline-server.ts',
  env: Record<string, string> = {},
): Promise<Bun.Subprocess<'ignore', 'pipe', 'inherit'>> {
  const baseline = Bun.spawn([process.execPath, join(import.meta.dir, '..', script)], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'inherit',
  });
  started.push(baseline);
  await readUntil(baseline.stdout, 'listening', 10_000);
  drain(baseline.stdout, () => {});
  return baseline;
}

export async function startSystem(say: (line: string) => void): Promise<System> {
  const dir = mkdtempSync(join(tmpdir(), 'spike-bench-'));
  const started: { kill(signal?: number | NodeJS.Signals): void; exited: Promise<number> }[] = [];
  try {
    return await start(dir, started, say);
  } catch (error) {
    // Leave nothing running behind a failed start.
    for (const child of started.reverse()) {
      child.kill('SIGTERM');
      await child.exited;
    }
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function start(
  dir: string,
  started: { kill(signal?: number | NodeJS.Signals): void; exited: Promise<number> }[],
  say: (line: string) => void,
): Promise<System> {
  const redisServer: RedisServer = await startRedisServer({ dir: join(dir, 'redis') });
  started.push(redisServer.process);
  const redis = new Redis(redisServer.url, { enableAutoPipelining: true });
  started.push({ kill: () => redis.disconnect(), exited: Promise.resolve(0) });
  say(`redis-server on ${redisServer.url}`);
  await redis
    .multi()
    .del(...keyList(keys))
    .hset(keys.sale, TOTAL_FIELD, 10_000, SOLD_FIELD, 0)
    .exec();

  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const nginxPort = await freePort();
  const adminPort = await freePort();
  const adminToken = `bench-${crypto.randomUUID()}`;
  const supervisor = Bun.spawn([process.execPath, join(ROOT, 'src', 'cli', 'start.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      REDIS_URL: redisServer.url,
      SPIKE_PORTS: ports.join(','),
      SPIKE_TOTAL: '10000',
      SPIKE_NGINX: '1',
      SPIKE_NGINX_LISTEN: `127.0.0.1:${nginxPort}`,
      SPIKE_DATA_DIR: join(dir, 'data'),
      SPIKE_LOG_DIR: join(dir, 'logs'),
      SPIKE_ADMIN_PORT: String(adminPort),
      SPIKE_ADMIN_TOKEN: adminToken,
      // The dashboards phase: 200 let in (what a big operations room keeps open), the rest refused.
      SPIKE_DASHBOARD_STREAMS: '200',
    },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  started.push(supervisor);
  let supervisorErr = '';
  drain(supervisor.stderr, (t) => (supervisorErr += t));
  await readUntil(supervisor.stdout, 'ready:', 30_000).catch((e) => {
    throw new Error(`${e.message}\n${supervisorErr}`);
  });
  drain(supervisor.stdout, () => {});
  say(`supervisor pid ${supervisor.pid}: workers on ${ports.join(', ')}, nginx on ${nginxPort}`);

  const baselinePort = await freePort();
  const baseline = await startBaseline(baselinePort, started);
  const bare = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const bareServers: { kill(): void }[] = [];
  for (const port of bare) bareServers.push(await startBaseline(port, started));
  const nginxBaselinePort = await freePort();
  const nginxBaseline = await startNginx({
    listen: `127.0.0.1:${nginxBaselinePort}`,
    upstreams: weightedUpstreams('127.0.0.1', bare),
    runtimeDir: join(dir, 'nginx-baseline'),
    limits: nginxLimits({}),
    openFiles: raiseOpenFiles()?.limit,
  });
  started.push({ kill: () => void nginxBaseline.stop(), exited: nginxBaseline.process.exited });
  const durablePort = await freePort();
  const durable = await startBaseline(durablePort, started, 'baseline-durable.ts', { REDIS_URL: redisServer.url });
  say(
    `baseline: bare Bun.serve on ${baselinePort}; nginx in front of four more on ${bare.join(', ')}; the durable baseline on ${durablePort}`,
  );

  const aofQuiet = async () => {
    const deadline = Date.now() + 120_000;
    while (/aof_rewrite_in_progress:1|aof_rewrite_scheduled:1/.test(await redis.info('persistence'))) {
      if (Date.now() > deadline) throw new Error('Redis was still rewriting its AOF after 120 s');
      await Bun.sleep(50);
    }
  };
  const workerUrls = ports.map((p) => `http://127.0.0.1:${p}`);
  type Stock = Awaited<ReturnType<System['stock']>>[number];
  const stock = (sale?: string) =>
    Promise.all(workerUrls.map(async (u) => (await fetch(`${u}/stock${sale ? `?sale=${sale}` : ''}`)).json() as Promise<Stock>));
  const bareUrls = [baselinePort, ...bare].map((p) => `http://127.0.0.1:${p}`);
  const waitFor = async (what: string, ok: (s: Awaited<ReturnType<typeof stock>>) => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!ok(await stock())) {
      if (Date.now() > deadline) throw new Error(`workers did not see ${what} within 10 s`);
      await Bun.sleep(20);
    }
  };

  return {
    redis,
    redisUrl: redisServer.url,
    workerUrls,
    nginxUrl: `http://127.0.0.1:${nginxPort}`,
    baselineUrl: `http://127.0.0.1:${baselinePort}`,
    durableUrl: `http://127.0.0.1:${durablePort}`,
    durablePid: durable.pid,
    nginxBaselineUrl: `http://127.0.0.1:${nginxBaselinePort}`,
    supervisorPid: supervisor.pid,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    adminToken,
    baselinePid: baseline.pid,
    redisPid: redisServer.process.pid,
    newSale: async (total) => {
      // As bun run start --reset does: the newest stream id survives (see ensureSale).
      await ensureSale(redis, keys, total, true);
      // Changed behind the node's back: said as the admin API says it, so the node reads it now.
      await redis.publish(CHANGES_CHANNEL, `bench ${DEFAULT_SALE}`);
      await waitFor(`a new sale of ${total}`, (all) => all.every((s) => s.total === total && s.sold === 0 && !s.soldOut));
      await aofQuiet();
    },
    finishSale: async () => {
      const sold = Number(await redis.hget(keys.sale, SOLD_FIELD));
      await redis.hset(keys.sale, TOTAL_FIELD, sold);
      await redis.publish(CHANGES_CHANNEL, `bench ${DEFAULT_SALE}`);
      await waitFor('the sale sold out', (all) => all.every((s) => s.soldOut));
      await aofQuiet();
    },
    writerCaughtUp: async () => {
      const started = performance.now();
      const deadline = Date.now() + 120_000;
      while ((await unwrittenEvents(redis, keys)) > 0) {
        if (Date.now() > deadline) throw new Error('the order writer did not catch up within 120 s');
        await Bun.sleep(50);
      }
      return (performance.now() - started) / 1000;
    },
    aofQuiet,
    stock,
    answered: async (which) => {
      if (which === 'workers') return (await stock()).reduce((sum, s) => sum + s.local.answered, 0);
      const urls = which === 'durable' ? [`http://127.0.0.1:${durablePort}`] : bareUrls;
      const counts = await Promise.all(urls.map(async (u) => Number(await (await fetch(`${u}/count`)).text())));
      return counts.reduce((a, b) => a + b, 0);
    },
    queueSale: async (admitPerSecond) => {
      await setQueue(redis as unknown as RedisClient, queueKeys(DEFAULT_SALE), { admissionMs: 120_000, admitPerSecond });
      await redis.publish(CHANGES_CHANNEL, `bench ${DEFAULT_SALE}`);
      const deadline = Date.now() + 10_000;
      for (const url of workerUrls)
        while ((await fetch(`${url}/queue/status`)).status !== 400) {
          if (Date.now() > deadline) throw new Error('workers did not see the waiting room within 10 s');
          await Bun.sleep(20);
        }
    },
    addSales: async (count, total) => {
      const ids = Array.from({ length: count }, (_, i) => `bs${i}`);
      for (const id of ids) await ensureSale(redis as unknown as RedisClient, saleKeys(id), total, true);
      await redis.sadd(SALES_KEY, ...ids);
      // As the admin API does: the nodes read the list, and each sale (some existed with another total), now.
      await redis.publish(CHANGES_CHANNEL, `bench ${SALES_CHANGED}`);
      await Promise.all(ids.map((id) => redis.publish(CHANGES_CHANNEL, `bench ${id}`)));
      const deadline = Date.now() + 60_000;
      for (const id of ids)
        while (!(await stock(id).catch(() => [])).every((s) => s.total === total)) {
          if (Date.now() > deadline) throw new Error(`workers did not serve sale ${id} within 60 s`);
          await Bun.sleep(20);
        }
    },
    commands: async () => {
      const stats = await redis.info('commandstats');
      const all = [...stats.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)];
      const calls = all.reduce((sum, m) => sum + Number(m[2]), 0);
      const scripts = all.filter((m) => /^(evalsha|eval)$/.test(m[1]!)).reduce((sum, m) => sum + Number(m[2]), 0);
      return { calls, scripts };
    },
    resetCommands: async () => {
      await redis.config('RESETSTAT');
    },
    rssMiB: () => {
      const status = readFileSync(`/proc/${supervisor.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
    },
    stop: async () => {
      await nginxBaseline.stop();
      for (const server of bareServers) server.kill();
      durable.kill();
      baseline.kill();
      supervisor.kill('SIGTERM');
      await supervisor.exited;
      redis.disconnect();
      await redisServer.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
