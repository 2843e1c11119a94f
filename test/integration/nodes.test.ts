// Several nodes on one Redis: each has its own local stock and buffer, the global count is
// shared, and a node that stops leaves its share to the others. Their order writers share one
// PostgreSQL, so the audit sees every order exactly once.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import { postgresOrderDb } from '../../src/orders/db.ts';
import { DEFAULT_SALE, SOLD_FIELD, saleKeys } from '../../src/redis/keys.ts';
import { freePort } from '../../src/services/free-port.ts';
import { expectCleanAudit } from '../helpers/audit.ts';
import { fire } from '../helpers/load.ts';
import { startTestPostgres, startTestRedis, tempDir, type TestPostgres, type TestRedis } from '../helpers/servers.ts';
import { startTestSpike } from '../helpers/spike.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

let redis: TestRedis;
let postgres: TestPostgres;
const sale = saleKeys(DEFAULT_SALE);

beforeAll(async () => {
  redis = await startTestRedis();
  postgres = await startTestPostgres();
}, 60_000);
afterAll(async () => {
  await redis.close();
  await postgres.close();
});

const sold = async () => Number(await redis.client.hget(sale.sale, SOLD_FIELD));

describe('several nodes on one Redis', () => {
  test('sell exactly the total together, and a node that stops mid-sale leaves its share to the other', async () => {
    const env = { SPIKE_TOTAL: '2000', DATABASE_URL: postgres.url };
    const a = await startTestSpike(redis.url, { ...env, SPIKE_RESET: 'force', SPIKE_NODE_ID: 'node-a' });
    const b = await startTestSpike(redis.url, { ...env, SPIKE_NODE_ID: 'node-b' });
    let user = 0;
    const wave = (node: typeof a, n: number) =>
      fire(
        Array.from({ length: n }, (_, i) => `${node.url(i % 4)}/buy/ticket?user=m${user++}`),
        50,
      );
    try {
      await Promise.all([wave(a, 1000), wave(b, 500)]);
      expect(await sold()).toBe(1500);
      const aSales = a.stock.snapshot().workers.reduce((n, w) => n + w.sales, 0);
      await a.close();
      // Node b alone: its own stock (2 400 units) is more than enough; its sync keeps it honest.
      let answers = 0;
      while ((await sold()) < 2000 && answers < 10_000) answers += (await wave(b, 500)).length;
      expect(await sold()).toBe(2000);
      const bSales = b.stock.snapshot().workers.reduce((n, w) => n + w.sales, 0);
      expect(aSales + bSales).toBe(2000);

      expect((await expectCleanAudit(redis.client, sale, postgresOrderDb(postgres.url))).dbOrders).toBe(2000);
    } finally {
      await b.close();
      await a.close();
    }
  });

  test('bun run nginx-conf renders a config for many nodes that nginx accepts', async () => {
    const dir = tempDir('nginx-conf');
    const out = join(dir, 'nginx.conf');
    const render = Bun.spawnSync(
      [
        process.execPath,
        join(import.meta.dir, '..', '..', 'src', 'cli', 'nginx-conf.ts'),
        '--upstream',
        '127.0.0.1:4001:1,127.0.0.2:4001:3,localhost:4002',
        '--listen',
        `127.0.0.1:${await freePort()}`,
        '--runtime-dir',
        dir,
        '--out',
        out,
      ],
      { stderr: 'pipe' },
    );
    expect(render.stderr.toString()).toBe('');
    expect(render.exitCode).toBe(0);
    const conf = await Bun.file(out).text();
    expect(conf).toContain('server 127.0.0.2:4001 weight=3 max_fails=2 fail_timeout=1s;');
    expect(conf).toContain('server localhost:4002 weight=1 max_fails=2 fail_timeout=1s;');
    // The file says what it is and how to run it, and keeps its pid file and log in the runtime folder.
    expect(conf).toStartWith(
      '# spike: nginx in front of 3 workers, weighted round-robin:\n#   127.0.0.1:4001 weight=1, 127.0.0.2:4001 weight=3, localhost:4002 weight=1\n',
    );
    expect(conf).toContain(`#   nginx -p ${dir} -c <this file>`);
    expect(conf).toContain(`pid ${dir}/nginx.pid;`);
    expect(conf).not.toContain('3001..3004');
    // Exactly the command the header gives (nothing written outside the runtime folder).
    const check = Bun.spawnSync(['nginx', '-t', '-p', dir, '-c', out], { stderr: 'pipe' });
    expect(check.stderr.toString()).toContain('test is successful');
    const bad = Bun.spawnSync(
      [process.execPath, join(import.meta.dir, '..', '..', 'src', 'cli', 'nginx-conf.ts'), '--upstream', '127.0.0.1'],
      { stderr: 'pipe' },
    );
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain('is not host:port[:weight]');
  });
});
