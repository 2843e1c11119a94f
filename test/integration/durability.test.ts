// Redis killed with SIGKILL mid-sale. With the default settings, every sale a buyer was told of
// (code 1) is still there after the restart; nothing is oversold either way. (With the earlier
// default, appendfsync everysec, one bench run lost 35 of 7 319 acknowledged sales this way:
// Redis postpones its AOF write while a slow background fsync runs, and still answers.)
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { rmSync } from 'node:fs';
import Redis from 'ioredis';
import { loadConfig } from '../../src/config.ts';
import { createRedis, waitReady } from '../../src/redis/client.ts';
import { ordersPresent } from '../../src/orders/store.ts';
import { lossWindows } from '../../src/redis/persistence.ts';
import { DEFAULT_SALE, SOLD_FIELD, saleKeys } from '../../src/redis/keys.ts';
import { freePort } from '../../src/services/free-port.ts';
import { startRedisServer, type RedisServer } from '../../src/services/redis-server.ts';
import { wrk } from '../../bench/lib/load.ts';
import { fire, type Answer } from '../helpers/load.ts';
import { tempDir } from '../helpers/servers.ts';
import { startTestSpike, type TestSpike } from '../helpers/spike.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(180_000);

const sale = saleKeys(DEFAULT_SALE);
let dir: string;
let server: RedisServer;
let spike: TestSpike;

beforeAll(async () => {
  dir = tempDir('durable-redis');
  // The private Redis exactly as `bun run start` starts it with the default settings.
  server = await startRedisServer({ dir, appendfsync: loadConfig({}, []).appendfsync });
  spike = await startTestSpike(server.url, { SPIKE_TOTAL: '100000000', SPIKE_RESET: 'force', SPIKE_WRITER: '0' });
});
afterAll(async () => {
  await spike.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Named buyers on every worker, 100 at a time, until stopped; the answers so far, as they come. */
function buyers(prefix: string): { answers: Answer[]; stop: () => Promise<void> } {
  const answers: Answer[] = [];
  let running = true;
  let user = 0;
  const done = (async () => {
    while (running)
      answers.push(
        ...(await fire(
          Array.from({ length: 100 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=${prefix}${user++}`),
          50,
        )),
      );
  })();
  return {
    answers,
    stop: () => {
      running = false;
      return done;
    },
  };
}

/** Waits until `ready` holds, checking every 20 ms, at most `ms` (then throws `what`). */
async function until(ready: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms / 1000} s`);
    await Bun.sleep(20);
  }
}

const sold = (answers: readonly Answer[]) => answers.filter((a) => a.body.code === 1).length;

describe('Redis killed mid-sale', () => {
  test('with the default settings, five SIGKILLs under a write-heavy load lose no acknowledged sale, and the sale goes on', async () => {
    expect(loadConfig({}, []).appendfsync).toBe('always');
    let acknowledgedAll = 0;
    for (let round = 0; round < 5; round++) {
      // wrk buys as new users on one worker while named buyers buy on all four: Redis writes its AOF hard.
      const load = wrk(spike.url(3), { connections: 50, seconds: 2, userPrefix: `w${round}-` }).catch(() => undefined);
      const buying = buyers(`d${round}-`);
      // Killed mid-sale: once buyers were told of 60 sales, and until they are answered 503.
      await until(() => sold(buying.answers) >= 60, 'no 60 sales');
      server.process.kill('SIGKILL');
      await server.process.exited;
      await until(() => buying.answers.some((a) => a.status === 503), 'no 503 after the kill');
      await buying.stop();
      await load;
      const answers = buying.answers;

      server = await startRedisServer({ dir, port: server.port, appendfsync: loadConfig({}, []).appendfsync });
      const client = new Redis(server.url);
      try {
        const acknowledged = answers.filter((a) => a.body.code === 1).map((a) => String(a.body.orderId));
        expect(acknowledged.length).toBeGreaterThanOrEqual(60);
        const present = await ordersPresent(client, sale, acknowledged);
        expect(acknowledged.filter((id) => !present.has(id))).toEqual([]);
        expect(Number(await client.hget(sale.sale, SOLD_FIELD))).toBeGreaterThanOrEqual(acknowledged.length);
        acknowledgedAll += acknowledged.length;
      } finally {
        client.disconnect();
      }
      // The workers reconnect by themselves and sell again.
      let after = 0;
      for (let wait = 0; wait < 300 && after === 0; wait++) {
        after = (
          await fire(
            Array.from({ length: 20 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=r${round}-${wait}-${i}`),
            20,
          )
        ).filter((a) => a.body.code === 1).length;
        if (after === 0) await Bun.sleep(100);
      }
      expect(after).toBeGreaterThan(0);
    }
    expect(acknowledgedAll).toBeGreaterThanOrEqual(300);
  });
});

describe("an external Redis's persistence", () => {
  async function windows(args: string[]): Promise<string[]> {
    const port = await freePort();
    const folder = tempDir('persist');
    const proc = Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--dir', folder, ...args], {
      stdout: 'ignore',
      stderr: 'ignore',
    });
    const client = createRedis(`redis://127.0.0.1:${port}`, { timeoutMs: 2000, name: 'test-persist' });
    try {
      await waitReady(client, 5000, 'test');
      return await lossWindows(client, `127.0.0.1:${port}`);
    } finally {
      client.disconnect();
      proc.kill();
      await proc.exited;
      rmSync(folder, { recursive: true, force: true });
    }
  }

  test('is named with its loss window when it can lose acknowledged sales, and not when it cannot', async () => {
    expect(await windows(['--appendonly', 'yes', '--appendfsync', 'always'])).toEqual([]);
    expect((await windows(['--appendonly', 'yes', '--appendfsync', 'everysec'])).join()).toContain(
      'appendfsync everysec, so a crash or kill can lose up to ~2 s',
    );
    expect((await windows(['--appendonly', 'no', '--save', ''])).join()).toContain(
      'appendonly is off, so a restart of that Redis loses every sale',
    );
    expect((await windows(['--appendonly', 'yes', '--appendfsync', 'always', '--rename-command', 'CONFIG', '""'])).join()).toContain(
      'cannot read its persistence settings',
    );
  });
});
