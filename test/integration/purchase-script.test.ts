// purchase-3.lua against a real redis-server. The original 12306 script checked `total >= sold`
// before incrementing and so sold total + 1; the first test runs it side by side with ours.
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { RedisClient } from '../../src/redis/client.ts';
import { ensureSale, purchase, purchaseMany, PurchaseCode, readSale } from '../../src/redis/sale.ts';
import { saleKeys, SOLD_FIELD, TOTAL_FIELD } from '../../src/redis/keys.ts';
import { startTestRedisWithClient, type TestRedis } from '../helpers/servers.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

let redis: TestRedis;
let client: RedisClient;
let n = 0;
let keys = saleKeys('unused');

beforeAll(async () => {
  ({ redis, client } = await startTestRedisWithClient('test', 2000));
});
afterAll(async () => {
  await redis.close();
});
// A fresh sale per test, so no test sees another's tickets.
beforeEach(() => {
  keys = saleKeys(`sale-${process.pid}-${++n}`);
});

const ORIGINAL_LUA = `
  local ticket_key = KEYS[1]
  local ticket_total_key = ARGV[1]
  local ticket_sold_key = ARGV[2]
  local ticket_total_nums = tonumber(redis.call('HGET', ticket_key, ticket_total_key))
  local ticket_sold_nums = tonumber(redis.call('HGET', ticket_key, ticket_sold_key))
  if(ticket_total_nums >= ticket_sold_nums) then
    return redis.call('HINCRBY', ticket_key, ticket_sold_key, 1)
  end
  return 0`;

describe('purchase script', () => {
  test('sells exactly 5 of 5 tickets to 10 buyers, where the original script sells 6', async () => {
    await client.hset(keys.sale, TOTAL_FIELD, 5, SOLD_FIELD, 0);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => purchase(client, keys, `buyer${i}`, { port: 3001, payWindowMs: 0 })),
    );
    expect(results.filter((r) => r.code === PurchaseCode.Sold)).toHaveLength(5);
    expect(results.filter((r) => r.code === PurchaseCode.SoldOut)).toHaveLength(5);
    expect(await readSale(client, keys)).toMatchObject({ total: 5, sold: 5 });
    expect(await client.xlen(keys.orders)).toBe(5);

    const original = `original-${n}`;
    await client.hset(original, TOTAL_FIELD, 5, SOLD_FIELD, 0);
    for (let i = 0; i < 10; i++) await client.eval(ORIGINAL_LUA, 1, original, TOTAL_FIELD, SOLD_FIELD);
    expect(Number(await client.hget(original, SOLD_FIELD))).toBe(6);
  });

  test('sells a user one ticket and answers their later tries with the same order', async () => {
    await ensureSale(client, keys, 100, false);
    const first = await purchase(client, keys, 'alice', { port: 3001, payWindowMs: 0 });
    expect(first.code).toBe(PurchaseCode.Sold);
    const again = await Promise.all(Array.from({ length: 20 }, () => purchase(client, keys, 'alice', { port: 3002, payWindowMs: 0 })));
    for (const r of again) expect(r).toEqual({ code: PurchaseCode.Held, orderId: (first as { orderId: string }).orderId });
    expect(await readSale(client, keys)).toMatchObject({ total: 100, sold: 1 });
    expect(await client.hget(keys.buyers, 'alice')).toBe((first as { orderId: string }).orderId);
  });

  test('records each sale on the order stream with user and port; the order id carries the time', async () => {
    await ensureSale(client, keys, 2, false);
    const before = Date.now();
    const sold = await purchase(client, keys, 'bob', { port: 3003, payWindowMs: 0 });
    const [[id, fields]] = (await client.xrange(keys.orders, '-', '+')) as [string, string[]][] as [[string, string[]]];
    expect(sold).toEqual({ code: PurchaseCode.Sold, orderId: id });
    expect(fields).toEqual(['event', 'created', 'user', 'bob', 'port', '3003', 'window', '0']);
    expect(Math.abs(Number(id.split('-')[0]) - before)).toBeLessThan(5000);
  });

  test('a batch is served in arrival order: repeats are held, the rest sold until the total, then sold out', async () => {
    await ensureSale(client, keys, 3, false);
    const answers = await purchaseMany(client, keys, { port: 3001, payWindowMs: 0 }, ['ann', 'ann', '', 'ben', 'cat', 'ben', 'dan']);
    expect(answers.map((a) => a.code)).toEqual([1, 2, 1, 1, -1, 2, -1]);
    const orderOf = (i: number) => (answers[i] as { orderId: string }).orderId;
    expect(orderOf(1)).toBe(orderOf(0));
    expect(orderOf(5)).toBe(orderOf(3));
    expect(await readSale(client, keys)).toMatchObject({ total: 3, sold: 3 });
    expect(await client.xlen(keys.orders)).toBe(3);
    expect((await client.hkeys(keys.buyers)).sort()).toEqual(['ann', 'ben']);
  });

  test('anonymous buyers have no per-user limit, as in the original ab test', async () => {
    await ensureSale(client, keys, 3, false);
    const results = await Promise.all(Array.from({ length: 4 }, () => purchase(client, keys, '', { port: 3001, payWindowMs: 0 })));
    expect(results.map((r) => r.code).sort()).toEqual([-1, 1, 1, 1]);
    expect(await client.hlen(keys.buyers)).toBe(0);
  });

  // Redis restored from an older copy: its newest order is older than one a worker saw it make.
  test('a sale older than the newest order the caller saw sells nothing, and is marked recovering for every node', async () => {
    await ensureSale(client, keys, 10, false);
    const [sold] = await purchaseMany(client, keys, { port: 3001, payWindowMs: 0 }, ['eve']);
    const seen = (sold as { orderId: string }).orderId;
    const [ms] = seen.split('-');
    const later = `${Number(ms) + 1000}-0`;
    expect(await purchaseMany(client, keys, { port: 3001, payWindowMs: 0 }, ['fay', 'gus'], later)).toEqual([
      { code: PurchaseCode.Closed },
      { code: PurchaseCode.Closed },
    ]);
    expect(await client.hget(keys.sale, 'recovering')).toContain(`a node saw ${later}`);
    // Recovering stops every caller, even one that saw nothing newer.
    expect(await purchaseMany(client, keys, { port: 3002, payWindowMs: 0 }, ['hal'], seen)).toEqual([{ code: PurchaseCode.Closed }]);
    expect(await readSale(client, keys)).toMatchObject({ sold: 1, lastId: seen });
    expect(await client.resume(keys.sale, later)).toBe(later);
    expect((await purchaseMany(client, keys, { port: 3001, payWindowMs: 0 }, ['fay'], later))[0]!.code).toBe(PurchaseCode.Sold);
  });

  test("the original's HMSET starts a sale, and a missing sale answers no-sale without writing", async () => {
    await client.hmset(keys.sale, TOTAL_FIELD, 1, SOLD_FIELD, 0);
    expect((await purchase(client, keys, 'carol', { port: 3001, payWindowMs: 0 })).code).toBe(PurchaseCode.Sold);
    const missing = saleKeys(`missing-${n}`);
    expect(await purchase(client, missing, 'carol', { port: 3001, payWindowMs: 0 })).toEqual({ code: PurchaseCode.NoSale });
    expect(await client.exists(missing.sale, missing.buyers, missing.orders)).toBe(0);
  });

  test('starting never resets a running sale; only an explicit reset does', async () => {
    await ensureSale(client, keys, 10, false);
    await purchase(client, keys, 'dave', { port: 3001, payWindowMs: 0 });
    expect(await ensureSale(client, keys, 999, false)).toMatchObject({ total: 10, sold: 1, created: false });
    expect(await client.hget(keys.buyers, 'dave')).not.toBeNull();
    expect(await ensureSale(client, keys, 20, true)).toMatchObject({ total: 20, sold: 0, created: true });
    expect(await client.exists(keys.buyers, keys.orders)).toBe(0);
  });
});
