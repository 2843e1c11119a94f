// A sale's whole life ends archived: its Redis keys and the nodes' shared memory are freed, its
// orders stay readable from the database, across a restart of the node, and on every node. A
// sale that is open, or owes a buyer a reserved order, is not archived. Before, a platform could
// never delete a sale (DELETE /sales/:id answered 404), so the idle ones only piled up.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import { ARCHIVED_KEY, DEFAULT_SALE, queueKeys, SALES_KEY, saleKeys } from '../../src/redis/keys.ts';
import { unwrittenEvents } from '../../src/orders/audit.ts';
import { freePort } from '../../src/services/free-port.ts';
import { startTestRedis, tempDir, type TestRedis } from '../helpers/servers.ts';
import { adminCreateSale, servesSale, startTestSpike, type TestSpike } from '../helpers/spike.ts';

setDefaultTimeout(120_000);

const TOKEN = 'archive-token-for-tests-0123456789';
const ROOT = join(import.meta.dir, '..', '..');
let redis: TestRedis;
let spike: TestSpike;
let other: TestSpike;
let admin: string;
let adminPort: number;
const dataDir = tempDir('archive-data');

const start = () =>
  startTestSpike(redis.url, { SPIKE_ADMIN_PORT: String(adminPort), SPIKE_ADMIN_TOKEN: TOKEN, SPIKE_DATA_DIR: dataDir, SPIKE_NODE_ID: 'a' });

beforeAll(async () => {
  redis = await startTestRedis();
  adminPort = await freePort();
  admin = `http://127.0.0.1:${adminPort}`;
  spike = await start();
  // A second node on the same Redis, without an order writer of its own.
  other = await startTestSpike(redis.url, { SPIKE_NODE_ID: 'b', SPIKE_WRITER: '0' });
});
afterAll(async () => {
  await other?.close();
  await spike?.close();
  await redis?.close();
});

const post = (path: string, body?: unknown) =>
  fetch(`${admin}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const get = (path: string) => fetch(`${admin}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });

async function buy(sale: string, user: string, worker = 0): Promise<string> {
  const body = (await (await fetch(`${spike.url(worker)}/buy/ticket?sale=${sale}&user=${user}`)).json()) as {
    code: number;
    orderId: string;
  };
  expect(body.code).toBe(1);
  return body.orderId;
}

async function pay(sale: string, user: string, orderId: string): Promise<void> {
  expect((await fetch(`${spike.url(1)}/orders/${orderId}/pay?sale=${sale}&user=${user}`, { method: 'POST' })).status).toBe(200);
}

/** Archives `sale`, waiting while the order writer has not written every order yet (409 not_written). */
async function archive(sale: string): Promise<Response> {
  for (let i = 0; ; i++) {
    const res = await post(`/sales/${sale}/archive`);
    if (res.status !== 409 || i >= 100) return res;
    const body = (await res.clone().json()) as { error: string };
    if (body.error !== 'not_written') return res;
    await Bun.sleep(100);
  }
}

describe('archiving a sale', () => {
  test('is refused while it is open, while an order is reserved, and for the default sale', async () => {
    expect((await adminCreateSale(admin, TOKEN, { id: 'live', total: 3 })).status).toBe(201);
    await servesSale(spike, 'live');
    const open = await post('/sales/live/archive');
    expect([open.status, ((await open.json()) as { error: string }).error]).toEqual([409, 'sale_open']);
    await buy('live', 'ann');
    expect((await post('/sales/live/pause')).status).toBe(200);
    const reserved = await post('/sales/live/archive');
    expect([reserved.status, ((await reserved.json()) as { error: string }).error]).toEqual([409, 'orders_reserved']);
    const main = await post(`/sales/${DEFAULT_SALE}/archive`);
    expect([main.status, ((await main.json()) as { error: string }).error]).toEqual([409, 'default_sale']);
    expect((await post('/sales/nothing-here/archive')).status).toBe(404);
    expect(await redis.client.exists('live')).toBe(1);
  });

  test('frees its keys and every node’s memory; its orders answer from the database, also after a restart', async () => {
    expect(
      (await adminCreateSale(admin, TOKEN, { id: 'gone', total: 2, queue: { admissionSeconds: 60, admitPerSecond: 10 } })).status,
    ).toBe(201);
    expect((await post('/sales/gone/stock', { add: 1 })).status).toBe(200);
    await redis.client.hdel('gone', 'queue');
    await spike.sync.kick();
    await servesSale(spike, 'gone');
    await servesSale(other, 'gone');
    const orders = [await buy('gone', 'bea'), await buy('gone', 'cy', 2), await buy('gone', 'di', 3)];
    await pay('gone', 'bea', orders[0]!);
    await pay('gone', 'cy', orders[1]!);
    expect((await fetch(`${spike.url(0)}/orders/${orders[2]}/cancel?sale=gone&user=di`, { method: 'POST' })).status).toBe(200);
    expect((await post('/sales/gone/pause')).status).toBe(200);

    const res = await archive('gone');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: 'gone', state: 'archived', total: 3, sold: 2, paid: 2 });
    const keys = saleKeys('gone');
    const { places, prequeue, steps } = queueKeys('gone');
    expect(await redis.client.exists(keys.sale, keys.buyers, keys.orders, keys.states, keys.holds, places, prequeue, steps)).toBe(0);
    expect(await redis.client.sismember(SALES_KEY, 'gone')).toBe(0);
    expect(await redis.client.hexists(ARCHIVED_KEY, 'gone')).toBe(1);
    // Both nodes let go of it (the other one hears of it from this one).
    for (const node of [spike, other]) {
      const deadline = Date.now() + 5000;
      while ((await fetch(`${node.url(0)}/stock?sale=gone`)).status !== 404) {
        if (Date.now() > deadline) throw new Error('a node still serves the archived sale');
        await Bun.sleep(20);
      }
    }
    const readOrders = async () => {
      const paid = await fetch(`${spike.url(3)}/orders/${orders[0]}?sale=gone&user=bea`);
      const cancelled = await fetch(`${spike.url(0)}/orders/${orders[2]}?sale=gone&user=di`);
      const someoneElse = await fetch(`${spike.url(1)}/orders/${orders[1]}?sale=gone&user=bea`);
      const again = await fetch(`${spike.url(2)}/orders/${orders[1]}/pay?sale=gone&user=cy`, { method: 'POST' });
      const cancelPaid = await fetch(`${spike.url(2)}/orders/${orders[1]}/cancel?sale=gone&user=cy`, { method: 'POST' });
      return [
        [paid.status, ((await paid.json()) as { state: string }).state],
        [cancelled.status, ((await cancelled.json()) as { state: string }).state],
        someoneElse.status,
        [again.status, ((await again.json()) as { state: string }).state],
        [cancelPaid.status, ((await cancelPaid.json()) as { error: string }).error],
      ];
    };
    const expected = [[200, 'paid'], [200, 'cancelled'], 403, [200, 'paid'], [409, 'already_paid']];
    expect(await readOrders()).toEqual(expected);
    expect(await (await get('/sales/gone')).json()).toMatchObject({ id: 'gone', state: 'archived', sold: 2, paid: 2 });
    const reuse = await adminCreateSale(admin, TOKEN, { id: 'gone', total: 5 });
    expect([reuse.status, ((await reuse.json()) as { error: string }).error]).toEqual([409, 'archived']);

    await spike.close();
    spike = await start();
    expect((await fetch(`${spike.url(0)}/stock?sale=gone`)).status).toBe(404);
    expect(await readOrders()).toEqual(expected);
    expect(await (await get('/sales/gone')).json()).toMatchObject({ state: 'archived' });
  });

  // An archive's checks (state, reserved orders, audit) and its deletion were separate steps: a
  // resume or a stock addition between them let buyers buy, then the deletion lost their orders
  // (in 2 of 11 rounds: 51 and 20 buyers told code 1, 50 and 19 orders found nowhere after).
  test.each([
    ['a resume', 'resume'],
    ['stock added to the sold-out sale', 'stock'],
  ] as const)('racing %s, with buyers at it, never loses an acknowledged order', async (_, racer) => {
    let archivedRounds = 0;
    let reopenedRounds = 0;
    for (let round = 0; round < 11; round++) {
      const id = `race-${racer}-${round}`;
      expect((await adminCreateSale(admin, TOKEN, { id, total: racer === 'stock' ? 2 : 100 })).status).toBe(201);
      await servesSale(spike, id);
      for (const user of ['p0', 'p1']) await pay(id, user, await buy(id, user));
      // Archivable: paused, or sold out (all paid) and not paused, so that stock added opens it again.
      if (racer === 'resume') expect((await post(`/sales/${id}/pause`)).status).toBe(200);
      // Wait until the writer has every order: an archive is then possible, and the race is real.
      const keys = saleKeys(id);
      while ((await unwrittenEvents(redis.client, keys)) > 0) await Bun.sleep(20);
      let buying = true;
      const acknowledged: { user: string; orderId: string }[] = [];
      const buyers = Array.from({ length: 16 }, async (_, b) => {
        for (let n = 0; buying; n++) {
          const user = `b${b}-${n}`;
          const res = await fetch(`${spike.url(b % 4)}/buy/ticket?sale=${id}&user=${user}`);
          const body = (await res.json().catch(() => ({}))) as { code?: number; orderId?: string };
          if (body.code === 1) acknowledged.push({ user, orderId: body.orderId! });
        }
      });
      await Bun.sleep(20);
      const gap = Math.random() * 30;
      const [archived, reopened] = await Promise.all([
        post(`/sales/${id}/archive`),
        Bun.sleep(gap).then(() => (racer === 'resume' ? post(`/sales/${id}/resume`) : post(`/sales/${id}/stock`, { add: 50 }))),
      ]);
      await Bun.sleep(50);
      buying = false;
      await Promise.all(buyers);
      if (archived.status === 200) archivedRounds += 1;
      if (reopened.status === 200) reopenedRounds += 1;
      // One of them wins: a sale opened again is not archived, an archived one opens no more.
      expect([archived.status, reopened.status]).not.toEqual([200, 200]);
      // Every buyer told "sold" finds the order: in Redis, or in the database once archived.
      for (const { user, orderId } of acknowledged) {
        let status = 0;
        for (let tries = 0; tries < 100 && status !== 200; tries++) {
          status = (await fetch(`${spike.url(0)}/orders/${orderId}?sale=${id}&user=${user}`)).status;
          if (status !== 200) await Bun.sleep(50);
        }
        expect([id, user, orderId, status]).toEqual([id, user, orderId, 200]);
      }
      if (archived.status === 200) expect(acknowledged).toEqual([]);
    }
    console.log(`archive vs ${racer}: archived in ${archivedRounds} of 11 rounds, reopened in ${reopenedRounds}`);
    expect(archivedRounds + reopenedRounds).toBeGreaterThan(0);
  });

  test('bun run sale -- archive ID archives a sold-out, paid-up sale and says so', async () => {
    expect((await adminCreateSale(admin, TOKEN, { id: 'done', total: 1 })).status).toBe(201);
    await servesSale(spike, 'done');
    await pay('done', 'eve', await buy('done', 'eve'));
    let out = '';
    for (let i = 0; i < 100; i++) {
      // Not spawnSync: the admin API answering it runs in this very process.
      const run = Bun.spawn(['bun', 'run', 'sale', '--', 'archive', 'done'], {
        cwd: ROOT,
        env: { ...process.env, SPIKE_ADMIN_URL: admin, SPIKE_ADMIN_TOKEN: TOKEN },
        stdout: 'pipe',
        stderr: 'pipe',
      });
      out = (await new Response(run.stdout).text()) + (await new Response(run.stderr).text());
      if ((await run.exited) === 0 || !out.includes('not_written')) break;
      await Bun.sleep(100);
    }
    expect(out).toContain('done: archived');
    expect(out).toContain('1 of 1 sold (1 paid)');
    expect(await redis.client.exists('done')).toBe(0);
  });
});
