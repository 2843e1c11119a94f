// The refill policy on its own. It used to be spread over five files, and every sale got the
// local stock of the default sale's SPIKE_TOTAL: a 5-ticket sale 3 000 units per worker.
import { describe, expect, test } from 'bun:test';
import { localStockFor, lowWater, topUpTo } from '../../src/stock/refill.ts';

const four = (buffer: number, localStock?: number) => ({ workers: 4, buffer, localStock });

describe('refill policy', () => {
  test("each sale's local stock follows its own total: fair share plus the buffer", () => {
    expect(localStockFor(four(0.2), 10_000)).toBe(3000);
    expect(localStockFor(four(0.2), 500)).toBe(150);
    expect(localStockFor(four(0.2), 5)).toBe(2);
  });

  test('a total smaller than the workers still gives each worker one unit (Redis refuses past the total)', () => {
    expect(localStockFor(four(0.2), 2)).toBe(1);
    expect(localStockFor(four(0), 1)).toBe(1);
    expect(localStockFor(four(0.2), 0)).toBe(1);
  });

  test('buffer 0 is the exact fair share, rounded up so the shares cover the total', () => {
    expect(localStockFor(four(0), 10_000)).toBe(2500);
    expect(localStockFor(four(0), 10)).toBe(3);
    expect(localStockFor(four(0), 10) * 4).toBeGreaterThanOrEqual(10);
  });

  test('SPIKE_LOCAL_STOCK fixes the local stock of every sale', () => {
    expect(localStockFor(four(0.2, 7), 10_000)).toBe(7);
    expect(topUpTo(four(0.2, 7), 10_000, 5_000)).toBe(7);
  });

  test('a worker asks for more at a quarter of its local stock', () => {
    expect(lowWater(3000)).toBe(750);
    expect(lowWater(3)).toBe(0);
  });

  test('a top-up gives what remains plus the buffer, at most the local stock, and nothing once nothing remains', () => {
    expect(topUpTo(four(0.2), 10_000, 9_000)).toBe(3000);
    expect(topUpTo(four(0.2), 10_000, 100)).toBe(120);
    expect(topUpTo(four(0), 10_000, 1)).toBe(1);
    expect(topUpTo(four(0.2), 10_000, 0)).toBe(0);
  });

  test('one worker dead: a live one may take all that remains, so the others sell the whole sale', () => {
    // 1 000 tickets, 300 left and only some workers reached: each live worker may hold all 300 (+ buffer, capped).
    expect(topUpTo(four(0.2), 1000, 300)).toBe(300);
    expect(topUpTo(four(0), 1000, 200)).toBe(200);
  });

  test('stock added mid-sale raises the local stock with the new total', () => {
    expect(localStockFor(four(0.2), 30)).toBe(9);
    expect(localStockFor(four(0.2), 50)).toBe(15);
    expect(topUpTo(four(0.2), 50, 20)).toBe(15);
  });
});
