/** The supervisor: starts Redis (or uses REDIS_URL), the workers, the background tasks and nginx, and stops them in order. */
import { log } from '../log.ts';
import { ConfigError, type Config } from '../config.ts';
import { portTaken } from '../services/free-port.ts';
import type { BackgroundWriter } from '../orders/background-writer.ts';
import type { Reaper } from '../orders/reaper.ts';
import type { Admission } from '../queue/admission.ts';
import type { Reconciler } from '../orders/reconciler.ts';
import type { RedisTarget } from '../redis/client.ts';
import { RequestStats } from '../http/request-stats.ts';
import { DEFAULT_SALE } from '../redis/keys.ts';
import type { Nginx } from '../services/nginx.ts';
import { raiseOpenFiles } from '../services/open-files.ts';
import type { LocalStock } from '../stock/local-stock.ts';
import { localStockFor } from '../stock/refill.ts';
import type { SaleBook } from '../stock/sale-book.ts';
import type { StockSync } from '../stock/sync.ts';
import { refillPolicy, startReaper, startSales, startWriter, type OnExpired } from './background.ts';
import { EdgeLog } from './edge-log.ts';
import { edgeLogPath, startAdmin, startFrontNginx, startTelemetry, startWorkers } from './front.ts';
import { openDatabase, startDefaultSale, startRedis } from './redis-step.ts';
import { Stack } from './stack.ts';
import type { WorkerPool } from './worker-pool.ts';

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
  readonly admission: Admission;
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
  /** Told of every reaper pass that released orders. */
  readonly onExpired?: OnExpired;
}

/** Where a person goes once the node sells: the buyer's page (through nginx when it runs) and the dashboard. */
function addresses(config: Config, viaNginx: boolean): string[] {
  const host = (h: string) => (h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h);
  const listen = /^(?:\[?([0-9a-fA-F.:]+?)\]?:)?(\d+)$/.exec(config.nginxListen);
  const page = viaNginx
    ? `http://${host(listen?.[1] ?? '127.0.0.1')}${listen?.[2] === '80' ? '' : `:${listen?.[2]}`}/`
    : `http://${host(config.host)}:${config.ports[0]}/`;
  const lines = [`buyers: ${page} (the sales on offer: ${page}sales)`];
  if (config.adminPort > 0)
    lines.push(
      config.adminTokens.length > 0
        ? `dashboard: http://${host(config.adminHost)}:${config.adminPort}/dashboard#token=<SPIKE_ADMIN_TOKEN>`
        : `dashboard: none until SPIKE_ADMIN_TOKEN is set (16 characters or more) and spike is started again`,
    );
  return lines;
}

/** Refuses a worker or admin port something else listens on (exit 2), naming the setting. */
async function refuseTakenPorts(config: Config): Promise<void> {
  const host = config.host === 'localhost' ? '127.0.0.1' : config.host;
  for (const port of config.ports)
    if (await portTaken(host, port))
      throw new ConfigError(
        `SPIKE_PORTS: port ${port} on ${host} is taken by another program; choose free ports (e.g. SPIKE_PORTS=4001,4002,4003,4004)`,
      );
  if (config.adminPort > 0 && (await portTaken(config.adminHost, config.adminPort)))
    throw new ConfigError(
      `SPIKE_ADMIN_PORT=${config.adminPort}: the port on ${config.adminHost} is taken by another program; choose a free port, or 0 for no admin API`,
    );
}

/** Starts everything `config` asks for; on a failure half-way, stops what it had started and throws. */
export async function startSupervisor(
  config: Config,
  { say = log.info, onFatal = (e) => log.error(`[supervisor] ${e.message}`), onExpired }: SupervisorOptions = {},
): Promise<Supervisor> {
  const stack = new Stack(say);
  // Every connection is a file: take all the process may have (Bun raises it too; this says what we got).
  const files = raiseOpenFiles();
  // Before anything changes: a start that fails on a taken port had already created the default
  // sale, and the corrected start then ignored its SPIKE_TOTAL.
  await refuseTakenPorts(config);
  try {
    const redisStep = await startRedis(config, stack, say);
    const { redis } = redisStep;
    const sale = await startDefaultSale(config, redis, say);
    const db = await openDatabase(config, stack, say);
    let pool: WorkerPool | undefined;
    let writer: BackgroundWriter | undefined;
    const sales = await startSales(config, redisStep, db, stack, say, {
      onAdded: (entry) => {
        // A sale added later (admin API, another node) reaches the running workers at once.
        pool?.addSale({ id: entry.id, buffer: entry.stock.buffer, queue: entry.queue.buffer });
        writer?.setSales(sales.book.all().map((e) => e.id));
      },
      onRemoved: (id) => {
        // An archived sale: its orders are read from the database from now on.
        pool?.archiveSale(id);
        writer?.setSales(sales.book.all().map((e) => e.id));
      },
    });
    const requests = RequestStats.create(config.ports.length);
    pool = await startWorkers(config, redisStep, sales, requests, stack, say, onFatal);
    writer = await startWriter(config, redisStep, sales.book, stack, say);
    const reaper = startReaper(config, redis, sales, stack, onExpired);
    let nginx: Nginx | undefined;
    // nginx's own answers, read from its log (edge-log.ts); told to reopen it after a rotation.
    const edge = config.nginx === 'off' ? undefined : new EdgeLog(edgeLogPath(config), () => nginx?.process.kill('SIGUSR1'));
    const front = () => (nginx ? { up: nginx.process.exitCode === null && !nginx.process.killed, since: nginx.startedAt } : undefined);
    const telemetry = startTelemetry(config, redisStep, sales, { pool, requests, edge, nginx: front }, stack);
    startAdmin(config, redisStep, sales, { pool, writer, telemetry }, stack, say);
    nginx = await startFrontNginx(config, stack, say, files?.limit);
    let stopping: Promise<void> | undefined;
    const localStock = localStockFor(refillPolicy(config), sale.total);
    say(
      `ready: node ${config.nodeId}, ${config.ports.length} workers on ${config.ports.join(', ')}, total ${sale.total}, local stock ${localStock} per worker${files ? `, open files ${files.limit}${files.raisedFrom ? ` (raised from ${files.raisedFrom})` : ''}` : ''}`,
    );
    for (const line of addresses(config, nginx !== undefined)) say(line);
    const stock = sales.book.get(DEFAULT_SALE)!.stock;
    // A stop's first step ends the dashboards' streams: a browser left open must never hold it up.
    const stop = () => {
      telemetry.endStreams();
      return stack.unwind();
    };
    return { config, redis: redisStep.target, stock, ...sales, pool, reaper, writer, nginx, stop: () => (stopping ??= stop()) };
  } catch (error) {
    await stack.unwind();
    throw error;
  }
}
