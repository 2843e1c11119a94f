/**
 * The durability trade-off, measured: Redis killed with SIGKILL mid-sale, once with
 * appendfsync everysec and once with always. Counts the sales a buyer was told of (code 1) that
 * are gone after the restart, and what `always` costs on the purchase path.
 */
import Redis from 'ioredis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ordersPresent } from '../../src/orders/store.ts';
import { DEFAULT_SALE, saleKeys } from '../../src/redis/keys.ts';
import { freePort } from '../../src/services/free-port.ts';
import { startRedisServer } from '../../src/services/redis-server.ts';
import { wrk, type LoadResult } from './load.ts';

const ROOT = join(import.meta.dir, '..', '..');

export interface DurabilityResult {
  readonly appendfsync: 'everysec' | 'always';
  /** The purchase path (wrk, one worker) with this setting. */
  readonly purchase: LoadResult;
  readonly acknowledged: number;
  /** Acknowledged sales missing after the restart. */
  readonly lost: number;
}

/** Buys as new users against `urls` until `until`, `lanes` at a time; returns the order ids of code-1 answers. */
async function buyUntil(urls: readonly string[], until: number, lanes: number, prefix: string): Promise<string[]> {
  const sold: string[] = [];
  let n = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (Date.now() < until) {
        const i = n++;
        try {
          const body = (await (
            await fetch(`${urls[i % urls.length]}/buy/ticket?user=${prefix}${i}`, { signal: AbortSignal.timeout(2000) })
          ).json()) as { code?: number; orderId?: string };
          if (body.code === 1 && body.orderId) sold.push(body.orderId);
        } catch {
          await Bun.sleep(5);
        }
      }
    }),
  );
  return sold;
}

/**
 * The purchase path with one replica that must confirm every sale (SPIKE_WAIT_REPLICAS=1):
 * the price of surviving a failover without losing an acknowledged sale.
 */
export async function waitCost(seconds: number): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'spike-wait-'));
  const master = await startRedisServer({ dir: join(dir, 'master') });
  const replicaPort = await freePort();
  const replica = Bun.spawn(
    [
      'redis-server',
      '--port',
      String(replicaPort),
      '--bind',
      '127.0.0.1',
      '--replicaof',
      '127.0.0.1',
      String(master.port),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdout: 'ignore', stderr: 'ignore' },
  );
  const supervisor = await startSupervisorProcess(dir, master.url, { SPIKE_WAIT_REPLICAS: '1', SPIKE_WAIT_MS: '500' });
  try {
    const client = new Redis(master.url);
    const deadline = Date.now() + 10_000;
    // WAIT counts only replicas past their first sync.
    while (!/slave0:.*state=online/.test(await client.info('replication')) && Date.now() < deadline) await Bun.sleep(50);
    client.disconnect();
    return await wrk(supervisor.urls[0]!, { connections: 100, seconds, userPrefix: 'w-' });
  } finally {
    await supervisor.stop();
    replica.kill('SIGTERM');
    await replica.exited;
    await master.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A supervisor child on free ports against `redisUrl`, without nginx, admin or writer. */
async function startSupervisorProcess(dir: string, redisUrl: string, env: Record<string, string> = {}) {
  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const child = Bun.spawn([process.execPath, join(ROOT, 'src', 'cli', 'start.ts'), '--reset', '--force'], {
    cwd: ROOT,
    env: {
      ...process.env,
      REDIS_URL: redisUrl,
      SPIKE_PORTS: ports.join(','),
      SPIKE_TOTAL: '50000000',
      SPIKE_NGINX: '0',
      SPIKE_ADMIN_PORT: '0',
      SPIKE_WRITER: '0',
      SPIKE_DATA_DIR: join(dir, 'data'),
      SPIKE_LOG_DIR: join(dir, 'logs'),
      ...env,
    },
    stdout: 'pipe',
    stderr: 'ignore',
  });
  const reader = child.stdout.getReader();
  let out = '';
  while (!out.includes('ready:')) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error(`supervisor ended before ready:\n${out}`);
    out += new TextDecoder().decode(chunk.value);
  }
  reader.releaseLock();
  void (async () => {
    for await (const _ of child.stdout) void _;
  })();
  return {
    urls: ports.map((p) => `http://127.0.0.1:${p}`),
    stop: async () => {
      child.kill('SIGTERM');
      await child.exited;
    },
  };
}

export async function durability(
  appendfsync: 'everysec' | 'always',
  seconds: number,
  say: (line: string) => void,
): Promise<DurabilityResult> {
  const dir = mkdtempSync(join(tmpdir(), 'spike-durability-'));
  let server = await startRedisServer({ dir, appendfsync });
  const supervisor = await startSupervisorProcess(dir, server.url);
  try {
    const urls = supervisor.urls;
    const purchase = await wrk(urls[0]!, { connections: 100, seconds, userPrefix: `p-${appendfsync}-` });

    say(`durability (${appendfsync}): buying, then SIGKILL to redis-server mid-sale`);
    const buying = buyUntil(urls, Date.now() + 2000, 64, `k-${appendfsync}-`);
    await Bun.sleep(1000);
    server.process.kill('SIGKILL');
    await server.process.exited;
    const acknowledged = await buying;
    server = await startRedisServer({ dir, port: server.port, appendfsync });
    const client = new Redis(server.url);
    const present = await ordersPresent(client, saleKeys(DEFAULT_SALE), acknowledged);
    client.disconnect();
    return { appendfsync, purchase, acknowledged: acknowledged.length, lost: acknowledged.length - present.size };
  } finally {
    await supervisor.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
