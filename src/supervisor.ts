/** `bun run start`: the supervisor process. Starts Redis (or uses REDIS_URL), the workers, the sync task and nginx. */
import type Redis from 'ioredis';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createRedis, waitReady } from './redis/client.ts';
import { DEFAULT_SALE, ensureSale, saleKeys } from './redis/sale.ts';
import { nginxInstalled, startNginx, weightedUpstreams, type Nginx } from './services/nginx.ts';
import { startRedisServer, type RedisServer } from './services/redis-server.ts';
import { LocalStock } from './stock/local-stock.ts';
import { hostname } from 'node:os';
import { sqliteOrderDb } from './orders/db.ts';
import { Reaper } from './orders/reaper.ts';
import { OrderWriter } from './orders/writer.ts';
import { StockSync } from './stock-sync.ts';
import { WorkerPool } from './worker-pool.ts';

export interface Supervisor {
  readonly config: Config;
  readonly redisUrl: string;
  readonly stock: LocalStock;
  readonly pool: WorkerPool;
  readonly sync: StockSync;
  readonly reaper: Reaper;
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
    if (!config.redisUrl) {
      redisServer = await startRedisServer({ dir: config.dataDir });
      cleanups.push(() => redisServer!.stop());
      say(`redis-server started on ${redisServer.url} (data in ${redisServer.dir})`);
      // So `bun run audit` finds the private Redis while this supervisor runs.
      writeFileSync(join(redisServer.dir, 'redis.url'), redisServer.url);
    }
    const redisUrl = config.redisUrl ?? redisServer!.url;
    const redis: Redis = createRedis(redisUrl, { timeoutMs: config.redisTimeoutMs, name: 'spike-supervisor' });
    cleanups.push(() => redis.quit().catch(() => redis.disconnect()));
    await waitReady(redis, 10_000, redisUrl.replace(/\/\/[^@]*@/, '//***@'));

    const keys = saleKeys(DEFAULT_SALE);
    const sale = await ensureSale(redis, keys, config.total, config.reset);
    say(`sale ${keys.sale}: ${sale.sold} of ${sale.total} sold${config.reset ? ' (reset)' : sale.created ? ' (new)' : ' (continuing)'}`);

    const stock = LocalStock.create(config.ports.length);
    for (let w = 0; w < config.ports.length; w++) stock.refill(w, config.localStock);
    // Top a worker up when a quarter of its stock is left, before its buyers have to wait.
    stock.setLowWater(Math.floor(config.localStock / 4));
    const sync = new StockSync(redis, stock, { keys, localStock: config.localStock, buffer: config.buffer, intervalMs: config.syncMs });
    await sync.syncOnce();
    sync.start();
    cleanups.push(() => sync.stop());

    const pool = new WorkerPool({
      ports: config.ports,
      host: config.host,
      stock,
      redisUrl,
      redisTimeoutMs: config.redisTimeoutMs,
      // A dry worker's top-up comes within one sync round; wait at most one sync period for it.
      refillWaitMs: config.syncMs,
      payWindowMs: config.payWindowMs,
      sale: DEFAULT_SALE,
      logDir: resolve(config.logDir),
      onTopUp: () => void sync.kick(),
      say,
      onFatal: (message) => onFatal(new Error(message)),
    });
    cleanups.push(() => pool.stop());
    await pool.start();

    let writer: OrderWriter | undefined;
    if (config.writer) {
      const db = sqliteOrderDb(config.dbPath);
      cleanups.push(() => db.close());
      // A connection of its own: the writer blocks on it while it waits for events.
      const writerRedis = createRedis(redisUrl, { timeoutMs: config.redisTimeoutMs + 2000, name: 'spike-writer' });
      cleanups.push(() => writerRedis.quit().catch(() => writerRedis.disconnect()));
      writer = new OrderWriter(writerRedis, db, { keys, consumer: `writer-${hostname()}-${config.ports[0]}` });
      writer.start();
      cleanups.push(() => writer!.stop());
      say(`order writer: ${keys.orders} → ${config.dbPath}`);
    }

    // Released orders put tickets back: sync at once so the sold-out flag clears and workers refill.
    const reaper = new Reaper(redis, { keys, intervalMs: config.reapMs, onReleased: () => void sync.kick() });
    reaper.start();
    cleanups.push(() => reaper.stop());

    let nginx: Nginx | undefined;
    if (config.nginx === 'on' || (config.nginx === 'auto' && nginxInstalled())) {
      try {
        nginx = await startNginx({
          listen: config.nginxListen,
          upstreams: weightedUpstreams(config.host === '0.0.0.0' ? '127.0.0.1' : config.host, config.ports),
          runtimeDir: `${config.dataDir}/nginx`,
        });
        cleanups.push(() => nginx!.stop());
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
      redisUrl,
      stock,
      pool,
      sync,
      reaper,
      nginx,
      stop: () => (stopping ??= cleanup()),
    };
    say(`ready: ${config.ports.length} workers on ${config.ports.join(', ')}, total ${sale.total}, local stock ${config.localStock} per worker`);
    return supervisor;
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`spike: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  let supervisor: Supervisor;
  try {
    supervisor = await startSupervisor(config, {
      onFatal: (error) => {
        console.error(`spike: ${error.message}; stopping`);
        void supervisor.stop().then(() => process.exit(1));
      },
    });
  } catch (error) {
    console.error(`spike: cannot start: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  }
  let signals = 0;
  const shutdown = async (signal: string) => {
    if (++signals > 1) {
      console.error(`spike: ${signal} again, exiting now`);
      process.exit(1);
    }
    console.log(`spike: ${signal}: stopping (in-flight requests finish first)`);
    await supervisor.stop();
    console.log('spike: stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

if (import.meta.main) await main();
