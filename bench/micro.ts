/** mitata micro-benchmarks of the pieces on the purchase path. Run alone: bun bench/micro.ts [--json]. */
import { bench, boxplot, do_not_optimize, run, summary } from 'mitata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, createServing } from '../src/http/app.ts';
import { createRedis, waitReady } from '../src/redis/client.ts';
import { PurchaseBatcher } from '../src/redis/purchase-batcher.ts';
import { ensureSale, purchase } from '../src/redis/sale.ts';
import { saleKeys } from '../src/redis/keys.ts';
import { startRedisServer } from '../src/services/redis-server.ts';
import { StatLog, type StatEntry } from '../src/http/stat-log.ts';
import { LocalStock } from '../src/stock/local-stock.ts';

const SELLER = { port: 1, payWindowMs: 300_000 };

export interface MicroResult {
  readonly name: string;
  /** Mean nanoseconds per operation (per batch for batched benches). */
  readonly avgNs: number;
  readonly p99Ns: number;
}

/** Runs the micro benches against the Redis at `redisUrl`; prints mitata's table (or JSON). */
export async function runMicro(redisUrl: string, json: boolean): Promise<MicroResult[]> {
  const redis = createRedis(redisUrl, { timeoutMs: 5000, name: 'bench-micro' });
  await waitReady(redis, 5000, redisUrl);
  const keys = saleKeys('bench:micro');
  await ensureSale(redis, keys, 1_000_000_000, true);
  const stock = LocalStock.create(1);
  stock.refill(0, 2_000_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'spike-micro-'));
  const log = new StatLog(join(dir, 'stat.log'));
  let user = 0;
  const batcher = new PurchaseBatcher(redis, SELLER);
  const batched = { id: keys.sale, keys };
  const sale = { stock, buy: (u: string) => batcher.buy(batched, { user: u, client: '' }) };
  const app = createApp({ port: 1, worker: 0, sale: () => sale, defaultSale: keys.sale, ping: () => redis.ping() });

  summary(() => {
    bench('local stock: take + give back', () => {
      do_not_optimize(stock.tryTake(0));
      stock.giveBack(0);
    });
    bench('local stock: snapshot', () => do_not_optimize(stock.snapshot())).gc('inner');
  });
  boxplot(() => {
    summary(() => {
      bench('purchase script: 16 buyers one at a time', async () => {
        for (let i = 0; i < 16; i++) do_not_optimize(await purchase(redis, keys, `m${user++}`, SELLER));
      }).baseline(true);
      bench('purchase script: 16 buyers auto-pipelined', async () => {
        do_not_optimize(await Promise.all(Array.from({ length: 16 }, () => purchase(redis, keys, `m${user++}`, SELLER))));
      });
      bench('purchase script: 16 buyers in one batch (PurchaseBatcher)', async () => {
        do_not_optimize(await Promise.all(Array.from({ length: 16 }, () => batcher.buy(batched, { user: `m${user++}`, client: '' }))));
      });
    });
  });
  bench('Hono app.request GET /buy/ticket (with Redis)', async () => {
    const res = await app.request(`http://localhost/buy/ticket?user=a${user++}`);
    do_not_optimize(await res.text());
  }).gc('inner');
  // The sold-out answer, before (through Hono) and after (Bun's native route, fast-path.ts):
  // the request object is made in both, as the server makes it before either runs.
  const soldOutLog = new StatLog(join(dir, 'soldout.log'));
  const ended = LocalStock.create(1);
  ended.markSoldOut();
  const endedSale = { stock: ended, buy: async () => ({ code: -1 }) as const };
  const deps = {
    port: 1,
    worker: 0,
    sale: () => endedSale,
    defaultSale: keys.sale,
    ping: () => redis.ping(),
    log: (e: StatEntry) => soldOutLog.append(e),
  };
  const { app: endedApp, buyTicket: native } = createServing(deps);
  const server = undefined as never;
  summary(() => {
    bench('sold-out answer: Hono app (before)', async () => {
      const res = await endedApp.fetch(new Request(`http://localhost/buy/ticket?user=s${user++}`));
      do_not_optimize(await res.text());
    }).baseline(true);
    bench('sold-out answer: native route (after)', async () => {
      const res = await native!(new Request(`http://localhost/buy/ticket?user=s${user++}`), server);
      do_not_optimize(await res.text());
    });
  });
  bench('stat log: append one line', () => {
    log.append({ port: 3001, result: 'sold', code: 1, localSales: user, user: 'alice', orderId: '1795614209339-0' });
  }).gc('inner');

  const results = await run({ format: json ? 'json' : 'mitata', print: json ? () => {} : console.log });
  log.close();
  soldOutLog.close();
  rmSync(dir, { recursive: true, force: true });
  redis.disconnect();
  return results.benchmarks.flatMap((trial) =>
    trial.runs.filter((r) => r.stats).map((r) => ({ name: r.name, avgNs: r.stats!.avg, p99Ns: r.stats!.p99 })),
  );
}

if (import.meta.main) {
  const dir = mkdtempSync(join(tmpdir(), 'spike-micro-redis-'));
  const server = await startRedisServer({ dir });
  try {
    const results = await runMicro(server.url, Bun.argv.includes('--json'));
    if (Bun.argv.includes('--json')) console.log(JSON.stringify(results, null, 2));
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
