/**
 * `bun run audit -- [--sale ID] [--wait SECONDS] [--repair]`: Redis, the order stream and the
 * database must agree; exit 1 when they do not. --repair first restores the orders Redis lost
 * from the database, writes those the database lacks, and lets a stopped sale sell again.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../config.ts';
import { parseCommandLine, usageError } from './args.ts';
import { auditWhenWritten, repairDatabase } from '../orders/audit.ts';
import { openOrderDb, type OrderDb } from '../orders/db.ts';
import { readJournal } from '../orders/journal.ts';
import { describeReconcile, reconcileSale } from '../orders/reconcile.ts';
import { createRedis, describeTarget, waitReady, type RedisClient, type RedisTarget } from '../redis/client.ts';
import { DEFAULT_SALE, SALES_KEY, saleKeys } from '../redis/keys.ts';
import { archivedSale, readSale } from '../redis/sale.ts';

const USAGE = `usage: bun run audit -- [--sale ID | --all] [--wait SECONDS] [--repair]
  --sale ID        the sale to audit (default ${DEFAULT_SALE})
  --all            every sale on sale (not the archived ones: their orders are only in the database)
  --wait SECONDS   how long to wait for the order writers to catch up first (default 10)
  --repair         restore the orders Redis lost from the database (and this node's journal),
                   write the orders the database lacks from Redis, and let a sale stopped for
                   that sell again, before the audit
  --help           this text`;

interface Options {
  /** The sale to audit; undefined with --all. */
  readonly sale: string | undefined;
  readonly waitS: number;
  readonly repair: boolean;
}

/** The command line; --help and mistakes end the program here (cli/args.ts). */
function auditArgs(argv: string[]): Options {
  const { values, positionals } = parseCommandLine(
    argv,
    { sale: { type: 'string' }, all: { type: 'boolean' }, wait: { type: 'string' }, repair: { type: 'boolean' } },
    USAGE,
  );
  if (positionals.length > 0) usageError(`unexpected argument ${positionals[0]}`, USAGE);
  if (values.sale !== undefined && values.all) usageError('--sale and --all: give one', USAGE);
  if (values.wait !== undefined && !/^\d+$/.test(values.wait))
    usageError(`--wait ${values.wait} is not accepted; accepted: whole seconds, e.g. --wait 30`, USAGE);
  return { sale: values.all ? undefined : (values.sale ?? DEFAULT_SALE), waitS: Number(values.wait ?? 10), repair: values.repair ?? false };
}

/** The Redis to audit: REDIS_CLUSTER, REDIS_SENTINELS, REDIS_URL, or the private one a running `bun run start` noted. */
function redisTarget(config: Config): RedisTarget | undefined {
  const urlFile = join(config.dataDir, 'redis.url');
  return (
    config.redisCluster ??
    config.redisSentinel ??
    config.redisUrl ??
    (existsSync(urlFile) ? readFileSync(urlFile, 'utf8').trim() : undefined)
  );
}

/** The sales to audit: the one asked for (refused when Redis has no such sale), or every sale. */
async function salesToAudit(redis: RedisClient, options: Options): Promise<string[] | string> {
  if (options.sale === undefined) return (await redis.smembers(SALES_KEY)).sort();
  if (await readSale(redis, saleKeys(options.sale))) return [options.sale];
  if (await archivedSale(redis, options.sale))
    return `sale ${options.sale} is archived: its orders are only in the database now (GET /orders/:id reads them), there is nothing to compare`;
  const known = (await redis.smembers(SALES_KEY)).sort();
  return `no sale ${options.sale} in Redis; the sales are ${known.join(', ') || 'none'} (--all audits every one)`;
}

async function run(redis: RedisClient, db: OrderDb, config: Config, options: Options): Promise<number> {
  const sales = await salesToAudit(redis, options);
  if (typeof sales === 'string') {
    console.error(`audit: ${sales}`);
    return 2;
  }
  let worst = 0;
  for (const sale of sales) worst = Math.max(worst, await auditOne(redis, db, config, { ...options, sale }, sales.length > 1));
  return worst;
}

async function auditOne(
  redis: RedisClient,
  db: OrderDb,
  config: Config,
  options: Options & { sale: string },
  named: boolean,
): Promise<number> {
  const keys = saleKeys(options.sale);
  if (options.repair) {
    const report = await reconcileSale(redis, keys, db, {
      reason: 'repair by hand (bun run audit -- --repair)',
      node: config.nodeId,
      payWindowMs: config.payWindowMs,
      // This node's journal too: sales acknowledged that the database had not received yet.
      journaled: readJournal(join(config.dataDir, 'journal'), options.sale),
    });
    console.log(describeReconcile(report));
    // And the other way: orders Redis holds that the database lacks.
    const written = await repairDatabase(redis, keys, db);
    console.log(`sale ${options.sale}: wrote ${written} orders the database lacked`);
  }
  const report = await auditWhenWritten(redis, keys, db, options.waitS * 1000);
  const { differences, ...counts } = report;
  console.log(
    Object.entries(counts)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
  );
  for (const d of differences.slice(0, 50)) console.log(`DIFF ${d}`);
  if (differences.length > 50) console.log(`... and ${differences.length - 50} more`);
  const of = named ? ` (${options.sale})` : '';
  console.log(differences.length === 0 ? `audit: clean${of}` : `audit: ${differences.length} difference(s)${of}`);
  return differences.length === 0 ? 0 : 1;
}

async function main(): Promise<number> {
  const options = auditArgs(Bun.argv.slice(2));
  let config: Config;
  try {
    config = loadConfig(Bun.env, []);
  } catch (error) {
    console.error(`audit: ${error instanceof Error ? error.message : error}`);
    return 2;
  }
  const target = redisTarget(config);
  if (!target) {
    console.error(
      `audit: no Redis to audit: start the system (bun run start), or set REDIS_URL (it looked for ${join(config.dataDir, 'redis.url')})`,
    );
    return 2;
  }
  if (!config.databaseUrl && !existsSync(config.dbPath)) {
    console.error(`audit: no order database at ${config.dbPath} (set SPIKE_DB_PATH, or DATABASE_URL for PostgreSQL)`);
    return 2;
  }
  const described = describeTarget(target);
  const redis = createRedis(target, { timeoutMs: 10_000, name: 'spike-audit' });
  // One line when Redis is down, not a line per reconnect attempt.
  redis.removeAllListeners('error');
  redis.on('error', () => {});
  const db = await openOrderDb(config.databaseUrl, config.dbPath);
  try {
    try {
      await waitReady(redis, 5000, described);
    } catch (error) {
      console.error(`audit: ${error instanceof Error ? error.message : error}; is the system running (bun run start)? or set REDIS_URL`);
      return 2;
    }
    return await run(redis, db, config, options);
  } finally {
    redis.disconnect();
    await db.close();
  }
}

if (import.meta.main) process.exit(await main());
