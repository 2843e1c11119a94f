// The app's own per-user cap (src/http/attempts.ts): counted in shared memory, per user and sale,
// in fixed windows; what is over the cap gets the time until the window ends.
import { describe, expect, test } from 'bun:test';
import { Attempts } from '../../src/http/attempts.ts';

const WINDOW = 10_000;
const at = (ms: number) => 1_800_000_000_000 + ms; // the start of a window (a multiple of 10 s)

describe('per-user attempts', () => {
  test('allows the cap in a window, then answers the time until the window ends', () => {
    const attempts = new Attempts({ buffer: Attempts.buffer(), limit: 3, windowMs: WINDOW });
    expect([1, 2, 3].map(() => attempts.hit('s', 'alice', at(1000)))).toEqual([0, 0, 0]);
    expect(attempts.hit('s', 'alice', at(2500))).toBe(7500);
    expect(attempts.hit('s', 'alice', at(9999))).toBe(1);
  });

  test('starts each window from zero, and counts each user and each sale apart', () => {
    const attempts = new Attempts({ buffer: Attempts.buffer(), limit: 2, windowMs: WINDOW });
    for (let i = 0; i < 5; i++) attempts.hit('s', 'bob', at(0));
    expect(attempts.hit('s', 'bob', at(10))).toBeGreaterThan(0);
    expect(attempts.hit('t', 'bob', at(10))).toBe(0);
    expect(attempts.hit('s', 'carol', at(10))).toBe(0);
    expect(attempts.hit('s', 'bob', at(WINDOW))).toBe(0);
    expect(attempts.hit('s', 'bob', at(WINDOW + 1))).toBe(0);
    expect(attempts.hit('s', 'bob', at(WINDOW + 2))).toBeGreaterThan(0);
  });

  test('two views of one buffer (two workers) share the counts; a cap of 0 never limits', () => {
    const buffer = Attempts.buffer();
    const one = new Attempts({ buffer, limit: 2, windowMs: WINDOW });
    const two = new Attempts({ buffer, limit: 2, windowMs: WINDOW });
    expect(one.hit('s', 'dave', at(0))).toBe(0);
    expect(two.hit('s', 'dave', at(0))).toBe(0);
    expect(one.hit('s', 'dave', at(0))).toBeGreaterThan(0);
    const off = new Attempts({ buffer, limit: 0, windowMs: WINDOW });
    expect(off.hit('s', 'dave', at(0))).toBe(0);
  });

  test('100 000 users with 3 attempts each under a cap of 5: nobody is held back by a collision', () => {
    const attempts = new Attempts({ buffer: Attempts.buffer(), limit: 5, windowMs: WINDOW });
    let held = 0;
    for (let round = 0; round < 3; round++) for (let u = 0; u < 100_000; u++) if (attempts.hit('s', `u${u}`, at(0)) > 0) held++;
    expect(held).toBe(0);
  });
});
