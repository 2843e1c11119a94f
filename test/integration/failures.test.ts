// Things die mid-sale: a worker thread, Redis, the whole supervisor. After each the sale must
// still end with exactly `total` sold, no user twice, and an order on the stream for every sale.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { DEFAULT_SALE, SOLD_FIELD, saleKeys } from '../../src/redis/keys.ts';
import { fire, type Answer } from '../helpers/load.ts';
import { freePorts, startTestRedis, type TestRedis } from '../helpers/servers.ts';
import { startTestSpike, type TestSpike } from '../helpers/spike.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

const keys = saleKeys(DEFAULT_SALE);
let redis: TestRedis;
let spike: TestSpike | undefined;
let nextUser = 0;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterEach(async () => {
  await spike?.close();
  spike = undefined;
});
afterAll(async () => {
  await redis.close();
});

/** `n` requests from new users, spread over the workers. */
function wave(s: TestSpike, n: number, concurrency = 50): Promise<Answer[]> {
  return fire(
    Array.from({ length: n }, (_, i) => `${s.url(i % s.ports.length)}/buy/ticket?user=f${nextUser++}`),
    concurrency,
  );
}

async function sold(): Promise<number> {
  return Number(await redis.client.hget(keys.sale, SOLD_FIELD));
}

/** The invariants: sold == total, one order per sale, every buyer distinct and recorded once. */
async function expectSaleComplete(total: number): Promise<void> {
  expect(await sold()).toBe(total);
  expect(await redis.client.xlen(keys.orders)).toBe(total);
  expect(await redis.client.hlen(keys.buyers)).toBe(total);
  const users = (await redis.client.xrange(keys.orders, '-', '+')).map(([, f]) => f[f.indexOf('user') + 1]);
  expect(new Set(users).size).toBe(total);
}

async function until(what: string, ok: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

describe('failures mid-sale', () => {
  test('a crashed worker thread is restarted with its local stock, and the sale still sells exactly the total', async () => {
    spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '3000', SPIKE_RESET: 'force' });
    const s = spike;
    const running = wave(s, 6000, 100);
    await until('some sales', async () => (await sold()) >= 500);
    const before = s.stock.snapshot().workers[1]!;
    s.pool.thread(1)!.terminate();
    await running;
    await s.pool.listening(1);
    const after = s.stock.snapshot().workers[1]!;
    expect(s.pool.restarts(1)).toBe(1);
    expect(after.sales).toBeGreaterThanOrEqual(before.sales);
    const res = await fetch(`${s.url(1)}/buy/ticket?user=after-restart`);
    expect(res.status).toBe(200);
    while ((await sold()) < 3000) await wave(s, 2000, 100);
    await expectSaleComplete(3000);
  });

  test('Redis stopped mid-sale: 503s while it is down, sales resume by themselves, no oversell, no lost order', async () => {
    spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '2000', SPIKE_RESET: 'force' });
    const s = spike;
    await wave(s, 800);
    const soldBefore = await sold();
    expect(soldBefore).toBe(800);
    await redis.stop();
    const down = await wave(s, 200);
    expect(down.every((a) => a.status === 503)).toBe(true);
    expect(down.every((a) => a.body.error === 'unavailable')).toBe(true);
    const health = await fetch(`${s.url(0)}/healthz`);
    expect(health.status).toBe(503);
    await redis.start();
    await until('workers to reach Redis again', async () => {
      const checks = await Promise.all(s.ports.map((_, i) => fetch(`${s.url(i)}/healthz`).then((r) => r.status)));
      return checks.every((status) => status === 200);
    });
    expect(await sold()).toBe(soldBefore);
    while ((await sold()) < 2000) await wave(s, 1000);
    await expectSaleComplete(2000);
  });

  test('the supervisor stopped and started again mid-sale continues from Redis without a reset', async () => {
    const ports = await freePorts(4);
    spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '2000', SPIKE_RESET: 'force' }, ports);
    await wave(spike, 1200);
    await spike.close();
    spike = undefined;
    const soldBefore = await sold();
    expect(soldBefore).toBe(1200);

    spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '99999' }, ports);
    expect(spike.stock.snapshot()).toMatchObject({ total: 2000, sold: 1200 });
    expect(await sold()).toBe(1200);
    const answers = await wave(spike, 2000);
    expect(answers.filter((a) => a.body.code === 1)).toHaveLength(800);
    await expectSaleComplete(2000);
  });
});
