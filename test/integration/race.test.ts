// The invariants under a real race: four worker threads, one Redis, more buyers than tickets.
// Never more than total, never less while demand remains, every sale on the order stream.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { saleKeys, DEFAULT_SALE, SOLD_FIELD } from '../../src/redis/keys.ts';
import { tallyStats } from '../../src/http/stat-log.ts';
import { countBy, fire } from '../helpers/load.ts';
import { startTestRedis, tempDir, type TestRedis } from '../helpers/servers.ts';
import { startTestSpike, type TestSpike } from '../helpers/spike.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

const keys = saleKeys(DEFAULT_SALE);
let redis: TestRedis;
let spike: TestSpike | undefined;
const logDir = tempDir('race-logs');

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await spike?.close();
  await redis.close();
  rmSync(logDir, { recursive: true, force: true });
});

async function orders(): Promise<{ user: string; port: string }[]> {
  const entries = await redis.client.xrange(keys.orders, '-', '+');
  return entries.map(([, fields]) => {
    const record: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
    return record as { user: string; port: string };
  });
}

describe('buyers racing over four workers', () => {
  test('sells exactly 10 000 when 20 000 distinct users race over four workers', async () => {
    spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '10000', SPIKE_RESET: 'force', SPIKE_LOG_DIR: logDir });
    const urls = Array.from({ length: 20_000 }, (_, i) => `${spike!.url(i % 4)}/buy/ticket?user=u${i}`);
    const answers = await fire(urls, 200);

    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const codes = countBy(answers, (a) => Number(a.body.code));
    expect(codes.get(1)).toBe(10_000);
    expect(codes.get(-1)).toBe(10_000);
    expect(Number(await redis.client.hget(keys.sale, SOLD_FIELD))).toBe(10_000);

    const recorded = await orders();
    expect(recorded).toHaveLength(10_000);
    expect(new Set(recorded.map((o) => o.user)).size).toBe(10_000);
    const soldIds = answers.filter((a) => a.body.code === 1).map((a) => a.body.orderId);
    expect(new Set(soldIds).size).toBe(10_000);
    expect(await redis.client.hlen(keys.buyers)).toBe(10_000);

    // The stat log is flushed on shutdown: it must account for every sale.
    await spike.close();
    spike = undefined;
    const { ports, unparsed } = tallyStats(logDir);
    expect(unparsed).toBe(0);
    expect(ports.reduce((n, p) => n + (p.results.sold ?? 0), 0)).toBe(10_000);
    expect(ports.reduce((n, p) => n + p.requests, 0)).toBe(20_000);
  });

  test('sells one user one ticket when they try 50 times at once across the workers; past the cap they get 429', async () => {
    // The node counts the user's attempts in shared memory whichever worker takes them: 30 try
    // (one buys, 29 are told they hold it), the other 20 are refused before Redis.
    spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '10000', SPIKE_RESET: 'force', SPIKE_USER_ATTEMPTS: '30' });
    const answers = await fire(
      Array.from({ length: 50 }, (_, i) => `${spike!.url(i % 4)}/buy/ticket?user=greedy`),
      50,
    );
    await spike.close();
    spike = undefined;
    const tried = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    expect(tried).toHaveLength(30);
    expect(refused).toHaveLength(20);
    expect(refused[0]!.body).toMatchObject({ error: 'too_many_attempts' });
    expect(Number(refused[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const codes = countBy(tried, (a) => Number(a.body.code));
    expect(codes.get(1)).toBe(1);
    expect(codes.get(2)).toBe(29);
    expect(new Set(tried.map((a) => a.body.orderId)).size).toBe(1);
    expect(Number(await redis.client.hget(keys.sale, SOLD_FIELD))).toBe(1);
    expect(await redis.client.xlen(keys.orders)).toBe(1);
  });

  test('the attempt cap holds one user back and no other: 20 people with 3 tries each all get theirs', async () => {
    spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '100', SPIKE_RESET: 'force', SPIKE_USER_ATTEMPTS: '3' });
    const urls = Array.from({ length: 100 }, (_, i) => `${spike!.url(i % 4)}/buy/ticket?user=${i < 40 ? 'bot' : `p${i % 20}`}`);
    const answers = await fire(urls, 20);
    await spike.close();
    spike = undefined;
    const of = (user: (u: string) => boolean) => answers.filter((a) => user(new URL(a.url).searchParams.get('user')!));
    expect(of((u) => u === 'bot').filter((a) => a.status === 200)).toHaveLength(3);
    const people = of((u) => u !== 'bot');
    expect(people.filter((a) => a.status === 200)).toHaveLength(60);
    expect(people.filter((a) => a.body.code === 1)).toHaveLength(20);
    expect(Number(await redis.client.hget(keys.sale, SOLD_FIELD))).toBe(21);
  });

  test('sells every ticket when one worker gets no traffic, with at most about total + buffer buyers sent to Redis', async () => {
    // Workers 1-3 hold 3 × 300 = 900 units for 1000 tickets: the sync must top them up from
    // what worker 0 never sold. Demand is 4000 users; Redis must not see one call per request.
    spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '1000', SPIKE_RESET: 'force', SPIKE_LOCAL_STOCK: '300' });
    await redis.client.config('RESETSTAT');
    const urls = Array.from({ length: 4000 }, (_, i) => `${spike!.url(1 + (i % 3))}/buy/ticket?user=w${i}`);
    const answers = await fire(urls, 60);
    const snapshot = spike.stock.snapshot();
    await spike.close();
    spike = undefined;
    expect(answers.filter((a) => a.body.code === 1)).toHaveLength(1000);
    expect(Number(await redis.client.hget(keys.sale, SOLD_FIELD))).toBe(1000);
    expect(snapshot.workers[0]).toMatchObject({ sales: 0, stock: 300 });
    const info = await redis.client.info('commandstats');
    const calls = [...info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    // Each script call carries a batch of buyers, so calls ≤ buyers sent ≤ total + buffer + in flight.
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThan(1000 * 1.2 + 60 * 2);
  });
});
