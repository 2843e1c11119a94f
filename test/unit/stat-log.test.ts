import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatStat, StatLog, statLogPath } from '../../src/stat-log.ts';
import { tallyStats } from '../../src/stats.ts';

const dir = mkdtempSync(join(tmpdir(), 'spike-statlog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('stat log', () => {
  test('one line per request with port, result and local sales, like the original stat.log', () => {
    const line = formatStat({ port: 3001, result: 'sold', code: 1, localSales: 17, user: 'u1', orderId: '1-0' }, new Date(0));
    expect(line).toBe('1970-01-01T00:00:00.000Z port=3001 result=sold code=1 localSales=17 user=u1 order=1-0\n');
  });

  test('buffers lines and writes them all on close', () => {
    const path = statLogPath(dir, 3002);
    const log = new StatLog(path, { flushMs: 60_000 });
    for (let i = 1; i <= 500; i++) log.append({ port: 3002, result: i % 2 ? 'sold' : 'soldout', code: i % 2 ? 1 : -1, localSales: i, user: '' });
    expect(readFileSync(path, 'utf8')).toBe('');
    log.close();
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(500);
  });

  test('bun run stats tallies results per port and counts lines it cannot read', () => {
    const log = new StatLog(statLogPath(dir, 3001));
    log.append({ port: 3001, result: 'sold', code: 1, localSales: 1, user: 'a' });
    log.append({ port: 3001, result: 'held', code: 2, localSales: 1, user: 'a' });
    log.close();
    const { ports, unparsed } = tallyStats(dir);
    expect(ports.map((p) => [p.port, p.requests, p.results.sold ?? 0, p.localSales])).toEqual([
      [3001, 2, 1, 1],
      [3002, 500, 250, 500],
    ]);
    expect(unparsed).toBe(0);
  });
});
