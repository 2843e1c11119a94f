// The local stock is the only state the worker threads share; these tests guard that it never
// hands out more units than it holds, even with several threads taking at once.
import { describe, expect, test } from 'bun:test';
import { LocalStock } from '../../src/stock/local-stock.ts';

describe('local stock', () => {
  test('hands out exactly its units, then refuses without going below zero', () => {
    const stock = LocalStock.create(2);
    stock.refill(0, 3);
    expect([stock.tryTake(0), stock.tryTake(0), stock.tryTake(0), stock.tryTake(0)]).toEqual([true, true, true, false]);
    expect(stock.level(0)).toBe(0);
    expect(stock.tryTake(1)).toBe(false);
    stock.giveBack(0);
    expect(stock.level(0)).toBe(1);
  });

  test('refill only raises a worker to the given level and re-arms its dry report', () => {
    const stock = LocalStock.create(1);
    expect(stock.refill(0, 5)).toBe(5);
    expect(stock.refill(0, 3)).toBe(0);
    expect(stock.level(0)).toBe(5);
    expect(stock.askTopUp(0)).toBe(true);
    expect(stock.askTopUp(0)).toBe(false);
    stock.refill(0, 6);
    expect(stock.askTopUp(0)).toBe(true);
  });

  test("snapshot shows the published global count, the flags, the sale's window and each worker", () => {
    const stock = LocalStock.create(2);
    stock.refill(1, 4);
    stock.recordSale(1);
    stock.publishGlobal(10, 7);
    stock.markSoldOut();
    stock.setOpen(true);
    stock.setWindow(Date.UTC(2026, 11, 1, 10), 0);
    expect(stock.snapshot()).toEqual({
      soldOut: true,
      total: 10,
      sold: 7,
      remaining: 3,
      syncs: 1,
      open: true,
      startsAt: '2026-12-01T10:00:00.000Z',
      endsAt: null,
      workers: [
        { stock: 0, sales: 0 },
        { stock: 4, sales: 1 },
      ],
    });
  });

  test('a worker is low at or below the low-water mark, so it can ask for more before running dry', () => {
    const stock = LocalStock.create(1);
    stock.setLowWater(2);
    stock.refill(0, 4);
    expect(stock.isLow(0)).toBe(false);
    stock.tryTake(0);
    stock.tryTake(0);
    expect(stock.isLow(0)).toBe(true);
  });

  test('a request waiting on an empty stock wakes on a refill or on sold out, and times out otherwise', async () => {
    const stock = LocalStock.create(2);
    const refilled = stock.waitForStock(0, 5000);
    setTimeout(() => stock.refill(0, 1), 5);
    const t0 = performance.now();
    await refilled;
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(stock.tryTake(0)).toBe(true);

    const soldOut = stock.waitForStock(1, 5000);
    setTimeout(() => stock.markSoldOut(), 5);
    const t1 = performance.now();
    await soldOut;
    expect(performance.now() - t1).toBeLessThan(1000);

    const t2 = performance.now();
    await stock.waitForStock(0, 30);
    expect(performance.now() - t2).toBeGreaterThanOrEqual(25);
  });

  test('refuses a worker index it does not hold and a buffer of the wrong size', () => {
    const stock = LocalStock.create(2);
    expect(() => stock.tryTake(2)).toThrow(RangeError);
    expect(() => LocalStock.attach(stock.buffer, 3)).toThrow(/expected/);
  });

  test('two threads racing for 50 000 units on one slot take exactly 50 000', async () => {
    const stock = LocalStock.create(1);
    stock.refill(0, 50_000);
    const code = `
      import { LocalStock } from ${JSON.stringify(new URL('../../src/stock/local-stock.ts', import.meta.url).pathname)};
      self.onmessage = (e) => {
        const stock = LocalStock.attach(e.data, 1);
        let taken = 0;
        while (stock.tryTake(0)) taken++;
        postMessage(taken);
      };`;
    const url = URL.createObjectURL(new Blob([code], { type: 'application/typescript' }));
    const threads = [new Worker(url), new Worker(url), new Worker(url)];
    try {
      const taken = await Promise.all(
        threads.map(
          (t) =>
            new Promise<number>((resolve) => {
              t.onmessage = (e) => resolve(e.data);
              t.postMessage(stock.buffer);
            }),
        ),
      );
      expect(taken.reduce((a, b) => a + b, 0)).toBe(50_000);
      expect(stock.level(0)).toBe(0);
    } finally {
      for (const t of threads) t.terminate();
    }
  });

  // The newest order id the node saw Redis make: a Redis that shows an older one lost writes.
  test('remembers the newest order id it was told of, across threads views of one buffer, and never goes back', () => {
    const stock = LocalStock.create(2);
    expect(stock.seen()).toBe('0-0');
    stock.noteSeen('1764000000123-5');
    const view = LocalStock.attach(stock.buffer, 2);
    expect(view.seen()).toBe('1764000000123-5');
    view.noteSeen('1764000000123-4');
    view.noteSeen('1764000000122-99');
    expect(stock.seen()).toBe('1764000000123-5');
    view.noteSeen('1764000000124-0');
    expect(stock.seen()).toBe('1764000000124-0');
    // A sequence past 2^20 - 1 is kept as 2^20 - 1: older than the truth, never newer.
    stock.noteSeen('1764000000124-2000000');
    expect(stock.seen()).toBe('1764000000124-1048575');
  });
});
