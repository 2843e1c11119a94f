// The app's own per-user cap (src/http/attempts.ts): counted in shared memory, per user and sale,
// in fixed windows; what is over the cap gets the time until the window ends.
import { describe, expect, test } from 'bun:test';
import { Attempts } from '../../src/http/attempts.ts';

const WINDOW = 10_000;
const at = (ms: number) => 1_800_000_000_000 + ms; // the start of a window (a multiple of 10 s)

describe('per-user attempts', () => {
  test('allows the cap in a window, then answers the time until the window ends', () => {
    const attempts = new Attempts({ buffer: Attempts.buffer(), limit: 3, windowMs: WINDOW, secret: Attempts.secret() });
    expect([1, 2, 3].map(() => attempts.hit('s', 'alice', at(1000)))).toEqual([0, 0, 0]);
    expect(attempts.hit('s', 'alice', at(2500))).toBe(7500);
    expect(attempts.hit('s', 'alice', at(9999))).toBe(1);
  });

  test('starts each window from zero, and counts each user and each sale apart', () => {
    const attempts = new Attempts({ buffer: Attempts.buffer(), limit: 2, windowMs: WINDOW, secret: Attempts.secret() });
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
    const secret = Attempts.secret();
    const one = new Attempts({ buffer, limit: 2, windowMs: WINDOW, secret });
    const two = new Attempts({ buffer, limit: 2, windowMs: WINDOW, secret });
    expect(one.hit('s', 'dave', at(0))).toBe(0);
    expect(two.hit('s', 'dave', at(0))).toBe(0);
    expect(one.hit('s', 'dave', at(0))).toBeGreaterThan(0);
    const off = new Attempts({ buffer, limit: 0, windowMs: WINDOW, secret });
    expect(off.hit('s', 'dave', at(0))).toBe(0);
  });

  test('100 000 users with 3 attempts each under a cap of 5: nobody is held back by a collision', () => {
    const attempts = new Attempts({ buffer: Attempts.buffer(), limit: 5, windowMs: WINDOW, secret: Attempts.secret() });
    let held = 0;
    for (let round = 0; round < 3; round++) for (let u = 0; u < 100_000; u++) if (attempts.hit('s', `u${u}`, at(0)) > 0) held++;
    expect(held).toBe(0);
  });

  // With the table's public hash (cyrb53), 32 names found offline in 4 s took every slot a chosen
  // name could use, and that name's attempts then went through uncounted: 100 of 100 passed.
  test('names crafted to crowd out a chosen user, or a flood of random names, leave that user capped at 30', () => {
    const victim = 'victim';
    const crafted = namesCollidingWith('s', victim, 32);
    const attempts = new Attempts({ buffer: Attempts.buffer(), limit: 30, windowMs: WINDOW, secret: Attempts.secret() });
    for (const name of crafted) attempts.hit('s', name, at(0));
    for (let u = 0; u < 200_000; u++) attempts.hit('s', `flood${u}`, at(0));
    const passed = Array.from({ length: 100 }, () => attempts.hit('s', victim, at(1))).filter((wait) => wait === 0);
    expect(passed).toHaveLength(30);
  });
});

/** The table's old, public hash: what an attacker could compute offline. */
function publicSlot(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  return (h1 >>> 0) & ((1 << 20) - 1);
}

/** `n` names whose public-hash slots fall in the 32 slots the victim's key probes. */
function namesCollidingWith(sale: string, victim: string, n: number): string[] {
  const start = publicSlot(`${sale}\n${victim}`);
  const found: string[] = [];
  for (let i = 0; found.length < n; i++) {
    const slot = publicSlot(`${sale}\nx${i}`);
    if (((slot - start) & ((1 << 20) - 1)) < 32) found.push(`x${i}`);
  }
  return found;
}
