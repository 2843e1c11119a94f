// Heal without a person. Before: a `kill -9` of spike's own Redis, or a full data disk, made every
// buyer get 503 until someone restarted Redis by hand (after a full disk it stayed down for good),
// and the pay window ran on meanwhile: buyers who could not pay had their orders expired the
// moment Redis came back.
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/services/free-port.ts';
import { freeBytes } from '../../src/services/redis-keeper.ts';
import { fire } from '../helpers/load.ts';
import { startSpikeProcess, until } from '../helpers/process.ts';
import { freePorts, RestorableRedis, startTestNginx, startTestRedis, tempDir } from '../helpers/servers.ts';
import { parseOutages } from '../../src/orders/model.ts';
import { DEFAULT_SALE } from '../../src/redis/keys.ts';
import Redis from 'ioredis';
import { reachable, startTestSpike } from '../helpers/spike.ts';

setDefaultTimeout(120_000);

const TOKEN = 'admin-token-for-healing-0123456789';
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function privateSpike(dataDir: string) {
  const port = await freePort();
  const ports = await freePorts(4);
  const spike = await startSpikeProcess({
    REDIS_URL: '',
    SPIKE_DATA_DIR: dataDir,
    SPIKE_LOG_DIR: tempDir('healing-logs'),
    SPIKE_PORTS: ports.join(','),
    SPIKE_NGINX: '0',
    SPIKE_ADMIN_PORT: String(port),
    SPIKE_ADMIN_TOKEN: TOKEN,
    SPIKE_TOTAL: '100000',
  });
  const buy = async (user: string) =>
    (await (await fetch(`http://127.0.0.1:${ports[0]}/buy/ticket?user=${user}`)).json()) as { code?: number; orderId?: string };
  const admin = (path: string) => fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { spike, ports, buy, admin };
}

describe("spike's own Redis", () => {
  test('killed with SIGKILL is started again by itself: one WARN line, counted, nothing lost, buyers served again', async () => {
    const dataDir = tempDir('healing');
    dirs.push(dataDir);
    const { spike, buy, admin } = await privateSpike(dataDir);
    try {
      const before = await buy('before');
      expect(before.code).toBe(1);
      process.kill(Number(readFileSync(join(dataDir, 'redis.pid'), 'utf8')), 'SIGKILL');
      let n = 0;
      const took = await until('a sale after the kill', async () => (await buy(`after${n++}`)).code === 1);
      console.log(`healing: buyers sold to again ${took} ms after redis-server was killed`);
      await spike.waitFor('is back on port');
      expect(spike.output().match(/WARN {2}redis-server exited \(killed by SIGKILL\)/g)).toHaveLength(1);
      expect(await (await admin('/metrics')).text()).toContain('spike_redis_restarts_total 1');
      expect((await buy('before')).code).toBe(2);
    } finally {
      expect(await spike.stop()).toBe(0);
    }
  });

  test('on a full disk: one ERROR line naming the folder and its free space, not ready, and back by itself once there is room', async () => {
    const dataDir = tempDir('full');
    dirs.push(dataDir);
    const mount = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', dataDir], { stderr: 'pipe' });
    if (mount.exitCode !== 0) throw new Error(`cannot mount a small disk for the test: ${mount.stderr}`);
    const { spike, buy, admin } = await privateSpike(dataDir);
    const filler = join(dataDir, 'filler');
    try {
      Bun.spawnSync(['fallocate', '-l', String(freeBytes(dataDir)! - 48 * 1024), filler]);
      const acknowledged: string[] = [];
      for (let i = 0; i < 5000; i++) {
        const answer = await buy(`u${i}`);
        if (answer.code !== 1) break;
        acknowledged.push(answer.orderId!);
      }
      await spike.waitFor(`ERROR redis-server cannot write its data in ${dataDir}:`);
      expect(spike.output()).toMatch(/redis-server cannot write its data in \S+: \d+\.\d MB free on that disk/);
      const ready = await admin('/readyz');
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { msg: string }).msg).toContain('cannot write its data');
      unlinkSync(filler);
      let n = 0;
      const took = await until('a sale once there is room', async () => (await buy(`again${n++}`)).code === 1);
      console.log(`healing: a full disk: buyers sold to again ${took} ms after space returned`);
      await until('ready again', async () => (await admin('/readyz')).status === 200);
      expect(spike.output().match(/cannot write its data/g)).toHaveLength(1);
      // Acknowledged sales are all still there: their buyers hold them (a sample of 50).
      expect(acknowledged.length).toBeGreaterThan(0);
      for (let i = 0; i < acknowledged.length; i += Math.max(1, Math.floor(acknowledged.length / 50)))
        expect(await buy(`u${i}`)).toMatchObject({ code: 2, orderId: acknowledged[i] });
    } finally {
      expect(await spike.stop()).toBe(0);
      Bun.spawnSync(['umount', dataDir]);
    }
  });
});

describe("the node's journal", () => {
  // A journal that could not be written was one ERROR line and sales went on without it; with the
  // writer behind and a Redis rollback after, 500 acknowledged orders were lost and sold again.
  test('that cannot be written at the start stops it with exit 2 naming the folder', async () => {
    const dataDir = tempDir('journal-file');
    dirs.push(dataDir);
    await Bun.write(join(dataDir, 'journal'), 'a file where the journal folder should be\n');
    const redis = await startTestRedis();
    try {
      const proc = Bun.spawn([process.execPath, join(import.meta.dir, '..', '..', 'src', 'cli', 'start.ts')], {
        env: {
          ...process.env,
          REDIS_URL: redis.url,
          SPIKE_DATA_DIR: dataDir,
          SPIKE_PORTS: (await freePorts(4)).join(','),
          SPIKE_NGINX: '0',
          SPIKE_ADMIN_PORT: '0',
        },
        stdout: 'pipe',
        stderr: 'pipe',
      });
      expect(await proc.exited).toBe(2);
      const err = await new Response(proc.stderr).text();
      expect(err).toContain(`cannot write the journal folder ${join(dataDir, 'journal')}`);
      expect(err).not.toContain('    at ');
    } finally {
      await redis.close();
    }
  });

  test('that stops being writable: the node sells nothing and says so, then heals by itself and writes what waited', async () => {
    const dataDir = tempDir('journal-full');
    dirs.push(dataDir);
    const journalDir = join(dataDir, 'journal');
    mkdirSync(journalDir);
    const mount = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', journalDir], { stderr: 'pipe' });
    if (mount.exitCode !== 0) throw new Error(`cannot mount a small disk for the test: ${mount.stderr}`);
    const redis = await startTestRedis();
    const port = await freePort();
    const ports = await freePorts(4);
    const spike = await startSpikeProcess({
      REDIS_URL: redis.url,
      SPIKE_DATA_DIR: dataDir,
      SPIKE_LOG_DIR: tempDir('journal-logs'),
      SPIKE_PORTS: ports.join(','),
      SPIKE_NGINX: '0',
      SPIKE_ADMIN_PORT: String(port),
      SPIKE_ADMIN_TOKEN: TOKEN,
      SPIKE_TOTAL: '1000',
      SPIKE_RESET: 'force',
    });
    const admin = (path: string) => fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const buy = async (user: string) => {
      const res = await fetch(`http://127.0.0.1:${ports[0]}/buy/ticket?user=${user}`);
      return {
        status: res.status,
        ...((await res.json()) as { code?: number; orderId?: string; error?: string; outcome?: string; msg?: string }),
      };
    };
    const filler = join(journalDir, 'filler');
    try {
      expect((await buy('before')).code).toBe(1);
      Bun.spawnSync(['fallocate', '-l', String(freeBytes(journalDir)!), filler]);
      // The first buyer whose sale cannot be journaled (once the file's last page is full) is told
      // 503, outcome unknown; from then on nobody is sold to.
      let unjournaled = '';
      for (let i = 0; i < 500 && !unjournaled; i++) {
        const answer = await buy(`fill${i}`);
        if (answer.status === 503) {
          expect(answer).toMatchObject({ error: 'unavailable', outcome: 'unknown' });
          unjournaled = `fill${i}`;
        } else expect(answer.code).toBe(1);
      }
      expect(unjournaled).not.toBe('');
      const refused = await buy('meanwhile');
      expect(refused).toMatchObject({ status: 503, error: 'unavailable', outcome: 'none' });
      expect(refused.msg).toContain('journal');
      await spike.waitFor(`ERROR [journal] cannot write to ${journalDir}`);
      const ready = await admin('/readyz');
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { msg: string }).msg).toContain('journal');
      expect((await fetch(`http://127.0.0.1:${ports[0]}/readyz`)).status).toBe(503);
      expect(await (await admin('/metrics')).text()).toContain('spike_journal_writable 0');
      unlinkSync(filler);
      let n = 0;
      await until('a sale once the journal can be written', async () => (await buy(`again${n++}`)).code === 1);
      await spike.waitFor(`[journal] writing to ${journalDir} again`);
      expect((await admin('/readyz')).status).toBe(200);
      expect(await (await admin('/metrics')).text()).toContain('spike_journal_writable 1');
      // The buyer told 503 holds the order Redis made, and it is in the journal now.
      const mine = await buy(unjournaled);
      expect(mine.code).toBe(2);
      const journaled = readdirSync(journalDir)
        .filter((f) => f.endsWith('.jsonl'))
        .map((f) => readFileSync(join(journalDir, f), 'utf8'))
        .join('');
      expect(journaled).toContain(`"orderId":"${mine.orderId}","user":"${unjournaled}"`);
    } finally {
      expect(await spike.stop()).toBe(0);
      Bun.spawnSync(['umount', journalDir]);
      await redis.close();
    }
  });
});

describe('SPIKE_WAIT_REPLICAS', () => {
  // With no replica to confirm them, every purchase answered 503 while its order was made, and
  // spike started without a word.
  test('more than the master has stops the start with exit 2, naming what is missing', async () => {
    const redis = await startTestRedis();
    try {
      const env = {
        ...process.env,
        REDIS_URL: redis.url,
        SPIKE_DATA_DIR: tempDir('wait-data'),
        SPIKE_PORTS: (await freePorts(4)).join(','),
        SPIKE_NGINX: '0',
        SPIKE_ADMIN_PORT: '0',
      };
      for (const [extra, says] of [
        [
          { SPIKE_WAIT_REPLICAS: '1' },
          /SPIKE_WAIT_REPLICAS=1: only 0 replicas of redis:\/\/127\.0\.0\.1:\d+ confirmed a write within 15 s \(0 connected\)/,
        ],
        [{ SPIKE_WAIT_REPLICAS: '1', REDIS_URL: '' }, /SPIKE_WAIT_REPLICAS=1 needs a Redis with replicas/],
      ] as const) {
        const proc = Bun.spawn([process.execPath, join(import.meta.dir, '..', '..', 'src', 'cli', 'start.ts')], {
          env: { ...env, ...extra },
          stdout: 'pipe',
          stderr: 'pipe',
        });
        expect(await proc.exited).toBe(2);
        expect(await new Response(proc.stderr).text()).toMatch(says);
      }
    } finally {
      await redis.close();
    }
  });
});

describe('payment deadlines', () => {
  // Deadlines move by an outage, one pay window at most (a Redis frozen again and again must not
  // hold seats for ever): down 5 s with a 4 s window, the buyers' first deadlines pass meanwhile.
  test('Redis down 5 s with a 4 s pay window: every buyer can still pay when it is back', async () => {
    const redis = await startTestRedis();
    const spike = await startTestSpike(redis.url, {
      SPIKE_TOTAL: '100',
      SPIKE_RESET: 'force',
      SPIKE_PAY_WINDOW: '4',
      SPIKE_REAP_MS: '100',
    });
    try {
      const users = Array.from({ length: 20 }, (_, i) => `payer${i}`);
      const orders = await fire(users.map((u, i) => `${spike.url(i % 4)}/buy/ticket?user=${u}`));
      expect(orders.every((a) => a.body.code === 1)).toBe(true);
      await redis.stop();
      await Bun.sleep(5000);
      await redis.start();
      // Every worker, not only the first: each pays a share of the orders, and their clients
      // reconnect on their own time (one was still reconnecting once in a full run).
      await reachable(spike);
      const paid = await fire(
        orders.map((a, i) => `${spike.url((i + 1) % 4)}/orders/${a.body.orderId}/pay?user=${users[i]}`),
        20,
        { method: 'POST' },
      );
      expect(paid.map((a) => a.body.state)).toEqual(users.map(() => 'paid'));
    } finally {
      await spike.close();
      await redis.close();
    }
  });
});

describe('payment deadlines under freezes', () => {
  // Redis frozen 1.5 s every 3 s with an 8 s pay window held orders reserved 45 s (every outage
  // moved the deadline again); a 2 s freeze went unrecorded in 21 of 33 runs; recorded outages
  // ended up to 2 s after Redis answered again (placed by the time the script ran, not the call).
  test('every freeze is recorded at its own times, a deadline moves by at most one pay window, and the order then expires', async () => {
    const redis = new RestorableRedis();
    await redis.start();
    const spike = await startTestSpike(redis.server.url, {
      SPIKE_TOTAL: '10',
      SPIKE_RESET: 'force',
      SPIKE_PAY_WINDOW: '4',
      SPIKE_REAP_MS: '200',
      SPIKE_REDIS_TIMEOUT_MS: '500',
    });
    const client = new Redis(redis.server.url);
    try {
      const sold = (await (await fetch(`${spike.url(0)}/buy/ticket?user=frozen`)).json()) as { code: number; orderId: string };
      expect(sold.code).toBe(1);
      const thawed: number[] = [];
      for (let i = 0; i < 6; i++) {
        redis.freeze();
        await Bun.sleep(1500);
        redis.thaw();
        thawed.push(Date.now());
        await Bun.sleep(1500);
      }
      await reachable(spike);
      // Recorded in the sale, by Redis' clock: one entry per freeze, each ending when it ended.
      await until('the last outage recorded', async () => parseOutages(await client.hget(DEFAULT_SALE, 'outages')).length >= thawed.length);
      const outages = parseOutages(await client.hget(DEFAULT_SALE, 'outages')).sort((a, b) => a.end - b.end);
      expect(outages).toHaveLength(thawed.length);
      const offset = Number((await client.time())[0]) * 1000 - Date.now();
      for (const [i, o] of outages.entries()) expect(Math.abs(o.end - offset - thawed[i]!)).toBeLessThan(1000);
      // The order's deadline: moved, but by one pay window at most.
      const created = Number(sold.orderId.split('-')[0]);
      const order = (await (await fetch(`${spike.url(1)}/orders/${sold.orderId}?user=frozen`)).json()) as { state: string; payBy: string };
      expect(Date.parse(order.payBy)).toBeLessThanOrEqual(created + 8000);
      expect(Date.parse(order.payBy)).toBeGreaterThan(created + 4000);
      await until(
        'the order expired',
        async () =>
          ((await (await fetch(`${spike.url(2)}/orders/${sold.orderId}?user=frozen`)).json()) as { state: string }).state === 'expired',
      );
    } finally {
      client.disconnect();
      await spike.close();
      await redis.close();
    }
  });
});

describe('a Redis stall', () => {
  // Redis busy for a few seconds: every buyer was told 503 after the timeout, yet each script ran
  // once Redis woke up, and 40 of 40 anonymous buyers told 503 had an order nobody could pay. nginx
  // then refused everyone for its whole fail_timeout (5 s) after Redis was back.
  test('a purchase answered 503 leaves no live order behind, and buyers through nginx are served again right after', async () => {
    const redis = await startTestRedis();
    const spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '1000', SPIKE_RESET: 'force', SPIKE_REDIS_TIMEOUT_MS: '300' });
    const nginx = await startTestNginx(spike.ports);
    try {
      await redis.client.call('CLIENT', 'PAUSE', '2000', 'ALL');
      const resumesAt = Date.now() + 2000;
      const during = await fire(
        Array.from({ length: 200 }, (_, i) => `${spike.url(i % 4)}/buy/ticket`),
        20,
      );
      expect(during.filter((a) => a.status === 200)).toEqual([]);
      expect(during.every((a) => a.status === 503)).toBe(true);
      let n = 0;
      await until('a sale through nginx', async () => (await fetch(`${nginx.url}/buy/ticket?user=back${n++}`)).status === 200);
      console.log(
        `healing: after a 2 s Redis stall, buyers through nginx were served ${Date.now() - resumesAt} ms after Redis answered again`,
      );
      await Bun.sleep(500);
      // Whatever Redis sold for the anonymous buyers told 503 was undone: every live order is a named one.
      const sold = Number(await redis.client.hget('ticket_hash_key', 'ticket_sold_nums'));
      expect(sold).toBe(await redis.client.hlen('{ticket_hash_key}:buyers'));
      expect(sold).toBeGreaterThanOrEqual(1);
    } finally {
      await nginx.close();
      await spike.close();
      await redis.close();
    }
  });
});
