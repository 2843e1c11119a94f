// The node's journal: what every worker told buyers, read back by the reconciler when Redis lost
// it before the database had it (orders/journal.ts).
import { afterEach, describe, expect, test } from 'bun:test';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DbOrder } from '../../src/orders/db.ts';
import { Journal, newestJournaled, pruneJournal, readJournal, withJournal } from '../../src/orders/journal.ts';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const fresh = () => (dir = mkdtempSync(join(tmpdir(), 'spike-journal-')));

const row = (orderId: string, state: string): DbOrder => ({
  sale: 's',
  orderId,
  user: 'u',
  port: 1,
  state,
  createdAt: Number(orderId.split('-')[0]),
  updatedAt: Number(orderId.split('-')[0]),
  payBy: null,
});

describe('the journal', () => {
  test('writes each entry as the JSON of it, whatever the user name holds', () => {
    fresh();
    const j = new Journal(dir, 3001);
    const entries = [
      { sale: 's.1:x', kind: 'created', orderId: '100-7', user: 'José "J" Núñez \\ ✓', port: 3001, window: 5000 },
      { sale: 's', kind: 'cancelled', orderId: '101-0', user: '', port: 3002, window: 0 },
    ] as const;
    j.append(entries);
    j.close();
    const lines = readJournal(dir).map(({ at, ...rest }) => (typeof at === 'number' ? rest : null));
    expect(lines).toEqual(entries.map((e) => ({ ...e })));
  });

  test('reads back what the workers wrote, by sale, and skips a line a crash cut short', () => {
    fresh();
    const a = new Journal(dir, 3001);
    const b = new Journal(dir, 3002);
    a.append([{ sale: 's', kind: 'created', orderId: '100-0', user: 'ann', port: 3001, window: 5000 }]);
    b.append([
      { sale: 's', kind: 'created', orderId: '101-0', user: 'bob', port: 3002, window: 5000 },
      { sale: 't', kind: 'created', orderId: '99-0', user: 'cy', port: 3002, window: 0 },
    ]);
    a.append([{ sale: 's', kind: 'paid', orderId: '100-0', user: 'ann', port: 3001, window: 0 }]);
    a.close();
    b.close();
    appendFileSync(join(dir, readdirSync(dir)[0]!), '{"sale":"s","kind":"crea');
    expect(
      readJournal(dir, 's')
        .map((e) => `${e.orderId} ${e.kind}`)
        .sort(),
    ).toEqual(['100-0 created', '100-0 paid', '101-0 created']);
    expect(newestJournaled(dir)).toEqual(
      new Map([
        ['s', '101-0'],
        ['t', '99-0'],
      ]),
    );
  });

  test("adds the orders the database lacks and moves reserved rows on; the database's final states win", () => {
    const merged = withJournal(
      [row('1-0', 'reserved'), row('2-0', 'expired'), row('3-0', 'reserved')],
      [
        { sale: 's', kind: 'paid', orderId: '1-0', user: 'u', port: 1, window: 0, at: 50 },
        { sale: 's', kind: 'paid', orderId: '2-0', user: 'u', port: 1, window: 0, at: 50 },
        { sale: 's', kind: 'created', orderId: '4-0', user: 'v', port: 2, window: 1000, at: 4 },
        { sale: 's', kind: 'cancelled', orderId: '4-0', user: 'v', port: 2, window: 0, at: 60 },
        { sale: 's', kind: 'created', orderId: '5-0', user: 'w', port: 2, window: 1000, at: 5 },
      ],
    );
    expect(merged.map((r) => `${r.orderId} ${r.state}`)).toEqual([
      '1-0 paid',
      '2-0 expired',
      '3-0 reserved',
      '4-0 cancelled',
      '5-0 reserved',
    ]);
    expect(merged.find((r) => r.orderId === '5-0')).toMatchObject({ user: 'w', port: 2, payBy: 1005 });
  });

  test('deletes only finished segments whose every entry the database holds', async () => {
    fresh();
    const journal = new Journal(dir, 3001);
    journal.append([{ sale: 's', kind: 'created', orderId: '1-0', user: 'u', port: 1, window: 0 }]);
    journal.append([{ sale: 's', kind: 'paid', orderId: '1-0', user: 'u', port: 1, window: 0 }]);
    journal.close();
    const later = Date.now() + 3_600_000;
    expect(await pruneJournal(dir, async () => new Map([['1-0', 'paid']]))).toBe(0);
    expect(await pruneJournal(dir, async () => new Map([['1-0', 'reserved']]), later)).toBe(0);
    expect(await pruneJournal(dir, async () => new Map([['1-0', 'paid']]), later)).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
  });
});
