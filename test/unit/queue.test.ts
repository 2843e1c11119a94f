// The waiting room's pure parts: the signed ticket, the board's view of admissions, and what a
// waiter is told (src/queue/).
import { describe, expect, test } from 'bun:test';
import { QueueBoard } from '../../src/queue/board.ts';
import { POLL_MAX_MS, POLL_MIN_MS, statusOf } from '../../src/queue/status.ts';
import { issueTicket, readTicket } from '../../src/queue/ticket.ts';
import type { QueueState } from '../../src/redis/queue.ts';

const KEY = 'a-queue-secret-of-the-tests';
const T0 = 1_800_000_000_000;

function board(state: Partial<QueueState> = {}, settings = { admissionMs: 60_000, rate: 100 }): QueueBoard {
  const b = QueueBoard.create();
  b.setSettings(settings);
  // Published "now" on Redis' clock T0: the view's clock reads T0 plus the few ms since.
  b.publish({ serving: 0, tail: 0, pre: 0, drawn: true, final: false, now: T0, steps: [], ...state });
  return b;
}

describe('queue tickets', () => {
  test('carry sale, user and place, and verify only with the key they were signed with', () => {
    const token = issueTicket(KEY, { sale: 'concert.2026', user: 'ann@x.org', position: 42 });
    expect(readTicket(KEY, token)).toEqual({ sale: 'concert.2026', user: 'ann@x.org', position: 42 });
    expect(readTicket('another-key-of-the-same-len', token)).toBeUndefined();
  });

  test('a changed place, a cut mac or garbage is refused', () => {
    const token = issueTicket(KEY, { sale: 's', user: 'bob', position: 900 });
    const [payload, mac] = token.split('.') as [string, string];
    const moved = Buffer.from('1|s|bob').toString('base64url');
    expect(readTicket(KEY, `${moved}.${mac}`)).toBeUndefined();
    expect(readTicket(KEY, `${payload}.${mac.slice(1)}`)).toBeUndefined();
    for (const bad of ['', '.', 'abc', `${payload}.`, 'x'.repeat(500), undefined]) expect(readTicket(KEY, bad)).toBeUndefined();
  });
});

describe('the queue board', () => {
  test('tells when each place was admitted from the steps, and nothing past the serving counter', () => {
    const b = board({
      serving: 250,
      tail: 900,
      steps: [
        { at: T0 - 90_000, serving: 100 },
        { at: T0 - 5000, serving: 200 },
        { at: T0, serving: 250 },
      ],
    });
    const view = b.view();
    expect([1, 100, 101, 200, 201, 250].map((p) => view.admittedAt(p))).toEqual([T0 - 90_000, T0 - 90_000, T0 - 5000, T0 - 5000, T0, T0]);
    expect(view.admittedAt(251)).toBeUndefined();
    expect(view.admittedAt(0)).toBeUndefined();
    expect(view).toMatchObject({ queued: true, published: true, serving: 250, tail: 900, admissionMs: 60_000, rate: 100 });
  });

  test('a worker attached to the same buffer reads what the supervisor published; settings off means not queued', () => {
    const b = board({ serving: 7, final: true });
    const worker = QueueBoard.attach(b.buffer);
    expect(worker.view()).toMatchObject({ serving: 7, final: true, queued: true });
    b.setSettings(undefined);
    expect(worker.isQueued()).toBe(false);
    expect(() => QueueBoard.attach(new SharedArrayBuffer(8))).toThrow(/bytes/);
  });
});

describe('what a waiter is told', () => {
  const window = { startsAt: 0, endsAt: 0 };
  const steps = [
    { at: T0 - 90_000, serving: 100 },
    { at: T0 - 5000, serving: 200 },
  ];

  test('admitted within the admission, closed after it, waiting behind the counter', () => {
    const view = board({ serving: 200, tail: 10_000, steps }).view();
    expect(statusOf(view, 150, window)).toMatchObject({
      state: 'admitted',
      ahead: 0,
      admissionEndsAt: new Date(T0 + 55_000).toISOString(),
    });
    expect(statusOf(view, 50, window)).toMatchObject({ state: 'closed', lapsed: true });
    expect(statusOf(view, 260, window)).toMatchObject({ state: 'waiting', position: 260, ahead: 59, etaSeconds: 1 });
  });

  test('polls are asked for less often the farther from the front, within bounds', () => {
    const view = board({ serving: 200, tail: 1_000_000, steps }).view();
    const polls = [201, 1000, 3000, 10_000, 900_000].map((p) => statusOf(view, p, window).pollAfterMs);
    for (let i = 1; i < polls.length; i++) expect(polls[i]!).toBeGreaterThanOrEqual(polls[i - 1]! * 0.8);
    expect(polls[0]).toBe(POLL_MIN_MS);
    expect(polls.at(-1)).toBe(POLL_MAX_MS);
  });

  test('sold out for good beats everything; an ended sale is closed; the pre-queue waits for the draw', () => {
    expect(statusOf(board({ serving: 200, steps, final: true }).view(), 150, window).state).toBe('soldout');
    expect(statusOf(board({ serving: 200, steps }).view(), 150, { startsAt: 0, endsAt: T0 - 1 })).toMatchObject({
      state: 'closed',
      msg: 'the sale has ended',
    });
    const pre = statusOf(board({ drawn: false }).view(), 0, { startsAt: T0 + 10_000, endsAt: 0 });
    expect(pre).toMatchObject({ state: 'waiting', position: 0, etaSeconds: 10 });
    expect(pre.pollAfterMs).toBeGreaterThanOrEqual(10_000);
    expect(pre.pollAfterMs).toBeLessThanOrEqual(12_000);
  });
});
