// The order lifecycle: reserved → paid | cancelled | expired. Tickets of released orders go back
// on sale exactly once, and an order is never both paid and released.
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { NO_GUARD } from '../../src/redis/guard.ts';
import { createApp } from '../../src/http/app.ts';
import type { RedisClient } from '../../src/redis/client.ts';
import { expireDue, readOrder, redisOrderStore, settle } from '../../src/orders/store.ts';
import { ensureSale, purchase, purchaseMany, readSale } from '../../src/redis/sale.ts';
import { DEFAULT_SALE, PAID_FIELD, saleKeys, SOLD_FIELD } from '../../src/redis/keys.ts';
import { sqliteOrderDb } from '../../src/orders/db.ts';
import { newTicketKey, privateTicketKey, publicTicketKey, verifyTicket } from '../../src/orders/signed-ticket.ts';
import { LocalStock } from '../../src/stock/local-stock.ts';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { expectCleanAudit } from '../helpers/audit.ts';
import { countBy, fire } from '../helpers/load.ts';
import { freePorts, startTestRedisWithClient, tempDir, type TestRedis } from '../helpers/servers.ts';
import { startTestSpike } from '../helpers/spike.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

let redis: TestRedis;
let client: RedisClient;
let n = 0;
let keys = saleKeys('unused');

beforeAll(async () => {
  ({ redis, client } = await startTestRedisWithClient('test-orders', 2000));
});
afterAll(async () => {
  await redis.close();
});
beforeEach(() => {
  keys = saleKeys(`orders-${process.pid}-${++n}`);
});

function appFor(payWindowMs: number) {
  const stock = LocalStock.create(1);
  stock.refill(0, 1_000_000);
  const sale = {
    stock,
    buy: (user: string) => purchase(client, keys, user, { port: 3001, payWindowMs }),
    orders: redisOrderStore(client, keys, NO_GUARD),
  };
  return createApp({
    port: 3001,
    worker: 0,
    sale: (id) => (id === keys.sale ? sale : undefined),
    defaultSale: keys.sale,
    ping: () => client.ping(),
  });
}

const post = (app: ReturnType<typeof appFor>, path: string) => app.request(`http://localhost${path}`, { method: 'POST' });
const json = async (res: Response) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> });

async function buy(app: ReturnType<typeof appFor>, user: string): Promise<string> {
  const body = (await (await app.request(`http://localhost/buy/ticket?user=${user}`)).json()) as { code: number; orderId: string };
  expect(body.code).toBe(1);
  return body.orderId;
}

describe('an order', () => {
  test('is reserved with a deadline, paid before it, and paying again answers the same', async () => {
    await ensureSale(client, keys, 10, true);
    const app = appFor(60_000);
    const id = await buy(app, 'alice');
    const order = await json(await app.request(`http://localhost/orders/${id}?user=alice`));
    expect(order.status).toBe(200);
    expect(order.body).toMatchObject({ orderId: id, sale: keys.sale, state: 'reserved', user: 'alice', port: 3001 });
    expect(Date.parse(order.body.payBy as string) - Date.parse(order.body.createdAt as string)).toBe(60_000);
    for (let i = 0; i < 2; i++)
      expect(await json(await post(app, `/orders/${id}/pay?user=alice`))).toEqual({ status: 200, body: { orderId: id, state: 'paid' } });
    expect(await client.hget(keys.sale, PAID_FIELD)).toBe('1');
    expect(await client.hget(keys.states, id)).toStartWith('paid|');
    expect((await json(await post(app, `/orders/${id}/cancel?user=alice`))).body).toMatchObject({ error: 'already_paid' });
  });

  test('cancelled by its user returns the ticket: sold drops and the user may buy again', async () => {
    await ensureSale(client, keys, 1, true);
    const app = appFor(60_000);
    const id = await buy(app, 'bob');
    expect(await json(await post(app, `/orders/${id}/cancel?user=bob`))).toEqual({
      status: 200,
      body: { orderId: id, state: 'cancelled' },
    });
    expect(await json(await post(app, `/orders/${id}/cancel?user=bob`))).toEqual({
      status: 200,
      body: { orderId: id, state: 'cancelled' },
    });
    expect(await readSale(client, keys)).toMatchObject({ total: 1, sold: 0 });
    expect((await json(await post(app, `/orders/${id}/pay?user=bob`))).body).toMatchObject({ error: 'cancelled' });
    const again = await buy(app, 'bob');
    expect(again).not.toBe(id);
    expect((await json(await app.request('http://localhost/orders?user=bob'))).body).toMatchObject({ orderId: again, state: 'reserved' });
  });

  test('paid after its deadline answers 409 expired and returns the ticket exactly once', async () => {
    await ensureSale(client, keys, 5, true);
    const app = appFor(100);
    const id = await buy(app, 'carol');
    await Bun.sleep(150);
    expect(await json(await post(app, `/orders/${id}/pay?user=carol`))).toMatchObject({ status: 409, body: { error: 'expired' } });
    expect(await expireDue(client, keys, 100, NO_GUARD)).toEqual({ ids: [], users: [], more: false, stopped: false, nextDue: 0 });
    expect(await readSale(client, keys)).toMatchObject({ total: 5, sold: 0 });
    expect((await readOrder(client, keys, id))?.state).toBe('expired');
  });

  test("is the user's own: another user gets 403 on read, pay and cancel; an anonymous order needs its secret, not only its guessable id", async () => {
    await ensureSale(client, keys, 5, true);
    const app = appFor(60_000);
    const id = await buy(app, 'dave');
    expect((await app.request(`http://localhost/orders/${id}?user=eve`)).status).toBe(403);
    expect((await app.request(`http://localhost/orders/${id}`)).status).toBe(403);
    expect((await post(app, `/orders/${id}/pay?user=eve`)).status).toBe(403);
    expect((await post(app, `/orders/${id}/cancel?user=eve`)).status).toBe(403);
    expect((await readOrder(client, keys, id))?.state).toBe('reserved');
    const { orderId: anonymous, secret } = (await (await app.request('http://localhost/buy/ticket')).json()) as {
      orderId: string;
      secret: string;
    };
    expect(secret).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // Order ids are <ms>-<n>: a stranger who guesses one may not read, pay or cancel it.
    expect((await app.request(`http://localhost/orders/${anonymous}`)).status).toBe(403);
    expect((await post(app, `/orders/${anonymous}/cancel`)).status).toBe(403);
    expect((await post(app, `/orders/${anonymous}/cancel?user=eve`)).status).toBe(403);
    expect((await post(app, `/orders/${anonymous}/cancel?secret=${'A'.repeat(22)}`)).status).toBe(403);
    expect((await readOrder(client, keys, anonymous))?.state).toBe('reserved');
    expect(
      (await json(await app.request(`http://localhost/orders/${anonymous}`, { headers: { 'x-order-secret': secret } }))).body,
    ).toMatchObject({ state: 'reserved', user: null });
    expect((await json(await post(app, `/orders/${anonymous}/pay?secret=${secret}`))).body).toMatchObject({ state: 'paid' });
  });

  test("a paid order's ticket is signed for the door: checked offline with the public key, refused before payment, to others and once altered", async () => {
    await ensureSale(client, keys, 5, true);
    const app = appFor(60_000);
    const id = await buy(app, 'frank');
    expect(await json(await app.request(`http://localhost/orders/${id}/ticket?user=frank`))).toMatchObject({
      status: 409,
      body: { error: 'not_paid' },
    });
    await post(app, `/orders/${id}/pay?user=frank`);
    expect((await app.request(`http://localhost/orders/${id}/ticket?user=eve`)).status).toBe(403);
    const { body } = await json(await app.request(`http://localhost/orders/${id}/ticket?user=frank`));
    expect(body).toMatchObject({ orderId: id, sale: keys.sale, user: 'frank' });
    expect(body.qr as string).toStartWith('<svg');
    const { publicKey } = (await (await app.request('http://localhost/tickets/key')).json()) as { publicKey: string };
    const code = body.code as string;
    const checked = verifyTicket(code, publicKey);
    expect(checked).toMatchObject({ ok: true, facts: { sale: keys.sale, order: id, user: 'frank', type: 'general' } });
    // Another order's facts under this signature, another key, or a code cut short: refused.
    const [prefix, , signature] = code.split('.');
    const forged = `${prefix}.${Buffer.from(JSON.stringify({ sale: keys.sale, order: id, user: 'eve', type: 'general', issuedAt: 1 })).toString('base64url')}.${signature}`;
    expect(verifyTicket(forged, publicKey)).toMatchObject({ ok: false });
    expect(verifyTicket(code, publicTicketKey(privateTicketKey(newTicketKey())))).toMatchObject({ ok: false });
    expect(verifyTicket(code.slice(0, -4), publicKey)).toMatchObject({ ok: false });
    // The door's command: exit 0 with what it admits, 1 with why not.
    const cli = (args: string[]) =>
      Bun.spawnSync([process.execPath, join(import.meta.dir, '..', '..', 'src', 'cli', 'ticket.ts'), ...args], {
        stdout: 'pipe',
        stderr: 'pipe',
      });
    const valid = cli(['verify', code, '--key', publicKey]);
    expect(valid.exitCode).toBe(0);
    expect(valid.stdout.toString()).toStartWith(`valid: sale ${keys.sale}, order ${id}, user frank, general, issued `);
    const invalid = cli(['verify', forged, '--key', publicKey]);
    expect(invalid.exitCode).toBe(1);
    expect(invalid.stderr.toString()).toStartWith('invalid: the signature does not match');
  });

  test.each([
    ['a malformed order id', 'GET', '/orders/abc', 400],
    // Redis refuses a stream id part above 2^64 - 1: that is the client's mistake (400), not an outage (503).
    ['an order id past 2^64', 'GET', '/orders/99999999999999999999-0', 400],
    ['paying an order id past 2^64', 'POST', '/orders/99999999999999999999-0/pay', 400],
    ['cancelling an order id whose sequence is past 2^64', 'POST', '/orders/1-18446744073709551616/cancel', 400],
    ['an order id at 2^64 - 1', 'GET', '/orders/18446744073709551615-18446744073709551615', 404],
    ['an unknown order', 'GET', '/orders/1-0', 404],
    ['paying an unknown order', 'POST', '/orders/1-0/pay', 404],
    ['a lookup without a user', 'GET', '/orders', 400],
    ['a lookup of another sale', 'GET', '/orders?user=a&sale=nope', 404],
    ['DELETE on an order', 'DELETE', '/orders/1-0', 405],
  ])('%s gets its status', async (_, method, path, status) => {
    await ensureSale(client, keys, 5, true);
    const res = await appFor(60_000).request(`http://localhost${path}`, { method });
    expect(res.status).toBe(status);
  });
});

describe('paying and expiring at the same instant', () => {
  test('two reapers and many payers racing: every order ends paid or expired, never both, and the counts agree', async () => {
    await ensureSale(client, keys, 400, true);
    const users = Array.from({ length: 400 }, (_, i) => `r${i}`);
    const answers = await purchaseMany(client, keys, { port: 3001, payWindowMs: 300 }, users);
    const ids = answers.map((a) => (a as { orderId: string }).orderId);
    await Bun.sleep(250);
    const deadline = Date.now() + 300;
    const reaper = async () => {
      let released = 0;
      while (Date.now() < deadline) released += (await expireDue(client, keys, 25, NO_GUARD)).ids.length;
      return released;
    };
    const payers = ids.map((id, i) => Bun.sleep(i % 100).then(() => settle(client, keys, 'pay', id, users[i]!, NO_GUARD)));
    const [a, b, paid] = await Promise.all([reaper(), reaper(), Promise.all(payers)]);
    await expireDue(client, keys, 1000, NO_GUARD);

    const states = await Promise.all(ids.map(async (id) => (await readOrder(client, keys, id))!.state));
    const byState = countBy(states, (s) => s);
    const paidCount = byState.get('paid') ?? 0;
    expect(paidCount + (byState.get('expired') ?? 0)).toBe(400);
    expect(paidCount).toBe(paid.filter((p) => p.code === 1).length);
    expect(a + b).toBeLessThanOrEqual(400 - paidCount);
    const sale = await client.hmget(keys.sale, SOLD_FIELD, PAID_FIELD);
    expect(Number(sale[0])).toBe(paidCount);
    expect(Number(sale[1] ?? 0)).toBe(paidCount);
    // One terminal event per order on the stream.
    const events = (await client.xrange(keys.orders, '-', '+')).map(([, f]) => f);
    const terminal = events.filter((f) => f[1] === 'paid' || f[1] === 'expired').map((f) => f[3]);
    expect(terminal).toHaveLength(400);
    expect(new Set(terminal).size).toBe(400);
    expect(await client.hlen(keys.buyers)).toBe(paidCount);
  });
});

describe('the reaper in the running system', () => {
  test('1000 reservations with a 2 s window, half paid: the rest expire, sold drops to 500, and the tickets sell again', async () => {
    const spike = await startTestSpike(redis.url, {
      SPIKE_TOTAL: '1000',
      SPIKE_RESET: 'force',
      SPIKE_PAY_WINDOW: '2',
      SPIKE_REAP_MS: '100',
    });
    const sale = saleKeys(DEFAULT_SALE);
    try {
      const first = await fire(
        Array.from({ length: 1000 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=h${i}`),
        50,
      );
      const ids = first.map((a) => a.body.orderId as string);
      expect(first.every((a) => a.body.code === 1)).toBe(true);
      expect((await fire([`${spike.url(0)}/buy/ticket?user=late`])).at(0)?.body.code).toBe(-1);
      const pays = await fire(
        ids.filter((_, i) => i % 2 === 0).map((id, j) => `${spike.url(j % 4)}/orders/${id}/pay?user=h${2 * j}`),
        50,
        { method: 'POST' },
      );
      expect(pays.every((p) => p.status === 200)).toBe(true);

      const deadline = Date.now() + 10_000;
      while (Number(await redis.client.hget(sale.sale, SOLD_FIELD)) > 500 && Date.now() < deadline) await Bun.sleep(100);
      expect(Number(await redis.client.hget(sale.sale, SOLD_FIELD))).toBe(500);
      expect((await readOrder(redis.client, sale, ids[1]!))?.state).toBe('expired');

      // The released 500 sell again once the workers see them (sold-out flag cleared, stock topped up).
      let again = 0;
      for (let round = 0; round < 20 && again < 500; round++) {
        await Bun.sleep(100);
        const more = await fire(
          Array.from({ length: 500 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=n${round}-${i}`),
          50,
        );
        again += more.filter((a) => a.body.code === 1).length;
      }
      expect(again).toBe(500);
      expect(Number(await redis.client.hget(sale.sale, SOLD_FIELD))).toBe(1000);
      expect(Number(await redis.client.hget(sale.sale, PAID_FIELD))).toBe(500);

      // The database, written by the supervisor's order writer, agrees with Redis and the stream.
      expect(await expectCleanAudit(redis.client, sale, sqliteOrderDb(spike.dbPath))).toMatchObject({
        sold: 1000,
        paid: 500,
        reserved: 500,
        released: 500,
        dbOrders: 1500,
      });
    } finally {
      await spike.close();
    }
  });

  test('a restart of everything mid-lifecycle loses and duplicates no order', async () => {
    const ports = await freePorts(4);
    const dataDir = tempDir('restart-data');
    const env = { SPIKE_TOTAL: '600', SPIKE_PAY_WINDOW: '60', SPIKE_DATA_DIR: dataDir };
    const sale = saleKeys(DEFAULT_SALE);
    let spike = await startTestSpike(redis.url, { ...env, SPIKE_RESET: 'force' }, ports);
    try {
      const first = await fire(
        Array.from({ length: 400 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=s${i}`),
        50,
      );
      const ids = first.map((a) => a.body.orderId as string);
      await fire(
        ids.slice(0, 100).map((id, i) => `${spike.url(0)}/orders/${id}/pay?user=s${i}`),
        20,
        { method: 'POST' },
      );
      await spike.close();
      spike = await startTestSpike(redis.url, env, ports);
      await fire(
        ids.slice(100, 150).map((id, i) => `${spike.url(1)}/orders/${id}/cancel?user=s${100 + i}`),
        20,
        { method: 'POST' },
      );
      const more = await fire(
        Array.from({ length: 400 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=t${i}`),
        50,
      );
      expect(more.filter((a) => a.body.code === 1)).toHaveLength(250);
      expect(await expectCleanAudit(redis.client, sale, sqliteOrderDb(spike.dbPath))).toMatchObject({
        total: 600,
        sold: 600,
        paid: 100,
        released: 50,
        dbOrders: 650,
      });
    } finally {
      await spike.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('reads while buyers buy', () => {
  // An order read took the node's newest order after awaiting Redis' answer: a purchase that
  // finished meanwhile made Redis look older than the node, and the read answered 503 recovering
  // with no fault at all.
  test('never answer 503 recovering without a fault', async () => {
    const spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '100000', SPIKE_RESET: 'force', SPIKE_USER_ATTEMPTS: '0' });
    try {
      const answers: number[] = [];
      await Promise.all(
        Array.from({ length: 16 }, async (_, c) => {
          for (let i = 0; i < 60; i++) {
            const user = `reader${c}-${i}`;
            const sold = (await (await fetch(`${spike.url(i % 4)}/buy/ticket?user=${user}`)).json()) as { orderId: string };
            for (const path of [`/orders/${sold.orderId}?user=${user}`, `/orders?user=${user}`])
              answers.push((await fetch(`${spike.url((i + 1) % 4)}${path}`)).status);
          }
        }),
      );
      expect(answers).toHaveLength(16 * 60 * 2);
      expect(Object.fromEntries(countBy(answers, (s) => String(s)))).toEqual({ '200': answers.length });
    } finally {
      await spike.close();
    }
  });
});

describe('a released ticket', () => {
  // A cancel left the sold-out flag set until the next sync: buyers were told "sold out" for up to
  // a sync period while the seat was free. The cancel now clears it on every worker of the node
  // before it answers, and asks the sync to top the workers up.
  test('is on sale again at once: a 1-ticket sale bought, cancelled and bought from another worker answers code 1, 100 rounds', async () => {
    const spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '1', SPIKE_RESET: 'force', SPIKE_SYNC_MS: '1000' });
    try {
      const results: number[] = [];
      for (let round = 0; round < 100; round++) {
        const [first, second] = [round % 4, (round + 1 + (round % 3)) % 4];
        const bought = (await (await fetch(`${spike.url(first)}/buy/ticket?user=a${round}`)).json()) as { code: number; orderId: string };
        expect(bought.code).toBe(1);
        // The sale is sold out now on every worker of the node (the first buy's answer marks it at once).
        expect(((await (await fetch(`${spike.url(second)}/buy/ticket?user=probe${round}`)).json()) as { code: number }).code).toBe(-1);
        const cancel = await fetch(`${spike.url(first)}/orders/${bought.orderId}/cancel?user=a${round}`, { method: 'POST' });
        expect(cancel.status).toBe(200);
        results.push(((await (await fetch(`${spike.url(second)}/buy/ticket?user=b${round}`)).json()) as { code: number }).code);
        const again = (await (await fetch(`${spike.url(second)}/orders?user=b${round}`)).json()) as { orderId: string };
        await fetch(`${spike.url(second)}/orders/${again.orderId}/cancel?user=b${round}`, { method: 'POST' });
      }
      expect(countBy(results, (code) => code)).toEqual(new Map([[1, 100]]));
    } finally {
      await spike.close();
    }
  });
});
