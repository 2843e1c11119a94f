// A minute row of the dashboard's day-long range: rates averaged, gauges at their worst, so a
// minute with one second of Redis down reads down and a p99 spike is not averaged away.
import { describe, expect, test } from 'bun:test';
import { FIGURES, History, minuteOf, type Row } from '../../src/admin/history.ts';

const row = (t: number, over: Partial<Row>): Row => ({
  ...(Object.fromEntries(FIGURES.map((f) => [f, 0])) as Row),
  t,
  redis: 1,
  journal: 1,
  ...over,
});

describe('minuteOf', () => {
  test('averages rates, keeps the worst of gauges and the first second', () => {
    const rows = [row(600, { sold: 10, p99: 5, lag: 3 }), row(601, { sold: 20, p99: 80, redis: 0 }), row(602, { sold: 0, p99: 7, lag: 1 })];
    const minute = minuteOf(rows);
    expect(minute.t).toBe(600);
    expect(minute.sold).toBe(10);
    expect(minute.p99).toBe(80);
    expect(minute.lag).toBe(3);
    expect(minute.redis).toBe(0);
    expect(minute.journal).toBe(1);
  });

  test('a history keeps its capacity, oldest first', () => {
    const history = new History(3);
    for (let t = 1; t <= 5; t++) history.push(row(t, { sold: t }));
    expect(history.series('t')).toEqual([3, 4, 5]);
    expect(history.series('sold', 2)).toEqual([4, 5]);
  });
});
