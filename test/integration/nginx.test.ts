// nginx in front of the workers, with the runtime copy of nginx.conf: the original's 1:2:3:4
// split, and passive failover so a dead worker costs no sale.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { DEFAULT_SALE, SOLD_FIELD, saleKeys } from '../../src/redis/sale.ts';
import { NGINX_TEMPLATE } from '../../src/services/nginx.ts';
import { countBy, fire } from '../helpers/load.ts';
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
    const spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '100000', SPIKE_RESET: '1' });
    const nginx = await startTestNginx(spike.ports);
    try {
      const answers = await fire(Array.from({ length: 1000 }, () => `${nginx.url}/buy/ticket`), 100);
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
    const spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '1000', SPIKE_RESET: '1', SPIKE_LOCAL_STOCK: '300' }, live);
    const nginx = await startTestNginx([dead!, ...live]);
    try {
      const answers = await fire(Array.from({ length: 3000 }, (_, i) => `${nginx.url}/buy/ticket?user=n${i}`), 50);
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
});
