// One worker's HTTP API, called in-process with app.request (no server), on a real Redis.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { createApp } from '../../src/http/app.ts';
import { createRedis } from '../../src/redis/client.ts';
import { ensureSale, purchase } from '../../src/redis/sale.ts';
import { saleKeys } from '../../src/redis/keys.ts';
import { freePort } from '../../src/services/free-port.ts';
import { LocalStock } from '../../src/stock/local-stock.ts';
import { startTestRedisWithClient, type TestRedis } from '../helpers/servers.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

let redis: TestRedis;
let client: ReturnType<typeof createRedis>;
let n = 0;

beforeAll(async () => {
  ({ redis, client } = await startTestRedisWithClient('test-app', 1000));
});
afterAll(async () => {
  await redis.close();
});

interface Rig {
  app: ReturnType<typeof createApp>;
  stock: LocalStock;
  keys: ReturnType<typeof saleKeys>;
  dry: number;
  /** Everything Redis holds for the sale, to prove a request changed nothing. */
  state(): Promise<unknown>;
}

async function rig(total: number, localStock: number, on = client, refillWaitMs = 0): Promise<Rig> {
  const keys = saleKeys(`app-${++n}`);
  await ensureSale(client, keys, total, true);
  const stock = LocalStock.create(1);
  stock.refill(0, localStock);
  const r: Rig = {
    keys,
    stock,
    dry: 0,
    app: createApp({
      port: 3001,
      worker: 0,
      sale: (id) =>
        id === 'ticket_hash_key' ? { stock, buy: (user) => purchase(on, keys, user, { port: 3001, payWindowMs: 0 }) } : undefined,
      defaultSale: 'ticket_hash_key',
      ping: () => on.ping(),
      onTopUp: () => r.dry++,
      refillWaitMs,
    }),
    state: async () => [
      await client.hgetall(keys.sale),
      await client.hgetall(keys.buyers),
      await client.xlen(keys.orders),
      stock.snapshot(),
    ],
  };
  return r;
}

const URL_ = 'http://localhost/buy/ticket';

async function evalCalls(): Promise<number> {
  const info = await client.info('commandstats');
  return [...info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

describe("the browser's note of its order (a cookie for GET /orders/mine)", () => {
  // Signing the note cost every purchase an HMAC; only a browser keeps cookies, so only a browser's
  // purchase (it sends Sec-Fetch-Mode; the buyer's page buys with a POST) pays for one.
  test('is left for a browser and for a POST, not for a program', async () => {
    const { app } = await rig(10, 10);
    const note = (res: Response) => res.headers.get('set-cookie');
    const program = await app.request(`${URL_}?user=prog`);
    expect(((await program.json()) as { code: number }).code).toBe(1);
    expect(note(program)).toBeNull();
    const browser = await app.request(`${URL_}?user=brow`, { headers: { 'Sec-Fetch-Mode': 'navigate' } });
    expect(note(browser)).toMatch(/^spike_order_\w+=\d+-\d+\.[\w-]{22}; Path=\/; Max-Age=172800; HttpOnly; SameSite=Lax$/);
    const page = await app.request(URL_, {
      method: 'POST',
      body: JSON.stringify({ user: 'pagey' }),
      headers: { 'Content-Type': 'application/json' },
    });
    expect(note(page)).toMatch(/^spike_order_/);
  });
});

describe('GET /buy/ticket', () => {
  test('sells with code 1, an order id and the port; a second try by the same user gets code 2 and that order', async () => {
    const { app, keys } = await rig(10, 5);
    const first = await app.request(`${URL_}?user=alice`);
    expect(first.status).toBe(200);
    const sold = (await first.json()) as { code: number; orderId: string; port: number };
    expect(sold).toMatchObject({ code: 1, port: 3001 });
    expect(await client.hget(keys.buyers, 'alice')).toBe(sold.orderId);
    const again = await (await app.request(`${URL_}?user=alice`)).json();
    expect(again).toMatchObject({ code: 2, orderId: sold.orderId });
  });

  // Real names were refused: "Bob Smith" and "José" got 400 with a rule of ASCII letters.
  test('a name as people write it buys, and the same name spelled with other capitals or spaces is the same buyer', async () => {
    const { app, keys } = await rig(10, 5);
    const first = (await (await app.request(`${URL_}?user=${encodeURIComponent('José Núñez')}`)).json()) as {
      code: number;
      orderId: string;
    };
    expect(first.code).toBe(1);
    expect(await client.hget(keys.buyers, 'josé núñez')).toBe(first.orderId);
    const decomposed = 'JOSE\u0301  NU\u0301N\u0303EZ ';
    const again = await (await app.request(`${URL_}?user=${encodeURIComponent(decomposed)}`)).json();
    expect(again).toMatchObject({ code: 2, orderId: first.orderId });
    expect((await (await app.request(`${URL_}?user=${encodeURIComponent("Zoë O'Brien-Smith")}`)).json()) as object).toMatchObject({
      code: 1,
    });
  });

  test('an anonymous request buys, as in the original ab test', async () => {
    const { app, keys } = await rig(10, 5);
    expect(await (await app.request(URL_)).json()).toMatchObject({ code: 1 });
    expect(await client.hget(keys.sale, 'ticket_sold_nums')).toBe('1');
  });

  test('after Redis says sold out, every request is answered locally without calling Redis', async () => {
    const { app, stock } = await rig(1, 100);
    expect((await (await app.request(`${URL_}?user=a`)).json()) as object).toMatchObject({ code: 1 });
    expect((await (await app.request(`${URL_}?user=b`)).json()) as object).toMatchObject({ code: -1 });
    expect(stock.isSoldOut()).toBe(true);
    const before = await evalCalls();
    for (let i = 0; i < 20; i++) expect(await (await app.request(`${URL_}?user=c${i}`)).json()).toMatchObject({ code: -1 });
    expect(await evalCalls()).toBe(before);
  });

  test('with no local stock left it answers sold out without Redis and reports dry once', async () => {
    const r = await rig(100, 2);
    for (let i = 0; i < 2; i++) expect(await (await r.app.request(`${URL_}?user=x${i}`)).json()).toMatchObject({ code: 1 });
    const before = await evalCalls();
    for (let i = 0; i < 5; i++) expect(await (await r.app.request(`${URL_}?user=y${i}`)).json()).toMatchObject({ code: -1 });
    expect(await evalCalls()).toBe(before);
    expect(r.dry).toBe(1);
  });

  test('asks for a top-up once when its stock runs low, while it still sells', async () => {
    const r = await rig(100, 5);
    r.stock.setLowWater(2);
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(((await (await r.app.request(`${URL_}?user=low${i}`)).json()) as { code: number }).code);
    expect(codes).toEqual([1, 1, 1, 1]);
    expect(r.dry).toBe(1);
  });

  test('a dry worker waits for its top-up and sells instead of wrongly answering sold out', async () => {
    const r = await rig(100, 0, client, 2000);
    const pending = r.app.request(`${URL_}?user=patient`);
    await Bun.sleep(20);
    expect(r.dry).toBe(1);
    r.stock.refill(0, 5);
    expect(await (await pending).json()).toMatchObject({ code: 1 });
  });
});

describe('POST /buy/ticket', () => {
  test('takes the user from a JSON body or a form body', async () => {
    const { app, keys } = await rig(10, 5);
    const json = await app.request(URL_, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'jay' }),
    });
    expect(await json.json()).toMatchObject({ code: 1 });
    const form = await app.request(URL_, { method: 'POST', body: new URLSearchParams({ user: 'fay' }) });
    expect(await form.json()).toMatchObject({ code: 1 });
    expect((await client.hkeys(keys.buyers)).sort()).toEqual(['fay', 'jay']);
  });
});

describe('bad input changes nothing', () => {
  const post = (body: string, type: string) => ({ method: 'POST', headers: { 'content-type': type }, body });
  test.each([
    ['a user id longer than 64 characters', `${URL_}?user=${'a'.repeat(65)}`, {}, 400, 'bad_user'],
    ['a user id with a character no name has', `${URL_}?user=a%7Cb`, {}, 400, 'bad_user'],
    ['a user id of spaces only', `${URL_}?user=%20%20`, {}, 400, 'bad_user'],
    ['an empty user id', `${URL_}?user=`, {}, 400, 'bad_user'],
    ['a body that is not JSON', URL_, post('{user:', 'application/json'), 400, 'bad_user'],
    ['a user that is not a string', URL_, post('{"user":42}', 'application/json'), 400, 'bad_user'],
    ['two different users', `${URL_}?user=a`, post('{"user":"b"}', 'application/json'), 400, 'bad_user'],
    ['a user given twice in the query', `${URL_}?user=a&user=b`, {}, 400, 'bad_user'],
    ['a user given twice in a form', URL_, post('user=a&user=b', 'application/x-www-form-urlencoded'), 400, 'bad_user'],
    ['a user given twice in the query of a POST', `${URL_}?user=a&user=b`, { method: 'POST' }, 400, 'bad_user'],
    ['a malformed multipart body', URL_, post('--x\r\nnot a part', 'multipart/form-data; boundary=x'), 400, 'bad_user'],
    ['a multipart body without a boundary', URL_, post('user=a', 'multipart/form-data'), 400, 'bad_user'],
    ['a body over 4 KiB', URL_, post(JSON.stringify({ user: 'a', pad: 'x'.repeat(5000) }), 'application/json'), 413, 'too_large'],
    ['a body of an unknown type', URL_, post('user=a', 'text/plain'), 415, 'unsupported_media_type'],
    ['DELETE', URL_, { method: 'DELETE' }, 405, 'method_not_allowed'],
    ['HEAD, which must not buy', URL_, { method: 'HEAD' }, 405, null],
    ['an unknown route', 'http://localhost/buy/tickets', {}, 404, 'not_found'],
    ['POST /stock', 'http://localhost/stock', { method: 'POST' }, 405, 'method_not_allowed'],
  ] as const)('%s gets its status', async (_, url, init, status, error) => {
    const r = await rig(10, 5);
    const before = await r.state();
    const res = await r.app.request(url, init as RequestInit);
    expect(res.status).toBe(status);
    if (error) expect(await res.json()).toMatchObject({ error });
    if (status === 405) expect(res.headers.get('allow')).toMatch(/GET/);
    expect(await r.state()).toEqual(before);
  });
});

describe('Redis unreachable', () => {
  test('answers 503 with Retry-After, gives the local unit back, and /healthz says 503', async () => {
    const dead = createRedis(`redis://127.0.0.1:${await freePort()}`, { timeoutMs: 200, name: 'test-dead' });
    try {
      const r = await rig(10, 5, dead);
      const res = await r.app.request(`${URL_}?user=zed`);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({ error: 'unavailable' });
      expect(r.stock.level(0)).toBe(5);
      expect((await r.app.request('http://localhost/healthz')).status).toBe(503);
      // Not ready, but alive: a liveness probe must not restart a worker for a Redis outage.
      expect((await r.app.request('http://localhost/readyz')).status).toBe(503);
      expect((await r.app.request('http://localhost/livez')).status).toBe(200);
    } finally {
      dead.disconnect();
    }
  });

  test('/healthz answers 200 when Redis answers', async () => {
    const r = await rig(1, 1);
    const res = await r.app.request('http://localhost/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, port: 3001 });
  });
});

describe('GET /stock', () => {
  test('serves the published global count and this worker without calling Redis', async () => {
    const r = await rig(10, 5);
    r.stock.publishGlobal(10, 4);
    const before = (await client.info('stats')).match(/total_commands_processed:(\d+)/)![1];
    const body = await (await r.app.request('http://localhost/stock')).json();
    expect(body).toMatchObject({ total: 10, sold: 4, remaining: 6, soldOut: false, port: 3001, local: { stock: 5, sales: 0 } });
    const after = (await client.info('stats')).match(/total_commands_processed:(\d+)/)![1];
    expect(Number(after) - Number(before)).toBe(1); // the first INFO itself
  });
});
