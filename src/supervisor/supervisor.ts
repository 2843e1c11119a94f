/** The supervisor: starts Redis (or uses REDIS_URL), the workers, the background tasks and nginx, and stops them in order. */
import type { RedisClient as Redis } from '../redis/client.ts';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, type Config } from '../config.ts';
import { createRedis, waitReady, type RedisTarget } from '../redis/client.ts';
import { lossWindows } from '../redis/persistence.ts';
import { ensureSale } from '../redis/sale.ts';
import { DEFAULT_SALE, saleKeys } from '../redis/keys.ts';
import { nginxInstalled, startNginx, weightedUpstreams, type Nginx } from '../services/nginx.ts';
import { startRedisServer, type RedisServer } from '../services/redis-server.ts';
import type { LocalStock } from '../stock/local-stock.ts';
import { startBackgroundWriter, type BackgroundWriter } from '../orders/background-writer.ts';
import { DEFAULT_SHAVING } from '../orders/writer.ts';
import { Reaper } from '../orders/reaper.ts';
import { openOrderDb } from '../orders/db.ts';
import { Reconciler } from '../orders/reconciler.ts';
import { orderKey } from '../orders/secret.ts';
import { StockSync } from '../stock/sync.ts';
import { createAdminApp } from '../http/admin.ts';
import { SaleBook } from '../stock/sale-book.ts';
import { SALES_KEY } from '../redis/keys.ts';
import { WorkerPool } from './worker-pool.ts';

/** How often each sale's Redis stream is compared with the order database's mark. */
const RECONCILE_MS = 2000;

export interface Supervisor {
  readonly config: Config;
  /** The Redis (URL) or Redis Cluster (seed nodes) this supervisor uses. */
  readonly redis: RedisTarget;
  /** The default sale's local stock. */
  readonly stock: LocalStock;
  readonly book: SaleBook;
  readonly pool: WorkerPool;
  readonly sync: StockSync;
  readonly reconciler: Reconciler;
  readonly reaper: Reaper;
  /** The order writer's thread; undefined when SPIKE_WRITER=0. */
  readonly writer: BackgroundWriter | undefined;
  readonly nginx: Nginx | undefined;
  /** Stops accepting, lets in-flight requests finish, flushes logs, closes Redis, stops the children. */
  stop(): Promise<void>;
}

export interface SupervisorOptions {
  readonly say?: (line: string) => void;
  /** A worker could not be restarted (e.g. its port was taken meanwhile). Default: log it. */
  readonly onFatal?: (error: Error) => void;
}

/** Starts everything `config` asks for; on a failure half-way, stops what it had started and throws. */
export async function startSupervisor(config: Config, { say = console.log, onFatal = (e) => console.error(`[supervisor] ${e.message}`) }: SupervisorOptions = {}): Promise<Supervisor> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await step().catch((e) => console.error(`[supervisor] while stopping: ${e}`));
    cleanups.length = 0;
  };
  try {
    let redisServer: RedisServer | undefined;
    if (!config.redisUrl && !config.redisCluster) {
      redisServer = await startRedisServer({ dir: config.dataDir, appendfsync: config.appendfsync });
      cleanups.push(() => redisServer!.stop().then(() => say('stopped: redis-server')));
      say(`redis-server started on ${redisServer.url} (data in ${redisServer.dir})`);
      // So `bun run audit` finds the private Redis while this supervisor runs.
      writeFileSync(join(redisServer.dir, 'redis.url'), redisServer.url);
    }
    const target: RedisTarget = config.redisCluster ?? config.redisUrl ?? redisServer!.url;
    const described = typeof target === 'string' ? target.replace(/\/\/[^@]*@/, '//***@') : `the cluster ${target.join(',')}`;
    const redis: Redis = createRedis(target, { timeoutMs: config.redisTimeoutMs, name: 'spike-supervisor' });
    cleanups.push(() => redis.quit().catch(() => redis.disconnect()));
    await waitReady(redis, 10_000, described);
    // A Redis someone else runs may not keep what it acknowledged: say so once, with the window.
    if (!redisServer) for (const line of await lossWindows(redis, described)) say(`warning: ${line}`);

    const keys = saleKeys(DEFAULT_SALE);
    const sale = await ensureSale(redis, keys, config.total, config.reset);
    say(`sale ${keys.sale}: ${sale.sold} of ${sale.total} sold${config.reset ? ' (reset)' : sale.created ? ' (new)' : ' (continuing)'}`);

    await redis.sadd(SALES_KEY, DEFAULT_SALE);

    // The order database is the second record of every sale: the reconciler restores from it
    // what Redis lost. Without the writer nothing keeps it current, so it is not opened.
    const db = config.writer ? await openOrderDb(config.databaseUrl, config.dbPath).catch((error: unknown) => {
      throw new Error(`order writer: cannot open the order database: ${error instanceof Error ? error.message : error}`);
    }) : undefined;
    if (db) cleanups.push(() => db.close());
    if (db && config.reset) {
      const archived = await db.archive(DEFAULT_SALE);
      if (archived > 0) say(`sale ${DEFAULT_SALE}: its ${archived} earlier orders moved to the orders_archive table (reset)`);
    }

    let pool: WorkerPool | undefined;
    let writer: BackgroundWriter | undefined;
    const book = new SaleBook({
      workers: config.ports.length,
      localStock: config.localStock,
      // A sale added later (admin API, another node) reaches the running workers at once.
      onAdded: (entry) => {
        pool?.addSale({ id: entry.id, buffer: entry.stock.buffer });
        writer?.setSales(book.all().map((e) => e.id));
      },
    });
    const stock = book.add(DEFAULT_SALE).stock;
    // Sales other nodes or the admin API made, so they are checked too; a failure here (a cluster
    // mid-failover) only delays that to the sync's next round.
    await book.discover(redis).catch(() => {});
    let sync: StockSync | undefined;
    const watched = () => book.all().map((entry) => ({ id: entry.id, keys: entry.keys, seen: () => entry.stock.seen() }));
    const reconciler = new Reconciler(redis, db, { sales: watched, payWindowMs: config.payWindowMs, intervalMs: RECONCILE_MS, say, onResumed: () => void sync?.kick() });
    // Before any worker sells: a sale whose Redis lost writes is restored first.
    await reconciler.checkAll();
    reconciler.start();
    cleanups.push(() => reconciler.stop());
    sync = new StockSync(redis, book, { localStock: config.localStock, buffer: config.buffer, intervalMs: config.syncMs, onBehind: (id) => void reconciler.check(id) });
    await sync.syncOnce();
    sync.start();
    cleanups.push(() => sync.stop());

    pool = new WorkerPool({
      ports: config.ports,
      host: config.host,
      sales: () => book.all().map((entry) => ({ id: entry.id, buffer: entry.stock.buffer })),
      defaultSale: DEFAULT_SALE,
      redis: target,
      redisTimeoutMs: config.redisTimeoutMs,
      // A dry worker's top-up comes within one sync round; wait at most one sync period for it.
      refillWaitMs: config.syncMs,
      payWindowMs: config.payWindowMs,
      waitReplicas: config.waitReplicas,
      waitMs: config.waitMs,
      jwtSecret: config.jwtSecret,
      orderKey: await orderKey(redis),
      logDir: resolve(config.logDir),
      statLog: { maxBytes: config.statLogMaxBytes, keep: config.statLogKeep },
      onTopUp: () => void sync.kick(),
      say,
      onFatal: (message) => onFatal(new Error(message)),
    });
    const workers = pool;
    cleanups.push(() => workers.stop().then(() => say('stopped: workers (in-flight requests answered, stat logs flushed)')));
    await pool.start();

    const saleKeyList = () => book.all().map((entry) => entry.keys);
    if (config.writer) {
      const started = await startBackgroundWriter(
        {
          redis: target,
          described,
          redisTimeoutMs: config.redisTimeoutMs + 2000,
          databaseUrl: config.databaseUrl,
          dbPath: config.dbPath,
          consumer: `writer-${config.nodeId}`,
          niceness: config.writerNice,
          shaving: { ...DEFAULT_SHAVING, maxLagMs: config.writerMaxLagMs },
          sales: book.all().map((entry) => entry.id),
        },
        say,
      );
      writer = started;
      cleanups.push(() => started.stop().then(() => say('stopped: order writer')));
      say(`order writer: order streams → ${config.databaseUrl ? 'PostgreSQL' : config.dbPath} (own thread, nice +${config.writerNice}${config.writerMaxLagMs ? `, shaving peaks above ${DEFAULT_SHAVING.hotRate} orders/s to ${DEFAULT_SHAVING.maxRate}/s, at most ${config.writerMaxLagMs / 1000} s behind` : ''})`);
    }

    // Released orders put tickets back: sync at once so the sold-out flag clears and workers refill.
    const reaper = new Reaper(redis, { sales: saleKeyList, intervalMs: config.reapMs, onReleased: () => void sync.kick() });
    reaper.start();
    cleanups.push(() => reaper.stop());

    if (config.adminPort > 0) {
      const admin = createAdminApp({ token: config.adminToken, redis, book, ports: config.ports, kick: () => void sync.kick(), restarts: (i) => workers.restarts(i) });
      let server: ReturnType<typeof Bun.serve>;
      try {
        server = Bun.serve({ port: config.adminPort, hostname: config.adminHost, fetch: admin.fetch });
      } catch (cause) {
        throw new ConfigError(`SPIKE_ADMIN_PORT=${config.adminPort}: cannot listen on ${config.adminHost}:${config.adminPort} (${cause instanceof Error ? cause.message : cause}); choose a free port, or 0 for no admin API`);
      }
      cleanups.push(async () => server.stop());
      say(`admin API on http://${config.adminHost}:${server.port}${config.adminToken ? '' : ' (refusing every call: SPIKE_ADMIN_TOKEN is not set)'}`);
    }

    let nginx: Nginx | undefined;
    if (config.nginx === 'on' || (config.nginx === 'auto' && nginxInstalled())) {
      try {
        nginx = await startNginx({
          listen: config.nginxListen,
          upstreams: weightedUpstreams(config.host === '0.0.0.0' ? '127.0.0.1' : config.host, config.ports),
          runtimeDir: `${config.dataDir}/nginx`,
        });
        cleanups.push(() => nginx!.stop().then(() => say('stopped: nginx')));
        say(`nginx listening on ${config.nginxListen} (weights ${config.ports.map((p, i) => `${p}:${i + 1}`).join(' ')}, config ${nginx.confPath})`);
      } catch (error) {
        if (config.nginx === 'on') throw error;
        say(`nginx not started (${error instanceof Error ? error.message.split('\n').slice(-1)[0] : error}); set SPIKE_NGINX_LISTEN to a free port, or SPIKE_NGINX=0 to silence this`);
      }
    } else if (config.nginx === 'auto') {
      say('nginx not installed; the workers serve directly (apt-get install -y nginx to put it in front)');
    }

    let stopping: Promise<void> | undefined;
    const supervisor: Supervisor = {
      config,
      redis: target,
      stock,
      book,
      pool,
      sync,
      reconciler,
      reaper,
      writer,
      nginx,
      stop: () => (stopping ??= cleanup()),
    };
    say(`ready: node ${config.nodeId}, ${config.ports.length} workers on ${config.ports.join(', ')}, total ${sale.total}, local stock ${config.localStock} per worker`);
    return supervisor;
  } catch (error) {
    await cleanup();
    throw error;
  }
}
