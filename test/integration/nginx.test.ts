// nginx in front of the workers, with the runtime copy of nginx.conf: the original's 1:2:3:4
// split, and passive failover so a dead worker costs no sale.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { DEFAULT_SALE, SOLD_FIELD, saleKeys } from '../../src/redis/keys.ts';
import { NGINX_TEMPLATE } from '../../src/services/nginx.ts';
import { countBy, fire, rawHttp } from '../helpers/load.ts';
import { freePorts, startTestNginx, startTestRedis, type TestRedis } from '../helpers/servers.ts';
import { startTestSpike } from '../helpers/spike.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

const keys = saleKeys(DEFAULT_SALE);
let redis: TestRedis;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis.close();
});

describe('nginx', () => {
  test('nginx -t accepts the committed nginx.conf as it is', () => {
    const check = Bun.spawnSync(['nginx', '-t', '-c', NGINX_TEMPLATE], { stderr: 'pipe' });
    expect(check.stderr.toString()).toContain('syntax is ok');
    expect(check.exitCode).toBe(0);
  });

  test('splits 1000 requests 1:2:3:4 over the four workers', async () => {
    const spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '100000', SPIKE_RESET: 'force' });
    const nginx = await startTestNginx(spike.ports);
    try {
      const answers = await fire(
        Array.from({ length: 1000 }, () => `${nginx.url}/buy/ticket`),
        100,
      );
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      const byPort = countBy(answers, (a) => Number(a.body.port));
      spike.ports.forEach((port, i) => {
        const share = (byPort.get(port) ?? 0) / 1000;
        expect(Math.abs(share - (i + 1) / 10)).toBeLessThanOrEqual(0.01);
      });
      expect(Number(await redis.client.hget(keys.sale, SOLD_FIELD))).toBe(1000);
    } finally {
      await nginx.close();
      await spike.close();
    }
  });

  test('skips a worker port that is down for the whole sale, and the others sell exactly the total', async () => {
    // Four upstreams, but nothing listens on the first: its share must go to the others, and
    // their local stock (300 each, 900 in all) must be topped up to sell all 1000.
    const [dead, ...live] = await freePorts(4);
    const spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '1000', SPIKE_RESET: 'force', SPIKE_LOCAL_STOCK: '300' }, live);
    const nginx = await startTestNginx([dead!, ...live]);
    try {
      const answers = await fire(
        Array.from({ length: 3000 }, (_, i) => `${nginx.url}/buy/ticket?user=n${i}`),
        50,
      );
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      expect(answers.filter((a) => a.body.port === dead)).toEqual([]);
      expect(answers.filter((a) => a.body.code === 1)).toHaveLength(1000);
      expect(Number(await redis.client.hget(keys.sale, SOLD_FIELD))).toBe(1000);
      expect(await redis.client.xlen(keys.orders)).toBe(1000);
    } finally {
      await nginx.close();
      await spike.close();
    }
  });

  // A client's bad requests must never count as a worker's failure: nginx retries a 503 or a
  // closed connection on every worker and marks each down after max_fails, so a few such requests
  // a second once locked 28 of 32 real buyers out ("no live upstreams").
  test('bad requests through nginx during a sale get 4xx and shut no buyer out', async () => {
    const spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '1000', SPIKE_RESET: 'force' });
    const nginx = await startTestNginx(spike.ports);
    const port = Number(new URL(nginx.url).port);
    const bad: { what: string; status: number }[] = [];
    let attacking = true;
    const attack = (async () => {
      const requests: [string, () => Promise<number>][] = [
        ['GET an order id past 2^64', async () => (await fetch(`${nginx.url}/orders/99999999999999999999-0`)).status],
        [
          'pay an order id past 2^64',
          async () => (await fetch(`${nginx.url}/orders/99999999999999999999-0/pay`, { method: 'POST' })).status,
        ],
        [
          'cancel an order id past 2^64',
          async () => (await fetch(`${nginx.url}/orders/99999999999999999999-0/cancel`, { method: 'POST' })).status,
        ],
        ['method FOO', async () => (await rawHttp(port, 'FOO /buy/ticket HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status],
        ['lowercase get', async () => (await rawHttp(port, 'get /buy/ticket HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status],
      ];
      while (attacking) {
        for (const [what, send] of requests) bad.push({ what, status: await send() });
        await Bun.sleep(50);
      }
    })();
    try {
      await Bun.sleep(300);
      const buyers: Awaited<ReturnType<typeof fire>> = [];
      for (let round = 0; round < 8; round++) {
        buyers.push(
          ...(await fire(
            Array.from({ length: 4 }, (_, i) => `${nginx.url}/buy/ticket?user=b${round}-${i}`),
            4,
          )),
        );
        await Bun.sleep(150);
      }
      attacking = false;
      await attack;
      expect(buyers).toHaveLength(32);
      expect(buyers.filter((a) => a.status !== 200 || a.body.code !== 1)).toEqual([]);
      expect(bad.length).toBeGreaterThanOrEqual(50);
      expect(bad.filter((b) => b.status < 400 || b.status >= 500)).toEqual([]);
    } finally {
      attacking = false;
      await attack;
      await nginx.close();
      await spike.close();
    }
  });

  // Bun 1.4.5 sells to a client that half-closes its socket or pipelines two requests without
  // answering it (README, known limits); nginx reads the whole request and answers.
  test('a half-closed or pipelined purchase through nginx is answered', async () => {
    const spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '1000', SPIKE_RESET: 'force' });
    const nginx = await startTestNginx(spike.ports);
    const port = Number(new URL(nginx.url).port);
    try {
      const half = await rawHttp(port, 'GET /buy/ticket?user=half HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { halfClose: true });
      expect(half.status).toBe(200);
      expect(half.text).toContain('"code":1');
      const two = await rawHttp(
        port,
        'GET /buy/ticket?user=p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /buy/ticket?user=p2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      );
      expect(two.text.match(/"code":1/g)).toHaveLength(2);
      expect(Number(await redis.client.hget(keys.sale, SOLD_FIELD))).toBe(3);
    } finally {
      await nginx.close();
      await spike.close();
    }
  });
});

describe('every answer a client can get through nginx', () => {
  // A URI over 8 KB, a body over nginx's limit and an unknown HTTP version came back as nginx's
  // HTML pages; Bun's 400 and 431 passed through with an empty body.
  test("is JSON in the workers' shape, and says nosniff: too long, too large, bad headers, bad version, unknown transfer coding", async () => {
    const spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '10', SPIKE_RESET: 'force' });
    const nginx = await startTestNginx(spike.ports);
    const port = Number(new URL(nginx.url).port);
    try {
      const long = await fetch(`${nginx.url}/buy/ticket?user=${'a'.repeat(9000)}`);
      const big = await fetch(`${nginx.url}/buy/ticket`, {
        method: 'POST',
        body: 'x'.repeat(100_000),
        headers: { 'content-type': 'text/plain' },
      });
      const cases = [
        [long.status, await long.text(), long.headers.get('x-content-type-options')],
        [big.status, await big.text(), big.headers.get('x-content-type-options')],
      ];
      expect(cases[0]).toEqual([414, '{"error":"uri_too_long","msg":"the address is too long"}', 'nosniff']);
      expect(cases[1]).toEqual([413, '{"error":"too_large","msg":"the request body is too large"}', 'nosniff']);
      const raw = async (request: string) => {
        const { status, text } = await rawHttp(port, request);
        return { status, body: text.slice(text.indexOf('\r\n\r\n') + 4), nosniff: /x-content-type-options: nosniff/i.test(text) };
      };
      expect(await raw(`GET /buy/ticket HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(10_000)}\r\nConnection: close\r\n\r\n`)).toMatchObject({
        status: 431,
        body: '{"error":"headers_too_large","msg":"the request headers are too large"}',
      });
      expect(await raw('GET /buy/ticket HTTP/1.1\r\nHost: x\r\nbad header line\r\nConnection: close\r\n\r\n')).toMatchObject({
        status: 400,
        body: '{"error":"bad_request","msg":"nginx could not read the request"}',
      });
      expect(await raw('GET /buy/ticket HTTP/3.0\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatchObject({ status: 505, nosniff: true });
      // An unknown transfer coding was the one answer in nginx's HTML.
      for (const coding of ['xchunked', 'chunked, identity'])
        expect(
          await raw(`POST /buy/ticket HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${coding}\r\nConnection: close\r\n\r\n0\r\n\r\n`),
        ).toMatchObject({
          status: 501,
          body: '{"error":"not_implemented","msg":"send the body with Content-Length or Transfer-Encoding: chunked"}',
          nosniff: true,
        });
      const ok = await fetch(`${nginx.url}/buy/ticket?user=fine`);
      expect(ok.headers.get('x-content-type-options')).toBe('nosniff');
      expect(await ok.json()).toMatchObject({ code: 1 });
    } finally {
      await nginx.close();
      await spike.close();
    }
  });
});
