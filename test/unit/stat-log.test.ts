import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatStat, StatLog, statLogPath, tallyStats } from '../../src/http/stat-log.ts';

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
    for (let i = 1; i <= 500; i++)
      log.append({ port: 3002, result: i % 2 ? 'sold' : 'soldout', code: i % 2 ? 1 : -1, localSales: i, user: '' });
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

  // At 44 000 sold-out answers a second the log grew 16 MB in 5 s, without bound.
  test('rotates at its size limit, keeps the newest old files, and bun run stats still counts every kept line', () => {
    const rotated = mkdtempSync(join(tmpdir(), 'spike-rotate-'));
    try {
      const path = statLogPath(rotated, 3005);
      const log = new StatLog(path, { flushMs: 60_000, maxBytes: 1, rotation: { maxBytes: 4000, keep: 2 } });
      for (let i = 1; i <= 400; i++) log.append({ port: 3005, result: 'soldout', code: -1, localSales: 0, user: `u${i}` });
      log.close();
      const files = readdirSync(rotated).sort();
      expect(files).toEqual(['stat-3005.log', 'stat-3005.log.1', 'stat-3005.log.2']);
      for (const file of files) expect(statSync(join(rotated, file)).size).toBeLessThanOrEqual(4000);
      const kept = files.reduce((n, f) => n + readFileSync(join(rotated, f), 'utf8').trim().split('\n').length, 0);
      expect(kept).toBeLessThan(400);
      // The newest line is in the live file, and the kept lines are the last ones written.
      expect(readFileSync(path, 'utf8')).toContain('user=u400\n');
      expect(tallyStats(rotated).ports).toEqual([{ port: 3005, requests: kept, results: { soldout: kept }, localSales: 0 }]);
    } finally {
      rmSync(rotated, { recursive: true, force: true });
    }
  });
});
