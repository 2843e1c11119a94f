// Signed users: with SPIKE_JWT_SECRET set, a purchase or an order call needs a valid, unexpired
// HS256 token; its sub is the buyer, and a user reaches only their own orders.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { NO_GUARD } from '../../src/redis/guard.ts';
import { sign } from 'hono/jwt';
import { createApp } from '../../src/http/app.ts';
import type { RedisClient } from '../../src/redis/client.ts';
import { redisOrderStore } from '../../src/orders/store.ts';
import { ensureSale, purchase } from '../../src/redis/sale.ts';
import { saleKeys } from '../../src/redis/keys.ts';
import { LocalStock } from '../../src/stock/local-stock.ts';
import { startTestRedisWithClient, type TestRedis } from '../helpers/servers.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

const SECRET = 'jwt-secret-for-tests-0123456789';
let redis: TestRedis;
let client: RedisClient;
let app: ReturnType<typeof createApp>;
const keys = saleKeys(`jwt-${process.pid}`);

beforeAll(async () => {
  ({ redis, client } = await startTestRedisWithClient('test-jwt', 2000));
  await ensureSale(client, keys, 10, true);
  const stock = LocalStock.create(1);
  stock.refill(0, 100);
  const sale = {
    stock,
    buy: (user: string) => purchase(client, keys, user, { port: 3001, payWindowMs: 60_000 }),
    orders: redisOrderStore(client, keys, NO_GUARD),
  };
  app = createApp({
    port: 3001,
    worker: 0,
    sale: (id) => (id === keys.sale ? sale : undefined),
    defaultSale: keys.sale,
    ping: () => client.ping(),
    jwtSecret: SECRET,
  });
});
afterAll(async () => {
  await redis.close();
});

const now = () => Math.floor(Date.now() / 1000);
const token = (claims: Record<string, unknown>, secret = SECRET) => sign({ exp: now() + 60, ...claims }, secret, 'HS256');
const request = (path: string, bearer?: string, method = 'GET') =>
  app.request(`http://localhost${path}`, { method, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });

describe('signed users', () => {
  test.each([
    ['no token', async () => undefined],
    ['an expired token', async () => token({ sub: 'ann', exp: now() - 10 })],
    ['a forged token (another secret)', async () => token({ sub: 'ann' }, 'another-secret-0123456789abcdef')],
    ['a token that never expires', async () => sign({ sub: 'ann' }, SECRET, 'HS256')],
    ['a token whose sub is not a user id', async () => token({ sub: 'has|bar' })],
  ])('%s gets 401 and buys nothing', async (_, make) => {
    const before = await client.hget(keys.sale, 'ticket_sold_nums');
    const res = await request('/buy/ticket', await make());
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'unauthorized' });
    expect(await client.hget(keys.sale, 'ticket_sold_nums')).toBe(before);
  });

  test("a valid token buys as its sub, and its user reaches only their own orders (403 for another's)", async () => {
    const ann = await token({ sub: 'ann' });
    const bob = await token({ sub: 'bob' });
    const bought = (await (await request('/buy/ticket', ann)).json()) as { code: number; orderId: string };
    expect(bought.code).toBe(1);
    expect(await client.hget(keys.buyers, 'ann')).toBe(bought.orderId);
    expect((await request(`/orders/${bought.orderId}`, ann)).status).toBe(200);
    expect((await request(`/orders/${bought.orderId}`, bob)).status).toBe(403);
    expect((await request(`/orders/${bought.orderId}/cancel`, bob, 'POST')).status).toBe(403);
    expect((await request(`/orders/${bought.orderId}/pay`, bob, 'POST')).status).toBe(403);
    expect((await request(`/orders/${bought.orderId}`)).status).toBe(401);
    expect(await (await request(`/orders/${bought.orderId}/pay`, ann, 'POST')).json()).toMatchObject({ state: 'paid' });
  });

  test('a user parameter that differs from the signed-in user is refused', async () => {
    const res = await request('/buy/ticket?user=mallory', await token({ sub: 'carol' }));
    expect(res.status).toBe(403);
    expect(await client.hget(keys.buyers, 'mallory')).toBeNull();
  });
});
