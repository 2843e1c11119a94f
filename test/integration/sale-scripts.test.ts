// Every script that changes a sale, against a real redis-server. Redis restarted from a copy of
// its AOF once let the reaper write first: its expiries got stream ids newer than every node's
// mark, the loss check never fired, 67 acknowledged orders answered 404 and paid ones read
// "expired". So pay, cancel, expire, join, admit, draw and add all refuse, like a purchase,
// while a sale is recovering or when Redis is older than what the caller saw. And a payment
// deadline moves by the Redis outages its buyer lived through.
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { expireDue, readOrder, SaleStoppedError, settle, SettleCode } from '../../src/orders/store.ts';
import type { RedisClient } from '../../src/redis/client.ts';
import { NO_GUARD, type SaleGuard } from '../../src/redis/guard.ts';
import { queueKeys, RECOVERING_FIELD, saleKeys } from '../../src/redis/keys.ts';
import { admit, draw, JoinCode, joinMany, setQueue } from '../../src/redis/queue.ts';
import { ensureSale, purchaseMany, PurchaseCode } from '../../src/redis/sale.ts';
import { startTestRedisWithClient, type TestRedis } from '../helpers/servers.ts';

setDefaultTimeout(60_000);

let redis: TestRedis;
let client: RedisClient;
let n = 0;
let keys = saleKeys('unused');

beforeAll(async () => {
  ({ redis, client } = await startTestRedisWithClient('test-sale-scripts', 2000));
});
afterAll(async () => {
  await redis.close();
});
beforeEach(() => {
  keys = saleKeys(`scripts-${process.pid}-${++n}`);
});

const seller = (payWindowMs: number) => ({ port: 3001, payWindowMs });
const later = (id: string) => `${Number(id.split('-')[0]) + 60_000}-0`;
const guard = (seen: string, outage = ''): SaleGuard => ({ seen: () => seen, outage: () => outage, asked: () => 0 });

/** A sale with one reserved order of `user`; its id. */
async function oneOrder(user: string, payWindowMs = 60_000): Promise<string> {
  await ensureSale(client, keys, 10, false);
  const [sold] = await purchaseMany(client, keys, seller(payWindowMs), [user]);
  expect(sold!.code).toBe(PurchaseCode.Sold);
  return (sold as { orderId: string }).orderId;
}

describe('a sale Redis lost writes of', () => {
  test('pays, cancels and expires nothing when the caller saw a newer order, and is marked recovering for every node', async () => {
    const id = await oneOrder('ann', 1);
    const newer = guard(later(id));
    expect(await settle(client, keys, 'pay', id, 'ann', newer)).toEqual({ code: SettleCode.Stopped });
    expect(await client.hget(keys.sale, RECOVERING_FIELD)).toContain(`a node saw ${later(id)}`);
    // Stopped for everyone now, even a caller that saw nothing newer.
    expect(await settle(client, keys, 'cancel', id, 'ann', NO_GUARD)).toEqual({ code: SettleCode.Stopped });
    await Bun.sleep(5);
    expect(await expireDue(client, keys, 100, NO_GUARD)).toEqual({ ids: [], users: [], more: false, stopped: true, nextDue: 0 });
    // A read is refused too: an order Redis lost would read "no such order" until restored.
    expect(readOrder(client, keys, id, NO_GUARD)).rejects.toThrow(SaleStoppedError);
    expect(await client.xlen(keys.orders)).toBe(1);
    await client.resume(keys.sale, later(id));
    expect((await readOrder(client, keys, id, NO_GUARD))?.state).toBe('reserved');
    expect((await expireDue(client, keys, 100, NO_GUARD)).ids).toEqual([id]);
  });

  test('lets nobody join, admit or draw while recovering, and adds no stock', async () => {
    await ensureSale(client, keys, 10, false);
    const queue = queueKeys(keys.sale);
    await setQueue(client, queue, { admissionMs: 60_000, admitPerSecond: 100 });
    expect(await joinMany(client, queue, ['ann'])).toEqual([1]);
    await client.hset(keys.sale, RECOVERING_FIELD, 'test');
    expect(await joinMany(client, queue, ['bob'])).toEqual([JoinCode.Recovering]);
    expect((await admit(client, queue, 1.2, 0))?.serving).toBe(0);
    expect(await draw(client, queue)).toBe(-3);
    expect(await client.add(keys.sale, '5', '100', '0-0')).toEqual([-3, 10]);
    await client.hdel(keys.sale, RECOVERING_FIELD);
    expect((await admit(client, queue, 1.2, 0))?.serving).toBe(1);
    expect(await client.add(keys.sale, '5', '100', '0-0')).toEqual([1, 15]);
  });
});

describe('adding stock', () => {
  // Two admins adding at once passed the 2^31 - 1 cap when it was checked before the write.
  test('never passes the cap, however many additions race', async () => {
    await ensureSale(client, keys, 1_000, false);
    const answers = await Promise.all(Array.from({ length: 20 }, () => client.add(keys.sale, '100', '2000', '0-0')));
    expect(answers.filter(([code]) => code === 1)).toHaveLength(10);
    expect(Number(await client.hget(keys.sale, 'ticket_total_nums'))).toBe(2000);
  });
});

describe('a payment deadline across a Redis outage', () => {
  test('moves by the outage, one pay window at most: a payment after the first deadline succeeds, the order reads its new deadline, and expiry waits for it', async () => {
    const id = await oneOrder('ann', 300);
    await Bun.sleep(400);
    // An outage that began 350 ms ago (while the order could still be paid) and ended now: 350 ms
    // back, but one pay window (300 ms) at most, so freezing Redis again and again cannot hold a seat.
    const outage = guard('0-0', 'test-1:350:0');
    const reaped = await expireDue(client, keys, 100, outage);
    expect(reaped).toMatchObject({ ids: [], users: [], more: false, stopped: false });
    const order = await readOrder(client, keys, id);
    expect(order!.payBy! - order!.createdAt).toBe(300 + 300);
    // The reaper is told when to come back: the moved deadline, not the first one.
    expect(reaped.nextDue).toBe(order!.payBy!);
    expect(await settle(client, keys, 'pay', id, 'ann', NO_GUARD)).toEqual({ code: SettleCode.Done, state: 'paid' });
  });

  test('counts an outage seen by several nodes once, and one that ended before the order not at all', async () => {
    const before = await oneOrder('old', 1000);
    await client.outage(keys.sale, 'a:5000:4000');
    expect((await readOrder(client, keys, before))!.payBy! - Number(before.split('-')[0])).toBe(1000);
    // One outage of 100 ms, from 150 ms after the order on, seen by two nodes (each its own id).
    await Bun.sleep(250);
    const [from, to] = [Date.now() - 100, Date.now()];
    const seenBy = (node: string) => `${node}:${Date.now() - from}:${Date.now() - to}`;
    await Promise.all([client.outage(keys.sale, seenBy('b')), client.outage(keys.sale, seenBy('c'))]);
    const shift = (await readOrder(client, keys, before))!.payBy! - Number(before.split('-')[0]) - 1000;
    expect(shift).toBeGreaterThanOrEqual(95);
    expect(shift).toBeLessThanOrEqual(110);
    // The same outage recorded again later changes nothing.
    await Bun.sleep(50);
    await client.outage(keys.sale, seenBy('b'));
    expect((await readOrder(client, keys, before))!.payBy! - Number(before.split('-')[0]) - 1000).toBeLessThanOrEqual(shift + 5);
  });
});

describe('the opening draw', () => {
  // One script over a million joiners blocked Redis for 2.5 s, and the buyers of every other sale
  // got 503s meanwhile. It is drawn in slices now, other clients' commands running between them.
  test('places a 25 000-user pre-queue in slices of 10 000, each user once, in the order of their random scores', async () => {
    const startsAt = Date.now() + 60_000;
    await ensureSale(client, keys, 10, false);
    await client.hset(keys.sale, 'starts_at', startsAt);
    const queue = queueKeys(keys.sale);
    await setQueue(client, queue, { admissionMs: 60_000, admitPerSecond: 100 });
    const users = Array.from({ length: 25_000 }, (_, i) => `p${i}`);
    for (let i = 0; i < users.length; i += 1000)
      expect(new Set(await joinMany(client, queue, users.slice(i, i + 1000)))).toEqual(new Set([0]));
    await client.hset(keys.sale, 'starts_at', Date.now() - 1);
    const steps: number[] = [];
    for (let call = 0; call < 5; call++) {
      const result = Number(await client.draw(queue.sale, queue.places, queue.prequeue, '10000', '0-0'));
      steps.push(result === -2 ? Number(await client.hget(keys.sale, 'queue_drawn_to')) : result);
      if (result !== -2) break;
    }
    expect(steps).toEqual([10_000, 20_000, 25_000]);
    const places = (await client.hmget(queue.places, ...users)).map(Number);
    expect(new Set(places).size).toBe(25_000);
    expect(Math.min(...places)).toBe(1);
    expect(Math.max(...places)).toBe(25_000);
    const byScore = await client.zrange(queue.prequeue, '0', '-1');
    expect(await client.hmget(queue.places, byScore[0]!, byScore[12_345]!, byScore[24_999]!)).toEqual(['1', '12346', '25000']);
  });
});
