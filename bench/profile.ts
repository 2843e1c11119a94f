/**
 * `bun --cpu-prof --cpu-prof-md bench/profile.ts [root] [seconds] [soldout]`: one worker's real code
 * (src/supervisor/worker.ts, as the supervisor starts it) on the main thread, under wrk, for the
 * profiler: in Bun 1.4.5 `--cpu-prof` records the main thread only, and a worker thread's profile
 * comes out empty. `root` is a checkout of spike (default: this one), so a ref's worker is profiled
 * by the same harness. Its own Redis; local stock set large, so no top-up (the supervisor's) is needed.
 */
import Redis from 'ioredis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRedisServer } from '../src/services/redis-server.ts';
import { freePort } from '../src/services/free-port.ts';
import { wrk } from './lib/load.ts';

const root = resolve(Bun.argv[2] ?? join(import.meta.dir, '..'));
const seconds = Number(Bun.argv[3] ?? 8);
const soldOut = Bun.argv[4] === 'soldout';
const dir = mkdtempSync(join(tmpdir(), 'spike-profile-'));
const mod = async <T>(path: string) => (await import(join(root, 'src', path))) as T;

const server = await startRedisServer({ dir: join(dir, 'redis') });
const redis = new Redis(server.url);
try {
  const { DEFAULT_SALE, saleKeys } = await mod<{ DEFAULT_SALE: string; saleKeys: (id: string) => unknown }>('redis/keys.ts');
  const { ensureSale } = await mod<{ ensureSale: (r: unknown, k: unknown, n: number, reset: boolean) => Promise<unknown> }>(
    'redis/sale.ts',
  );
  await ensureSale(redis, saleKeys(DEFAULT_SALE), soldOut ? 0 : 50_000_000, true);
  type Buffered = { buffer: SharedArrayBuffer };
  const { LocalStock } = await mod<{
    LocalStock: { create(n: number): Buffered & { refill(w: number, n: number): number; markSoldOut(): void } };
  }>('stock/local-stock.ts');
  const { QueueBoard } = await mod<{ QueueBoard: { create(): Buffered } }>('queue/board.ts');
  const { Attempts } = await mod<{ Attempts: { buffer(): SharedArrayBuffer; secret?(): string } }>('http/attempts.ts');
  const optional = async <T>(path: string, make: (m: T) => SharedArrayBuffer) => {
    try {
      return make(await mod<T>(path));
    } catch {
      return new SharedArrayBuffer(8);
    }
  };
  const stock = LocalStock.create(1);
  if (soldOut) stock.markSoldOut();
  else stock.refill(0, 50_000_000);
  const port = await freePort();
  const init = {
    type: 'init',
    worker: 0,
    workers: 1,
    port,
    sales: [{ id: DEFAULT_SALE, buffer: stock.buffer, queue: QueueBoard.create().buffer }],
    archived: [],
    host: '127.0.0.1',
    defaultSale: DEFAULT_SALE,
    redis: server.url,
    redisTimeoutMs: 1000,
    refillWaitMs: 100,
    payWindowMs: 300_000,
    waitReplicas: 0,
    waitMs: 100,
    jwtSecret: undefined,
    orderKey: 'k'.repeat(64),
    logDir: join(dir, 'logs'),
    statLog: { maxBytes: 64 * 1024 * 1024, keep: 1 },
    addressHolds: 4,
    // As the default SPIKE_TRUSTED_PROXIES: loopback's buyers (the load tool) are not counted per client.
    clients: { trusted: ['127.0.0.0/8', '::1'], ipv6Prefix: 64, host: '127.0.0.1' },
    attempts: { buffer: Attempts.buffer(), limit: 30, windowMs: 10_000, secret: Attempts.secret?.() ?? 'a'.repeat(64) },
    queueKey: 'q'.repeat(64),
    health: await optional<{ RedisHealth: { create(): Buffered } }>('redis/health.ts', (m) => m.RedisHealth.create().buffer),
    journalDir: join(dir, 'journal'),
    journalHealth: await optional<{ JournalHealth: { create(n: number): Buffered } }>(
      'orders/journal-health.ts',
      (m) => m.JournalHealth.create(1).buffer,
    ),
    requests: await optional<{ RequestStats: { create(n: number): Buffered } }>(
      'http/request-stats.ts',
      (m) => m.RequestStats.create(1).buffer,
    ),
  };
  // The worker module talks to its parent through `self`; on the main thread that is globalThis.
  const listening = Promise.withResolvers<void>();
  (globalThis as { postMessage?: (m: { type: string }) => void }).postMessage = (m) => {
    if (m.type === 'listening') listening.resolve();
  };
  await import(join(root, 'src/supervisor/worker.ts'));
  (globalThis as unknown as { onmessage: (e: { data: unknown }) => void }).onmessage({ data: init });
  await listening.promise;
  const url = `http://127.0.0.1:${port}`;
  const warm = await wrk(url, { connections: 100, seconds: 2, userPrefix: 'warm' });
  const cpuBefore = process.cpuUsage();
  const result = await wrk(url, { connections: 100, seconds, userPrefix: 'p' });
  const cpu = process.cpuUsage(cpuBefore);
  const calls = Number(/cmdstat_evalsha:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
  // The profile covers the warm-up too: per-request figures divide by every request answered.
  const requests = warm.requests + result.requests;
  console.error(
    `${root}: ${Math.round(result.rps)} req/s over ${result.seconds.toFixed(1)} s${soldOut ? ' (sold out)' : ''}, ${((cpu.user + cpu.system) / result.requests).toFixed(1)} µs CPU a request; ${requests} requests in all, ${(requests / Math.max(1, calls)).toFixed(1)} a script call`,
  );
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  redis.disconnect();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
  // The worker's server and clients would keep the process alive; the profile is written at exit.
  process.exit();
}
