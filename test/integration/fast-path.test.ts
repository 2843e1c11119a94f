// The sold-out answer on Bun's native route (src/http/fast-path.ts) gives exactly the app's
// answers: the same body, counted and logged; and every request it must not answer itself —
// HEAD, a user given twice or malformed or encoded, another sale still selling — is the app's.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { readFileSync, rmSync } from 'node:fs';
import { statLogPath } from '../../src/http/stat-log.ts';
import { startTestRedis, tempDir, type TestRedis } from '../helpers/servers.ts';
import { startTestSpike, type TestSpike } from '../helpers/spike.ts';

setDefaultTimeout(30_000);

let redis: TestRedis;
let spike: TestSpike;
const logDir = tempDir('fast-path-logs');

beforeAll(async () => {
  redis = await startTestRedis();
  spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '1', SPIKE_RESET: 'force', SPIKE_LOG_DIR: logDir });
  const first = (await (await fetch(`${spike.url(0)}/buy/ticket?user=first`)).json()) as { code: number };
  expect(first.code).toBe(1);
  // Every worker sees the sale sold out (the flag the native route reads).
  const deadline = Date.now() + 5000;
  while (!spike.stock.isSoldOut() && Date.now() < deadline) await Bun.sleep(10);
  await redis.client.hset('later', 'ticket_total_nums', 5, 'ticket_sold_nums', 0);
  await redis.client.sadd('spike:sales', 'later');
  await spike.sync.kick();
});
afterAll(async () => {
  await spike?.close();
  await redis?.close();
  rmSync(logDir, { recursive: true, force: true });
});

const get = async (path: string, init?: RequestInit) => {
  const res = await fetch(`${spike.url(1)}${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, res };
};

describe('the sold-out answer on the native route', () => {
  test('answers as the app does, and counts and logs it', async () => {
    const before = spike.stock.answers(1)[1]!;
    const named = await get('/buy/ticket?user=late');
    const anonymous = await get('/buy/ticket');
    const encoded = await get('/buy/ticket?user=ann%40example.org');
    for (const answer of [named, anonymous, encoded]) {
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ code: -1, msg: 'sold out', port: spike.ports[1] });
      expect(answer.res.headers.get('content-type')).toBe('application/json');
    }
    expect(spike.stock.answers(1)[1]! - before).toBe(3);
    // The stat log is written on close (it buffers).
    await spike.close();
    const lines = readFileSync(statLogPath(logDir, spike.ports[1]!), 'utf8');
    expect(lines).toContain('result=soldout code=-1 localSales=0 user=late');
    expect(lines).toContain('user=ann@example.org');
    spike = await startTestSpike(redis.url, { SPIKE_LOG_DIR: logDir });
  });

  test('leaves to the app what it must not answer itself', async () => {
    expect((await get('/buy/ticket?user=a&user=b')).status).toBe(400);
    expect((await get('/buy/ticket?user=not%7Cok')).status).toBe(400);
    expect((await get('/buy/ticket?user=')).status).toBe(400);
    expect((await get('/buy/ticket?user=%3Cb%3E')).status).toBe(400);
    expect((await get('/buy/ticket?user=x', { method: 'HEAD' })).status).toBe(405);
    expect((await get('/buy/ticket?sale=nope&user=x')).status).toBe(404);
    const later = await get('/buy/ticket?sale=later&user=x');
    expect(later.body).toMatchObject({ code: 1 });
  });
});
