// The admin API on a running supervisor: several sales at once, stock added mid-sale, pause and
// resume, start and end times; and a token that guards every call.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import { createAdminApp } from '../../src/admin/api.ts';
import { createRedis, waitReady } from '../../src/redis/client.ts';
import { SaleBook } from '../../src/stock/sale-book.ts';
import type { OrderDb } from '../../src/orders/db.ts';
import { freePort } from '../../src/services/free-port.ts';
import { countBy, fire } from '../helpers/load.ts';
import { startTestRedis, type TestRedis } from '../helpers/servers.ts';
import { servesSale, startTestSpike, type TestSpike } from '../helpers/spike.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

const TOKEN = 'admin-token-for-tests-0123456789';
let redis: TestRedis;
let spike: TestSpike;
let admin: string;
let nextUser = 0;

beforeAll(async () => {
  redis = await startTestRedis();
  const port = await freePort();
  spike = await startTestSpike(redis.url, {
    SPIKE_TOTAL: '50',
    SPIKE_RESET: 'force',
    SPIKE_ADMIN_PORT: String(port),
    SPIKE_ADMIN_TOKEN: TOKEN,
  });
  admin = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await spike.close();
  await redis.close();
});

const call = (method: string, path: string, body?: unknown, token = TOKEN) =>
  fetch(`${admin}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

const served = (sale: string) => servesSale(spike, sale);

/** `n` new users try to buy a ticket of `sale`, spread over the workers; returns the answer codes. */
async function buyers(sale: string, n: number): Promise<Map<string | number, number>> {
  await served(sale);
  const answers = await fire(
    Array.from({ length: n }, (_, i) => `${spike.url(i % 4)}/buy/ticket?sale=${sale}&user=a${nextUser++}`),
    40,
  );
  return countBy(answers, (a) => (a.status === 200 ? Number(a.body.code) : `http ${a.status}`));
}

describe('the admin API', () => {
  test('refuses a call without the token or with a wrong one', async () => {
    expect((await fetch(`${admin}/sales`)).status).toBe(401);
    expect((await call('GET', '/sales', undefined, 'wrong-token-wrong-token')).status).toBe(401);
    const ok = await call('GET', '/sales');
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { id: string }[]).map((s) => s.id)).toContain('ticket_hash_key');
  });

  test('with no token configured it refuses everything and says how to enable it', async () => {
    const client = createRedis(redis.url, { timeoutMs: 1000, name: 'test-admin' });
    try {
      await waitReady(client, 5000, redis.url);
      const app = createAdminApp({
        tokens: [],
        redis: client,
        book: new SaleBook({ workers: 1 }),
        ports: [1],
        kick: () => {},
        restarts: () => 0,
      });
      const res = await app.request('http://localhost/sales', { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ error: 'admin_disabled', msg: expect.stringContaining('SPIKE_ADMIN_TOKEN') });
    } finally {
      client.disconnect();
    }
  });

  // Every exception was "503 Redis did not answer", bugs and database errors included.
  test('says what failed: Redis away is a 503, the database failing a 503 that says so, a bug a 500 with an id in the log', async () => {
    const client = createRedis(redis.url, { timeoutMs: 1000, name: 'test-admin-errors' });
    const away = createRedis(`redis://127.0.0.1:${await freePort()}`, { timeoutMs: 300, name: 'test-admin-away', quiet: true });
    const failing = (error: Error) => ({ orders: async () => Promise.reject(error) }) as unknown as OrderDb;
    const app = (redisClient: typeof client, db?: OrderDb) =>
      createAdminApp({
        tokens: [{ name: 'admin', token: TOKEN }],
        redis: redisClient,
        book: new SaleBook({ workers: 1 }),
        ports: [1],
        kick: () => {},
        restarts: () => 0,
        db,
      });
    const ask = async (a: ReturnType<typeof app>, method: string, path: string, body?: unknown) => {
      const res = await a.request(`http://localhost${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };
    try {
      await waitReady(client, 5000, redis.url);
      expect(await ask(app(away), 'GET', '/sales')).toMatchObject({ status: 503, body: { error: 'unavailable' } });
      const sqlite = Object.assign(new Error('database is locked'), { name: 'SQLiteError' });
      const admin = app(client, failing(sqlite));
      expect((await ask(admin, 'POST', '/sales', { id: 'errs', total: 1 })).status).toBe(201);
      expect((await ask(admin, 'POST', '/sales/errs/pause')).status).toBe(200);
      expect(await ask(admin, 'POST', '/sales/errs/archive')).toMatchObject({
        status: 503,
        body: { error: 'database_unavailable', msg: expect.stringContaining('database is locked') },
      });
      const bug = await ask(app(client, failing(new TypeError('rows.map is not a function'))), 'POST', '/sales/errs/archive');
      const { requestId } = bug.body;
      expect(bug.status).toBe(500);
      expect(bug.body.error).toBe('internal');
      expect(requestId).toMatch(/^[0-9a-f]{8}$/);
      expect(bug.body.msg).toContain(requestId!);
    } finally {
      client.disconnect();
      away.disconnect();
    }
  });

  test('creates a sale that sells beside the default one, exactly its total', async () => {
    const created = await call('POST', '/sales', { id: 'concert', total: 100 });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ id: 'concert', total: 100, sold: 0, remaining: 100, paused: false });
    expect((await call('POST', '/sales', { id: 'concert', total: 5 })).status).toBe(409);
    expect((await call('POST', '/sales', { id: '{bad}', total: 5 })).status).toBe(400);

    const [concert, standard] = await Promise.all([buyers('concert', 160), buyers('ticket_hash_key', 80)]);
    expect(concert.get(1)).toBe(100);
    expect(standard.get(1)).toBe(50);
    const state = (await (await call('GET', '/sales/concert')).json()) as {
      sold: number;
      reserved: number;
      node: { workers: { sales: number }[] };
    };
    expect(state).toMatchObject({ sold: 100, reserved: 100, remaining: 0 });
    expect(state.node.workers.reduce((n, w) => n + w.sales, 0)).toBe(100);
  });

  test('stock added mid-sale sells exactly the new total', async () => {
    await call('POST', '/sales', { id: 'extra', total: 30 });
    expect((await buyers('extra', 60)).get(1)).toBe(30);
    const added = await call('POST', '/sales/extra/stock', { add: 20 });
    expect(await added.json()).toMatchObject({ total: 50, remaining: 20 });
    let sold = 0;
    for (let round = 0; round < 20 && sold < 20; round++) {
      await Bun.sleep(50);
      sold += (await buyers('extra', 30)).get(1) ?? 0;
    }
    expect(sold).toBe(20);
    expect(await (await call('GET', '/sales/extra')).json()).toMatchObject({ total: 50, sold: 50 });
    expect((await call('POST', '/sales/extra/stock', { add: 0 })).status).toBe(400);
    // The shared memory counts in 32-bit slots: 2^31 tickets would show as a negative total.
    expect((await call('POST', '/sales/extra/stock', { add: 1_000_000_000 })).status).toBe(200);
    expect((await call('POST', '/sales/extra/stock', { add: 1_000_000_000 })).status).toBe(200);
    const over = await call('POST', '/sales/extra/stock', { add: 200_000_000 });
    expect(over.status).toBe(400);
    expect(await over.json()).toMatchObject({ error: 'bad_request', msg: expect.stringContaining('at most 2147483647') });
    expect(await (await call('GET', '/sales/extra')).json()).toMatchObject({ total: 2_000_000_050 });
  });

  test('a paused sale sells nothing, and sells again once resumed', async () => {
    await call('POST', '/sales', { id: 'paused', total: 40 });
    expect(await (await call('POST', '/sales/paused/pause')).json()).toMatchObject({ paused: true });
    expect(await buyers('paused', 20)).toEqual(new Map([[-3, 20]]));
    expect(await (await call('GET', '/sales/paused')).json()).toMatchObject({ sold: 0 });
    await call('POST', '/sales/paused/resume');
    expect((await buyers('paused', 20)).get(1)).toBe(20);
  });

  test('outside its start and end a sale answers code -3, not a sale', async () => {
    const soon = new Date(Date.now() + 3_600_000).toISOString();
    const past = new Date(Date.now() - 3_600_000).toISOString();
    await call('POST', '/sales', { id: 'later', total: 10, startsAt: soon });
    await call('POST', '/sales', { id: 'over', total: 10, startsAt: new Date(0).toISOString(), endsAt: past });
    expect(await buyers('later', 5)).toEqual(new Map([[-3, 5]]));
    expect(await buyers('over', 5)).toEqual(new Map([[-3, 5]]));
    expect((await call('POST', '/sales', { id: 'backwards', total: 1, startsAt: soon, endsAt: past })).status).toBe(400);
  });

  test('an unknown sale is a 404 for buyers and for the admin', async () => {
    expect((await fetch(`${spike.url(0)}/buy/ticket?sale=nope`)).status).toBe(404);
    expect((await call('GET', '/sales/nope')).status).toBe(404);
    expect((await call('POST', '/sales/nope/pause')).status).toBe(404);
  });

  // A liveness probe that touched Redis would restart every worker during a Redis blip.
  test('the supervisor answers /livez and /readyz without a token: not ready while a worker is down, ready again once it is back', async () => {
    expect(await (await fetch(`${admin}/livez`)).json()).toEqual({ ok: true });
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    spike.pool.thread(1)!.terminate();
    let notReady: Response | undefined;
    for (let i = 0; i < 100 && !notReady; i++) {
      const res = await fetch(`${admin}/readyz`);
      if (res.status === 503) notReady = res;
      else await Bun.sleep(5);
    }
    expect(await notReady!.json()).toMatchObject({ ok: false, msg: `workers not listening: ${spike.ports[1]}` });
    expect((await fetch(`${admin}/livez`)).status).toBe(200);
    await spike.pool.listening(1);
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    for (const probe of ['livez', 'readyz', 'healthz']) expect((await fetch(`${spike.url(1)}/${probe}`)).status).toBe(200);
  });

  // The admin API runs in this test process, so the CLI runs asynchronously (spawnSync would block the server).
  test('bun run sale creates, adds to, pauses, resumes and lists sales, and says every admin error in one line', async () => {
    const sale = async (token: string, ...args: string[]) => {
      const proc = Bun.spawn([process.execPath, 'run', 'sale', '--', ...args], {
        cwd: join(import.meta.dir, '..', '..'),
        env: { ...process.env, SPIKE_ADMIN_URL: admin, SPIKE_ADMIN_TOKEN: token },
        stdout: 'pipe',
        stderr: 'pipe',
      });
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { out, err, code };
    };
    const created = await sale(TOKEN, 'create', 'cli-sale', '--total', '12', '--starts-at', '2020-01-01T00:00:00Z');
    expect(created.out).toStartWith('cli-sale: 0 of 12 sold (0 paid), 12 left, open (2020-01-01T00:00:00.000Z to …)');
    expect(created.code).toBe(0);
    expect((await sale(TOKEN, 'add', 'cli-sale', '8')).out).toContain('0 of 20 sold');
    expect((await sale(TOKEN, 'pause', 'cli-sale')).out).toContain(', paused');
    expect((await sale(TOKEN, 'resume', 'cli-sale')).out).toContain(', open');
    expect((await sale(TOKEN, 'list')).out).toContain('cli-sale: 0 of 20 sold');
    expect(JSON.parse((await sale(TOKEN, 'status', 'cli-sale', '--json')).out)).toMatchObject({ id: 'cli-sale', total: 20, paused: false });
    const again = await sale(TOKEN, 'create', 'cli-sale', '--total', '5');
    expect(again.code).toBe(1);
    // One line of its own (bun run adds its $ and exit-code lines around it).
    expect(again.err.split('\n').filter((line) => line.startsWith('sale:'))).toEqual([
      'sale: sale cli-sale exists; add stock with POST /sales/cli-sale/stock (409 exists)',
    ]);
    const missing = await sale(TOKEN, 'status', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no sale nope (404 no_sale)');
    const wrongToken = await sale('not-the-token-0123456789', 'list');
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.err).toContain('(401 unauthorized)');
    expect((await sale(TOKEN, 'frobnicate')).code).toBe(2);
  });
});
