// Redis killed with SIGKILL mid-sale. With appendfsync always, every sale a buyer was told of
// (code 1) is still there after the restart; nothing is oversold either way.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { rmSync } from 'node:fs';
import Redis from 'ioredis';
import { ordersPresent } from '../../src/redis/orders.ts';
import { DEFAULT_SALE, SOLD_FIELD, saleKeys } from '../../src/redis/sale.ts';
import { startRedisServer, type RedisServer } from '../../src/services/redis-server.ts';
import { fire, type Answer } from '../helpers/load.ts';
import { tempDir } from '../helpers/servers.ts';
import { startTestSpike, type TestSpike } from '../helpers/spike.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

const sale = saleKeys(DEFAULT_SALE);
let dir: string;
let server: RedisServer;
let spike: TestSpike;

beforeAll(async () => {
  dir = tempDir('durable-redis');
  server = await startRedisServer({ dir, appendfsync: 'always' });
  spike = await startTestSpike(server.url, { SPIKE_TOTAL: '100000', SPIKE_RESET: '1', SPIKE_WRITER: '0' });
});
afterAll(async () => {
  await spike.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('Redis killed mid-sale', () => {
  test('with appendfsync always, no acknowledged sale is lost, and the sale goes on after the restart', async () => {
    let user = 0;
    const answers: Answer[] = [];
    const deadline = Date.now() + 1500;
    const buying = (async () => {
      while (Date.now() < deadline) answers.push(...(await fire(Array.from({ length: 200 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=d${user++}`), 50)));
    })();
    await Bun.sleep(500);
    server.process.kill('SIGKILL');
    await server.process.exited;
    await buying;
    expect(answers.some((a) => a.status === 503)).toBe(true);

    server = await startRedisServer({ dir, port: server.port, appendfsync: 'always' });
    const client = new Redis(server.url);
    try {
      const acknowledged = answers.filter((a) => a.body.code === 1).map((a) => String(a.body.orderId));
      expect(acknowledged.length).toBeGreaterThan(100);
      const present = await ordersPresent(client, sale, acknowledged);
      expect(acknowledged.filter((id) => !present.has(id))).toEqual([]);
      expect(Number(await client.hget(sale.sale, SOLD_FIELD))).toBeGreaterThanOrEqual(acknowledged.length);
      // The workers reconnect by themselves and sell again.
      let after = 0;
      for (let round = 0; round < 50 && after === 0; round++) {
        await Bun.sleep(100);
        after = (await fire(Array.from({ length: 20 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=r${round}-${i}`), 20)).filter((a) => a.body.code === 1).length;
      }
      expect(after).toBeGreaterThan(0);
    } finally {
      client.disconnect();
    }
  });
});
