/** What faces clients: the worker threads, the admin API and nginx. */
import { resolve } from 'node:path';
import { journalDir } from './background.ts';
import { ConfigError, type Config } from '../config.ts';
import { createAdminApp } from '../admin/api.ts';
import { Attempts } from '../http/attempts.ts';
import type { RequestStats } from '../http/request-stats.ts';
import { localQueueSecret } from '../queue/ticket.ts';
import type { BackgroundWriter } from '../orders/background-writer.ts';
import { orderKey } from '../orders/secret.ts';
import { ticketSigningKey } from '../orders/signed-ticket.ts';
import { DEFAULT_SALE } from '../redis/keys.ts';
import { nginxInstalled, startNginx, weightedUpstreams, type Nginx } from '../services/nginx.ts';
import type { Sales } from './background.ts';
import type { RedisStep } from './redis-step.ts';
import type { Stack } from './stack.ts';
import type { EdgeLog } from './edge-log.ts';
import { createMetrics } from './metrics.ts';
import { Telemetry, type TelemetryDeps } from './telemetry.ts';
import { WorkerPool } from './worker-pool.ts';

/** One worker thread per port; resolves once all listen. */
export async function startWorkers(
  config: Config,
  { target, redis }: RedisStep,
  { book, sync, health, archivedOrders, journalHealth }: Sales,
  requests: RequestStats,
  stack: Stack,
  say: (line: string) => void,
  onFatal: (error: Error) => void,
): Promise<WorkerPool> {
  const pool = new WorkerPool({
    ports: config.ports,
    host: config.host,
    sales: () => book.all().map((entry) => ({ id: entry.id, buffer: entry.stock.buffer, queue: entry.queue.buffer })),
    archived: () => book.archived(),
    archivedOrder: (sale, query) => archivedOrders.find(sale, query),
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
    ticketKey: await ticketSigningKey(redis),
    logDir: resolve(config.logDir),
    statLog: { maxBytes: config.statLogMaxBytes, keep: config.statLogKeep },
    addressHolds: config.addressHolds,
    clients: { trusted: config.trustedProxies, ipv6Prefix: config.nginxLimits.ipv6Prefix, host: config.host },
    attempts: { buffer: Attempts.buffer(), limit: config.userAttempts, windowMs: config.userWindowMs, secret: Attempts.secret() },
    queueKey: config.queueSecret ?? localQueueSecret(config.dataDir),
    health: health.buffer,
    journalDir: journalDir(config),
    journalHealth: journalHealth.buffer,
    requests: requests.buffer,
    onTopUp: (_, sale) => void sync.changed(sale),
    onReleased: (sale) => void sync.changed(sale),
    say,
    onFatal: (message) => onFatal(new Error(message)),
  });
  stack.defer(() => pool.stop(), 'workers (in-flight requests answered, stat logs flushed)');
  await pool.start();
  return pool;
}

/** Where nginx logs its answers for the supervisor (edge-log.ts). */
export const edgeLogPath = (config: Config) => resolve(config.dataDir, 'nginx', 'edge.log');

/** The figures of the node, taken once a second for every dashboard (telemetry.ts), and nginx's log read into them. */
export function startTelemetry(
  config: Config,
  { redis, restarts: redisRestarts }: RedisStep,
  { book, health, journalHealth }: Sales,
  { pool, requests, edge, nginx }: { pool: WorkerPool; requests: RequestStats; edge: EdgeLog | undefined; nginx: TelemetryDeps['nginx'] },
  stack: Stack,
): Telemetry {
  const telemetry = new Telemetry({
    node: config.nodeId,
    book,
    redis,
    health,
    journal: journalHealth,
    requests,
    ports: config.ports,
    restarts: (i) => pool.restarts(i),
    redisRestarts,
    edge: () => edge?.counts(),
    maxStreams: config.dashboardStreams,
    nginx,
  });
  edge?.start();
  telemetry.start();
  stack.defer(
    async () => {
      telemetry.stop();
      edge?.stop();
    },
    'telemetry',
    { quiet: true },
  );
  return telemetry;
}

/** Why the node is not ready (Redis, workers, order writer, journal), or undefined when it is: /readyz. */
function readiness(
  config: Config,
  { redis, problem }: Pick<RedisStep, 'redis' | 'problem'>,
  pool: WorkerPool,
  writer: BackgroundWriter | undefined,
  journal: Sales['journalHealth'],
): () => Promise<string | undefined> {
  return async () => {
    const trouble = problem();
    if (trouble) return trouble;
    const ping = await redis.ping().then(
      () => undefined,
      (error: unknown) => `Redis unreachable: ${error instanceof Error ? error.message : error}`,
    );
    const down = pool.down();
    if (ping) return ping;
    if (down.length > 0) return `workers not listening: ${down.join(', ')}`;
    if (writer && !writer.isRunning) return 'the order writer is restarting';
    if (journal.failing()) return `the journal cannot be written (${journalDir(config)}): the workers sell nothing until it can`;
    return undefined;
  };
}

/** How long a stop lets admin calls in flight finish before it closes their connections. */
const ADMIN_GRACE_MS = 2000;

/** The admin API on its own port, unless SPIKE_ADMIN_PORT=0. */
export function startAdmin(
  config: Config,
  { redis, problem, restarts: redisRestarts }: RedisStep,
  { book, sync, admission, health, db, journalHealth, records }: Sales,
  { pool, writer, telemetry }: { pool: WorkerPool; writer: BackgroundWriter | undefined; telemetry: Telemetry },
  stack: Stack,
  say: (line: string) => void,
): void {
  if (config.adminPort === 0) return;
  const notReady = readiness(config, { redis, problem }, pool, writer, journalHealth);
  const registry = createMetrics({
    book,
    redis,
    ports: config.ports,
    restarts: (i) => pool.restarts(i),
    redisRestarts,
    redisOutages: () => health.outages(),
    requests: telemetry.requests,
    edge: () => telemetry.edge(),
    journal: journalHealth,
  });
  const admin = createAdminApp({
    tokens: config.adminTokens,
    redis,
    book,
    ports: config.ports,
    kick: (sale) => {
      // A new or changed sale: its stock and waiting room now (and on the other nodes), not at the next period.
      void sync.changed(sale).then(() => admission.tick());
    },
    restarts: (i) => pool.restarts(i),
    notReady,
    metrics: () => registry.metrics(),
    stream: (send, end) => telemetry.subscribe(send, end),
    metricsToken: config.metricsToken,
    queueDefaults: { admissionMs: config.queueAdmissionMs, admitPerSecond: config.queueRate },
    db,
    records,
    archived: (id) => {
      records.forget(id);
      book.remove(id);
      sync.saleListChanged();
    },
  });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({ port: config.adminPort, hostname: config.adminHost, fetch: admin.fetch });
  } catch (cause) {
    throw new ConfigError(
      `SPIKE_ADMIN_PORT=${config.adminPort}: cannot listen on ${config.adminHost}:${config.adminPort} ` +
        `(${cause instanceof Error ? cause.message : cause}); choose a free port, or 0 for no admin API`,
    );
  }
  // Dashboards keep their streams open for ever: they are ended first (the supervisor's stop does it
  // before anything), then the admin calls in flight get a moment, then every connection is closed.
  stack.defer(
    async () => {
      telemetry.endStreams();
      await Promise.race([server.stop(), Bun.sleep(ADMIN_GRACE_MS)]);
      await server.stop(true);
    },
    'admin API',
    { quiet: true },
  );
  say(
    `admin API on http://${config.adminHost}:${server.port}${config.adminTokens.length > 0 ? '' : ' (refusing every call: SPIKE_ADMIN_TOKEN is not set)'}`,
  );
}

/** nginx in front, as SPIKE_NGINX asks: `on` fails the start when it cannot listen, `auto` warns in one line. */
export async function startFrontNginx(
  config: Config,
  stack: Stack,
  say: (line: string) => void,
  openFiles?: number,
): Promise<Nginx | undefined> {
  if (config.nginx === 'off') return undefined;
  if (config.nginx === 'auto' && !nginxInstalled()) {
    say('nginx not installed; the workers serve directly (apt-get install -y nginx to put it in front)');
    return undefined;
  }
  try {
    const nginx = await startNginx({
      listen: config.nginxListen,
      limits: config.nginxLimits,
      openFiles,
      upstreams: weightedUpstreams(config.host === '0.0.0.0' ? '127.0.0.1' : config.host, config.ports),
      runtimeDir: `${config.dataDir}/nginx`,
      edgeLog: edgeLogPath(config),
    });
    stack.defer(() => nginx.stop(), 'nginx');
    say(
      `nginx listening on ${config.nginxListen} (weights ${config.ports.map((p, i) => `${p}:${i + 1}`).join(' ')}, config ${nginx.confPath})`,
    );
    return nginx;
  } catch (error) {
    if (config.nginx === 'on') throw error;
    say(
      `nginx not started (${error instanceof Error ? error.message.split('\n').slice(-1)[0] : error}); ` +
        'set SPIKE_NGINX_LISTEN to a free port, or SPIKE_NGINX=0 to silence this',
    );
    return undefined;
  }
}
