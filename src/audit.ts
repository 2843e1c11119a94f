/** `bun run audit -- [--sale ID] [--wait SECONDS]`: Redis, the order stream and the database must agree; exit 1 when they do not. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config.ts';
import { auditWhenWritten } from './orders/audit.ts';
import { openOrderDb } from './orders/db.ts';
import { createRedis, waitReady } from './redis/client.ts';
import { DEFAULT_SALE, saleKeys } from './redis/sale.ts';

function args(argv: string[]): { sale: string; waitS: number } {
  let sale = DEFAULT_SALE;
  let waitS = 10;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--sale' && argv[i + 1]) sale = argv[++i]!;
    else if (argv[i] === '--wait' && /^\d+$/.test(argv[i + 1] ?? '')) waitS = Number(argv[++i]);
    else throw new ConfigError(`unknown argument ${argv[i]}; accepted: --sale ID, --wait SECONDS`);
  }
  return { sale, waitS };
}

async function main(): Promise<number> {
  let config;
  let options;
  try {
    config = loadConfig(Bun.env, []);
    options = args(Bun.argv.slice(2));
  } catch (error) {
    console.error(`audit: ${error instanceof Error ? error.message : error}`);
    return 2;
  }
  const urlFile = join(config.dataDir, 'redis.url');
  const url = config.redisCluster ?? config.redisUrl ?? (existsSync(urlFile) ? readFileSync(urlFile, 'utf8').trim() : undefined);
  if (!url) {
    console.error(`audit: no Redis to audit: set REDIS_URL, or run it beside 'bun run start' (which writes ${urlFile})`);
    return 2;
  }
  if (!config.databaseUrl && !existsSync(config.dbPath)) {
    console.error(`audit: no order database at ${config.dbPath} (set SPIKE_DB_PATH, or DATABASE_URL for PostgreSQL)`);
    return 2;
  }
  const redis = createRedis(url, { timeoutMs: 10_000, name: 'spike-audit' });
  const db = await openOrderDb(config.databaseUrl, config.dbPath);
  try {
    await waitReady(redis, 5000, String(url));
    const report = await auditWhenWritten(redis, saleKeys(options.sale), db, options.waitS * 1000);
    const { differences, ...counts } = report;
    console.log(Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(' '));
    for (const d of differences.slice(0, 50)) console.log(`DIFF ${d}`);
    if (differences.length > 50) console.log(`... and ${differences.length - 50} more`);
    console.log(differences.length === 0 ? 'audit: clean' : `audit: ${differences.length} difference(s)`);
    return differences.length === 0 ? 0 : 1;
  } finally {
    redis.disconnect();
    await db.close();
  }
}

process.exit(await main());
