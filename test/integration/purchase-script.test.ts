// purchase-N.lua against a real redis-server. The original 12306 script checked `total >= sold`
// before incrementing and so sold total + 1; the first test runs it side by side with ours.
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { RedisClient } from '../../src/redis/client.ts';
import { ensureSale, purchase, purchaseMany, purchaseSales, PurchaseCode, readSale, type Purchase } from '../../src/redis/sale.ts';
import { queueKeys, saleKeys, SOLD_FIELD, TOTAL_FIELD } from '../../src/redis/keys.ts';
import { NO_GUARD } from '../../src/redis/guard.ts';
import { settle } from '../../src/orders/store.ts';
import { setQueue } from '../../src/redis/queue.ts';
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

const codes = (answers: readonly Purchase[]) => answers.map((a) => a.code);
const orderOf = (answer: Purchase) => (answer as { orderId: string }).orderId;

describe('holds per client', () => {
  const seller = { port: 3001, payWindowMs: 60_000, maxHolds: 4 };
  const from = (client: string, ...users: string[]) => users.map((user) => ({ user, client }));

  test('a client holds at most 4 unpaid orders, named or not; other clients are not touched', async () => {
    await ensureSale(client, keys, 100, false);
    const answers = await purchaseMany(client, keys, seller, [...from('10.0.0.1', 'a', 'b', '', 'c', 'd', ''), ...from('10.0.0.2', 'e')]);
    expect(codes(answers)).toEqual([1, 1, 1, 1, -4, -4, 1]);
    // A later batch sees the same count.
    expect(codes(await purchaseMany(client, keys, seller, from('10.0.0.1', 'f')))).toEqual([PurchaseCode.TooManyHolds]);
    // A user who already holds an order is shown it, whatever the client's count.
    expect(await purchaseMany(client, keys, seller, from('10.0.0.1', 'a'))).toEqual([
      { code: PurchaseCode.Held, orderId: orderOf(answers[0]!) },
    ]);
    expect(await readSale(client, keys)).toMatchObject({ sold: 5 });
  });

  test('paying or cancelling an order frees its hold; the freed place is taken once', async () => {
    await ensureSale(client, keys, 100, false);
    const held = await purchaseMany(client, keys, seller, from('10.0.0.3', 'a', 'b', 'c', 'd'));
    expect(codes(held)).toEqual([1, 1, 1, 1]);
    expect((await settle(client, keys, 'pay', orderOf(held[0]!), 'a', NO_GUARD)).code).toBe(1);
    expect((await settle(client, keys, 'cancel', orderOf(held[1]!), 'b', NO_GUARD)).code).toBe(1);
    expect(codes(await purchaseMany(client, keys, seller, from('10.0.0.3', 'e', 'f', 'g')))).toEqual([1, 1, -4]);
    expect((await client.hget(keys.holds, 'r:10.0.0.3'))!.split(',')).toHaveLength(4);
  });

  test('0 means no limit, and a sale with a waiting room counts places (join-5.lua), not orders', async () => {
    await ensureSale(client, keys, 100, false);
    const open = await purchaseMany(client, keys, { ...seller, maxHolds: 0 }, from('10.0.0.4', 'a', 'b', 'c', 'd', 'e', 'f'));
    expect(codes(open)).toEqual([1, 1, 1, 1, 1, 1]);
    const queued = saleKeys(`${keys.sale}-queued`);
    await ensureSale(client, queued, 100, false);
    await setQueue(client, queueKeys(queued.sale), { admissionMs: 60_000, admitPerSecond: 10 });
    expect(codes(await purchaseMany(client, queued, seller, from('10.0.0.4', 'a', 'b', 'c', 'd', 'e', 'f')))).toEqual([1, 1, 1, 1, 1, 1]);
    expect(await client.exists(keys.holds, queued.holds)).toBe(0);
  });
});

describe('several sales in one call', () => {
  const seller = { port: 3001, payWindowMs: 0 };

  test('each sale sells its own stock to its own buyers, in order, and answers come back grouped as asked', async () => {
    const [a, b, c] = [saleKeys(`${keys.sale}-a`), saleKeys(`${keys.sale}-b`), saleKeys(`${keys.sale}-c`)];
    await ensureSale(client, a, 2, false);
    await ensureSale(client, b, 1, false);
    await client.hset(c.sale, TOTAL_FIELD, 5, SOLD_FIELD, 0, 'paused', '1');
    const buyers = (...users: string[]) => users.map((user) => ({ user, client: '' }));
    const answers = await purchaseSales(client, seller, [
      { keys: a, seen: '0-0', buyers: buyers('x', 'y', 'z') },
      { keys: b, seen: '0-0', buyers: buyers('x', 'y') },
      { keys: c, seen: '0-0', buyers: buyers('x') },
      { keys: saleKeys(`${keys.sale}-none`), seen: '0-0', buyers: buyers('x') },
    ]);
    expect(answers.map(codes)).toEqual([[1, 1, -1], [1, -1], [-3], [-2]]);
    expect((await readSale(client, a))!.sold).toBe(2);
    expect((await readSale(client, b))!.sold).toBe(1);
    expect(await client.hget(a.buyers, 'x')).toBe(orderOf(answers[0]![0]!));
    expect(await client.hget(b.buyers, 'x')).toBe(orderOf(answers[1]![0]!));
  });

  test('a sale that lost writes is marked recovering by itself: the other sales of the call go on selling', async () => {
    const [a, b] = [saleKeys(`${keys.sale}-a`), saleKeys(`${keys.sale}-b`)];
    await ensureSale(client, a, 10, false);
    await ensureSale(client, b, 10, false);
    const first = orderOf(await purchase(client, b, 'w', seller));
    const newer = `${Number(first.split('-')[0]) + 1000}-0`;
    const answers = await purchaseSales(client, seller, [
      { keys: a, seen: '0-0', buyers: [{ user: 'v', client: '' }] },
      { keys: b, seen: newer, buyers: [{ user: 'v', client: '' }] },
    ]);
    expect(answers.map(codes)).toEqual([[1], [-3]]);
    expect(await client.hget(a.sale, 'recovering')).toBeNull();
    expect(await client.hget(b.sale, 'recovering')).toContain(`a node saw ${newer}`);
  });
});
