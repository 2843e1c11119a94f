// Redis Cluster: every key of a sale carries one hash tag, so each sale's scripts run on one
// shard and different sales spread over the shards. A master killed mid-sale is replaced by its
// replica, and the sale goes on without overselling.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { Cluster } from 'ioredis';
import { auditWhenWritten } from '../../src/orders/audit.ts';
import { sqliteOrderDb } from '../../src/orders/db.ts';
import { ordersPresent } from '../../src/orders/store.ts';
import { DEFAULT_SALE, saleKeys, SOLD_FIELD } from '../../src/redis/keys.ts';
import { freePort } from '../../src/services/free-port.ts';
import { countBy, fire } from '../helpers/load.ts';
import { startTestCluster, type TestCluster } from '../helpers/servers.ts';
import { adminCreateSale, servesSale, startTestSpike, type TestSpike } from '../helpers/spike.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

const TOKEN = 'admin-token-for-cluster-tests-0123';
let cluster: TestCluster;
let client: Cluster;
let spike: TestSpike;
let admin: string;
let user = 0;

beforeAll(async () => {
  cluster = await startTestCluster();
  client = new Cluster(cluster.nodes.slice(0, 3).map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })));
  client.on('error', () => {});
  const port = await freePort();
  spike = await startTestSpike('', {
    REDIS_CLUSTER: cluster.nodes.join(','),
    SPIKE_TOTAL: '600',
    SPIKE_RESET: 'force',
    SPIKE_ADMIN_PORT: String(port),
    SPIKE_ADMIN_TOKEN: TOKEN,
  });
  admin = `http://127.0.0.1:${port}`;
}, 60_000);
afterAll(async () => {
  await spike.close();
  client.disconnect();
  await cluster.close();
}, 30_000);

/** The master serving `key`'s slot. */
async function masterOf(key: string): Promise<string> {
  const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
  const slots = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  const [, , [host, port]] = slots.find(([from, to]) => slot >= from && slot <= to)!;
  return `${host}:${port}`;
}

const served = (sale: string) => servesSale(spike, sale);

const buy = (sale: string, n: number) =>
  fire(
    Array.from({ length: n }, (_, i) => `${spike.url(i % 4)}/buy/ticket?sale=${sale}&user=c${user++}`),
    40,
  );

describe('on a Redis Cluster', () => {
  test('sales on different shards each sell exactly their total, and the database agrees', async () => {
    // Pick sale ids whose hash tags land on the two masters the default sale does not use.
    const defaultMaster = await masterOf(DEFAULT_SALE);
    const chosen: string[] = [];
    const masters = new Set([defaultMaster]);
    for (let i = 0; chosen.length < 2 && i < 200; i++) {
      const master = await masterOf(`show${i}`);
      if (!masters.has(master)) {
        masters.add(master);
        chosen.push(`show${i}`);
      }
    }
    expect(masters.size).toBe(3);
    for (const id of chosen) {
      const res = await fetch(`${admin}/sales`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ id, total: 400 }),
      });
      expect(res.status).toBe(201);
    }
    for (const id of chosen) await served(id);
    const [a, b, c] = await Promise.all([buy(DEFAULT_SALE, 800), buy(chosen[0]!, 600), buy(chosen[1]!, 600)]);
    expect(countBy(a, (x) => Number(x.body.code)).get(1)).toBe(600);
    expect(countBy(b, (x) => Number(x.body.code)).get(1)).toBe(400);
    expect(countBy(c, (x) => Number(x.body.code)).get(1)).toBe(400);

    const db = sqliteOrderDb(spike.dbPath);
    try {
      for (const [id, total] of [
        [DEFAULT_SALE, 600],
        [chosen[0]!, 400],
        [chosen[1]!, 400],
      ] as const) {
        const keys = saleKeys(id);
        const report = await auditWhenWritten(client, keys, db);
        expect(report.differences).toEqual([]);
        expect(report.sold).toBe(total);
      }
    } finally {
      await db.close();
    }
  });

  test('a sale with a waiting room sells exactly its total: 300 users join, wait their turn and buy', async () => {
    const res = await adminCreateSale(admin, TOKEN, { id: 'queued', total: 120, queue: { admissionSeconds: 30, admitPerSecond: 5000 } });
    expect(res.status).toBe(201);
    await served('queued');
    const users = Array.from({ length: 300 }, (_, i) => `q${i}`);
    const joined = await fire(
      users.map((u, i) => `${spike.url(i % 4)}/queue/join?sale=queued&user=${u}`),
      40,
      { method: 'POST' },
    );
    expect(joined.filter((a) => a.status !== 200)).toEqual([]);
    expect(new Set(joined.map((a) => a.body.position)).size).toBe(300);
    const ticket = new Map(users.map((u, i) => [u, String(joined[i]!.body.ticket)]));
    const done = new Map<string, string>();
    const deadline = Date.now() + 30_000;
    while (done.size < users.length && Date.now() < deadline) {
      await spike.admission.tick();
      for (const [i, u] of users.entries()) {
        if (done.has(u)) continue;
        const poll = await fetch(`${spike.url(i % 4)}/queue/status?sale=queued`, { headers: { 'x-queue-ticket': ticket.get(u)! } });
        const status = (await poll.json()) as { state: string };
        if (status.state === 'soldout') done.set(u, 'soldout');
        if (status.state !== 'admitted') continue;
        const bought = await fetch(`${spike.url(i % 4)}/buy/ticket?sale=queued&user=${u}`, {
          headers: { 'x-queue-ticket': ticket.get(u)! },
        });
        const answer = (await bought.json()) as { code: number; orderId: string };
        done.set(u, `code ${answer.code}`);
        if (answer.code === 1) await fetch(`${spike.url(i % 4)}/orders/${answer.orderId}/pay?sale=queued&user=${u}`, { method: 'POST' });
      }
    }
    const fates = countBy([...done.values()], (f) => f);
    expect(fates.get('code 1')).toBe(120);
    expect(done.size).toBe(300);
    expect(Number(await client.hget('queued', SOLD_FIELD))).toBe(120);
  });

  test('a master killed mid-sale: its replica takes over, nothing is oversold, and the sale completes', async () => {
    const res = await fetch(`${admin}/sales`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ id: 'failover', total: 1000 }),
    });
    expect(res.status).toBe(201);
    const keys = saleKeys('failover');
    const master = await masterOf(keys.sale);
    await served('failover');
    const first = await buy('failover', 400);
    expect(countBy(first, (x) => Number(x.body.code)).get(1)).toBe(400);
    await cluster.kill(master);
    // Until the replica is promoted (cluster-node-timeout 1 s), purchases of this sale get 503.
    let soldAfter = 0;
    const deadline = Date.now() + 60_000;
    while (soldAfter === 0 && Date.now() < deadline) {
      await Bun.sleep(200);
      soldAfter = countBy(await buy('failover', 20), (x) => Number(x.body.code)).get(1) ?? 0;
    }
    if (soldAfter === 0) {
      // Say what the cluster looked like, so a failure here can be explained.
      const alive = cluster.nodes.find((n) => n !== master)!;
      const nodes = Bun.spawnSync(['redis-cli', '-p', alive.split(':')[1]!, 'cluster', 'nodes']).stdout.toString();
      throw new Error(`no sale within 60 s of killing ${master}; cluster nodes seen from ${alive}:\n${nodes}`);
    }
    expect(soldAfter).toBeGreaterThan(0);
    while (Date.now() < deadline && Number(await client.hget(keys.sale, SOLD_FIELD)) < 1000) await buy('failover', 400);
    expect(Number(await client.hget(keys.sale, SOLD_FIELD))).toBe(1000);
    expect(await client.hlen(keys.buyers)).toBe(1000);
    expect(await masterOf(keys.sale)).not.toBe(master);
  });

  test('with SPIKE_WAIT_REPLICAS=1 no sale a buyer was told of is lost when its master is killed', async () => {
    const port = await freePort();
    const durable = await startTestSpike('', {
      REDIS_CLUSTER: cluster.nodes.join(','),
      SPIKE_WAIT_REPLICAS: '1',
      SPIKE_WAIT_MS: '500',
      SPIKE_ADMIN_PORT: String(port),
      SPIKE_ADMIN_TOKEN: TOKEN,
      SPIKE_WRITER: '0',
    });
    try {
      // A sale on a master that still has a replica (the previous test left one without).
      let id = '';
      for (let i = 0; !id && i < 200; i++) {
        const master = await masterOf(`safe${i}`);
        const info = Bun.spawnSync(['redis-cli', '-p', master.split(':')[1]!, 'info', 'replication']).stdout.toString();
        if (/connected_slaves:[1-9]/.test(info)) id = `safe${i}`;
      }
      expect(id).not.toBe('');
      expect(
        (
          await fetch(`http://127.0.0.1:${port}/sales`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TOKEN}` },
            body: JSON.stringify({ id, total: 100_000 }),
          })
        ).status,
      ).toBe(201);
      const master = await masterOf(id);
      await servesSale(durable, id);

      const acknowledged: string[] = [];
      const statuses = new Map<number, number>();
      let n = 0;
      const stopAt = Date.now() + 4000;
      const buying = Promise.all(
        Array.from({ length: 16 }, async () => {
          while (Date.now() < stopAt) {
            const i = n++;
            const res = await fetch(`${durable.url(i % 4)}/buy/ticket?sale=${id}&user=w${i}`).catch(() => null);
            const body = res ? ((await res.json()) as { code?: number; orderId?: string }) : {};
            statuses.set(res?.status ?? 0, (statuses.get(res?.status ?? 0) ?? 0) + 1);
            if (body.code === 1 && body.orderId) acknowledged.push(body.orderId);
          }
        }),
      );
      await Bun.sleep(1000);
      await cluster.kill(master);
      await buying;
      expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
      // After the failover every acknowledged order is on the promoted replica.
      const keys = saleKeys(id);
      const deadline = Date.now() + 20_000;
      let present = new Set<string>();
      while (Date.now() < deadline) {
        try {
          present = await ordersPresent(client, keys, acknowledged);
          break;
        } catch {
          await Bun.sleep(200);
        }
      }
      expect(acknowledged.length).toBeGreaterThan(50);
      expect(acknowledged.filter((id) => !present.has(id))).toEqual([]);
    } finally {
      await durable.close();
    }
  });
});
