/** The supervisor's first steps: Redis (its own, or the one configured), the default sale, the order database. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type Config } from '../config.ts';
import { openOrderDb, type OrderDb } from '../orders/db.ts';
import { createRedis, describeTarget, probeKeys, waitForReplicas, waitReady, type RedisClient, type RedisTarget } from '../redis/client.ts';
import { DEFAULT_SALE, NAME_FIELD, PAID_FIELD, queueKeys, SALES_KEY, saleKeys, SOLD_FIELD, WAIT_PROBE_KEY } from '../redis/keys.ts';
import { clearQueue, setQueue } from '../redis/queue.ts';
import { lossWindows } from '../redis/persistence.ts';
import { ensureSale, type SaleCount } from '../redis/sale.ts';
import { log } from '../log.ts';
import { keepRedisServer } from '../services/redis-keeper.ts';
import type { Stack } from './stack.ts';

export interface RedisStep {
  readonly target: RedisTarget;
  /** The target for messages, without a password. */
  readonly described: string;
  readonly redis: RedisClient;
  /** How many times the private redis-server exited and was started again (0 for a Redis spike does not run). */
  readonly restarts: () => number;
  /** Why the private redis-server cannot run now (a full disk), for /readyz. */
  readonly problem: () => string | undefined;
}

/** Whether the Redis is someone else's (REDIS_URL, REDIS_CLUSTER, REDIS_SENTINELS), shared with other nodes. */
export const externalRedis = (config: Config) => Boolean(config.redisUrl || config.redisCluster || config.redisSentinel);

/** The private redis-server unless REDIS_URL, REDIS_CLUSTER or REDIS_SENTINELS is given, and the supervisor's client. */
export async function startRedis(config: Config, stack: Stack, say: (line: string) => void): Promise<RedisStep> {
  let target: RedisTarget | undefined = config.redisCluster ?? config.redisSentinel ?? config.redisUrl;
  let restarts = () => 0;
  let problem = (): string | undefined => undefined;
  if (!target) {
    // Kept running: restarted by itself when it exits (killed, crashed, a full disk), never by a person.
    const server = await keepRedisServer({ dir: config.dataDir, appendfsync: config.appendfsync }, log);
    stack.defer(() => server.stop(), 'redis-server');
    say(`redis-server started on ${server.url} (data in ${server.dir})`);
    // So `bun run audit` finds the private Redis while this supervisor runs.
    writeFileSync(join(server.dir, 'redis.url'), server.url);
    target = server.url;
    restarts = server.restarts;
    problem = server.problem;
  }
  const described = describeTarget(target);
  // Its outages are reported once, by the watch (redis-watch.ts), not by every client.
  const redis = createRedis(target, { timeoutMs: config.redisTimeoutMs, name: 'spike-supervisor', quiet: true });
  stack.defer(() => redis.quit().catch(() => redis.disconnect()), 'Redis client', { quiet: true });
  await waitReady(redis, 10_000, described);
  // A Redis someone else runs may not keep what it acknowledged: say so once, with the window.
  if (externalRedis(config)) for (const line of await lossWindows(redis, described)) log.warn(line);
  if (config.waitReplicas > 0) await replicasConfirm(config, redis, described, say);
  return { target, described, redis, restarts, problem };
}

/** How long a start waits for SPIKE_WAIT_REPLICAS replicas to confirm a write (a replica's first sync takes a moment). */
const REPLICAS_START_MS = 15_000;

/**
 * With SPIKE_WAIT_REPLICAS, every sale waits for that many replicas to confirm it: the node sells
 * only once they do. With fewer, every purchase answered 503 while its order was made (and the
 * first purchases after `ready:` did so while the replicas were still syncing). Not there within
 * REPLICAS_START_MS: the start stops (exit 2), naming what is missing. On a cluster each master is
 * asked: one short of replicas (its replica promoted after a failover) is a warning, since only the
 * sales it holds answer 503; the start stops only when no master has them.
 */
async function replicasConfirm(config: Config, redis: RedisClient, described: string, say: (line: string) => void): Promise<void> {
  const wanted = config.waitReplicas;
  if (!externalRedis(config))
    throw new ConfigError(
      `SPIKE_WAIT_REPLICAS=${wanted} needs a Redis with replicas (REDIS_SENTINELS or REDIS_URL of a master); spike's own redis-server has none. Set SPIKE_WAIT_REPLICAS=0, or point spike at a master with replicas`,
    );
  const probes = probeKeys(redis, WAIT_PROBE_KEY);
  const deadline = Date.now() + REPLICAS_START_MS;
  const short = new Map<string, number>();
  for (;;) {
    short.clear();
    for (const [master, key] of probes) {
      await redis.set(key, config.nodeId);
      // Within the command's own timeout, so Redis answers how many confirmed rather than the client giving up.
      const confirmed = await waitForReplicas(redis, key, wanted, Math.floor(config.redisTimeoutMs / 2));
      if (confirmed < wanted) short.set(master, confirmed);
    }
    if (short.size === 0) return say(`${wanted} replicas of ${described} confirm writes (SPIKE_WAIT_REPLICAS=${wanted})`);
    if (Date.now() > deadline) break;
    await Bun.sleep(200);
  }
  const within = `within ${REPLICAS_START_MS / 1000} s`;
  if (short.size < probes.size) {
    const masters = [...short].map(([master, n]) => `${master} (${n})`).join(', ');
    log.warn(
      `SPIKE_WAIT_REPLICAS=${wanted}: fewer replicas confirmed a write ${within} on the masters ${masters}; purchases of the sales they hold answer 503 until they have ${wanted}`,
    );
    return;
  }
  const info = await redis.info('replication');
  const online = /connected_slaves:(\d+)/.exec(info)?.[1] ?? '?';
  const confirmed = Math.max(...short.values());
  throw new ConfigError(
    `SPIKE_WAIT_REPLICAS=${wanted}: only ${confirmed} replicas of ${described} confirmed a write ${within} (${online} connected); every purchase would answer 503. Start its replicas, or lower SPIKE_WAIT_REPLICAS`,
  );
}

/** The default sale: created with SPIKE_TOTAL when new, continued as it is otherwise, wiped by a reset. */
export async function startDefaultSale(config: Config, redis: RedisClient, say: (line: string) => void): Promise<SaleCount> {
  const keys = saleKeys(DEFAULT_SALE);
  if (config.reset && !config.resetForce) await refuseToWipeOrders(redis, keys);
  const sale = await ensureSale(redis, keys, config.total, config.reset);
  say(`sale ${keys.sale}: ${sale.sold} of ${sale.total} sold${config.reset ? ' (reset)' : sale.created ? ' (new)' : ' (continuing)'}`);
  // A setting that cannot apply is said, not ignored in silence.
  if (config.totalGiven && !sale.created && !config.reset && sale.total !== config.total)
    log.warn(
      `SPIKE_TOTAL=${config.total} does not apply: sale ${keys.sale} exists with ${sale.total} tickets (add stock with bun run sale -- add, or start again with --reset)`,
    );
  if (!config.queue && sale.queue) {
    if (config.queueGiven) {
      await clearQueue(redis, queueKeys(DEFAULT_SALE));
      say(`sale ${keys.sale}: waiting room off (SPIKE_QUEUE=0)`);
    } else
      log.warn(
        `sale ${keys.sale} keeps the waiting room an earlier start gave it (SPIKE_QUEUE=1, or the admin API); start with SPIKE_QUEUE=0 to turn it off`,
      );
  }
  if (config.queue) {
    await setQueue(redis, queueKeys(DEFAULT_SALE), { admissionMs: config.queueAdmissionMs, admitPerSecond: config.queueRate });
    say(`sale ${keys.sale}: waiting room on (admissions last ${config.queueAdmissionMs / 1000} s, at most ${config.queueRate} a second)`);
    // Tickets signed on one node must verify on every other: a generated secret is this node's own.
    if (!config.queueSecret && externalRedis(config))
      log.warn(
        `SPIKE_QUEUE_SECRET is unset: tickets are signed with ${config.dataDir}/queue-secret, which only this node has; give every node the same SPIKE_QUEUE_SECRET`,
      );
  }
  if (config.saleName !== undefined) await redis.hset(keys.sale, NAME_FIELD, config.saleName);
  await redis.sadd(SALES_KEY, DEFAULT_SALE);
  return sale;
}

/**
 * A reset left in the environment (SPIKE_RESET=1) must not sell paid seats again at the next
 * restart: a sale that holds live orders is wiped only with --force; until then nothing changes.
 */
async function refuseToWipeOrders(redis: RedisClient, keys: ReturnType<typeof saleKeys>): Promise<void> {
  const [sold, paid] = (await redis.hmget(keys.sale, SOLD_FIELD, PAID_FIELD)).map((v) => Number(v ?? 0)) as [number, number];
  if (sold <= 0) return;
  throw new ConfigError(
    `SPIKE_RESET: sale ${keys.sale} holds ${paid} paid and ${sold - paid} reserved orders; a reset would move them to the ` +
      'orders_archive table and sell their seats again, so nothing was changed. To do it anyway: ' +
      'bun run start -- --reset --force (or SPIKE_RESET=force)',
  );
}

/**
 * The order database, the second record of every sale, from which the reconciler restores what
 * Redis lost. Without the writer nothing keeps it current, so it is not opened then. A reset
 * moves the default sale's earlier rows to `orders_archive`.
 */
export async function openDatabase(config: Config, stack: Stack, say: (line: string) => void): Promise<OrderDb | undefined> {
  if (!config.writer) return undefined;
  const db = await openOrderDb(config.databaseUrl, config.dbPath).catch((error: unknown) => {
    throw new Error(`order writer: cannot open the order database: ${error instanceof Error ? error.message : error}`);
  });
  stack.defer(() => db.close(), 'order database', { quiet: true });
  if (config.reset) {
    const archived = await db.archive(DEFAULT_SALE);
    if (archived > 0) say(`sale ${DEFAULT_SALE}: its ${archived} earlier orders moved to the orders_archive table (reset)`);
  }
  return db;
}
