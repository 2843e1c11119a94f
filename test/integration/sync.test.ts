// The sync reads what changed, not everything: 1 000 idle sales cost 13 400 Redis commands a
// second when every sale was read every round. A sale its workers sold from, one another node
// changed, or one whose start came is read in the next round; the rest once per full round.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { RedisClient } from '../../src/redis/client.ts';
import { ensureSale } from '../../src/redis/sale.ts';
import { SALES_KEY, saleKeys, SOLD_FIELD } from '../../src/redis/keys.ts';
import { SaleBook } from '../../src/stock/sale-book.ts';
import { StockSync } from '../../src/stock/sync.ts';
import { startTestRedisWithClient, type TestRedis } from '../helpers/servers.ts';

setDefaultTimeout(30_000);

let redis: TestRedis;
let client: RedisClient;

beforeAll(async () => {
  ({ redis, client } = await startTestRedisWithClient('sync-test'));
});
afterAll(async () => {
  await redis.close();
});

/** HMGETs (readSale) Redis ran since the last reset. */
async function reads(): Promise<number> {
  return Number(/^cmdstat_hmget:calls=(\d+)/m.exec(await client.info('commandstats'))?.[1] ?? 0);
}

describe('the sync', () => {
  test('reads idle sales once per full round, and a sale its workers sold from, or another node changed, in the next round', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `idle-${i}`);
    for (const id of ids) await ensureSale(client, saleKeys(id), 100, true);
    await client.sadd(SALES_KEY, ...ids);
    const published: string[] = [];
    const book = new SaleBook({ workers: 2 });
    const sync = new StockSync(client, book, {
      policy: { workers: 2, buffer: 0.2, localStock: undefined },
      intervalMs: 10,
      fullMs: 60_000,
      publish: (ids) => published.push(...ids),
    });
    await sync.kick();
    expect(book.all()).toHaveLength(200);
    await client.config('RESETSTAT');
    sync.start();
    try {
      // Rounds go by: an idle sale is read only in its turn of the full round (one a round here).
      await Bun.sleep(300);
      const idle = await reads();
      expect(idle).toBeLessThan(100);

      // A worker of this node sells: the sale is read at once, and the other nodes are told.
      const hot = book.get('idle-7')!;
      const syncs = hot.stock.snapshot().syncs;
      expect(hot.stock.tryTake(0)).toBe(true);
      hot.stock.recordSale(0);
      await client.hincrby('idle-7', SOLD_FIELD, 1);
      // The node counts its own sale at once; the sync's read of Redis agrees.
      expect(hot.stock.figures().sold).toBe(1);
      await waitFor(() => hot.stock.snapshot().syncs > syncs && hot.stock.figures().sold === 1);
      await waitFor(() => published.includes('idle-7'));

      // Another node changed a sale (its stock here is stale until read): heard, read, not told again.
      await client.hset('idle-9', SOLD_FIELD, 100);
      sync.heard('idle-9');
      await waitFor(() => book.get('idle-9')!.stock.isSoldOut());
      expect(published).not.toContain('idle-9');
    } finally {
      await sync.stop();
    }
  });
});

async function waitFor(ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('not within 5 s');
    await Bun.sleep(5);
  }
}
