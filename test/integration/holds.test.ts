// Reservations per client, not only requests: without signed users one address at 10 requests/s
// held about 3 000 unpaid reservations through a 300 s pay window by inventing names, and one
// loopback client took 272 589 waiting-room places in 40 s. Each client (an IPv4 address, an
// IPv6 /64, as nginx names it) now holds at most SPIKE_ADDRESS_HOLDS (4) unpaid orders and
// places per sale. Seen here from test hosts (network namespaces, or loopback addresses of their
// own) through a real nginx with its request rate limits off, so only the holds limit answers.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import { startTestNet, type TestNet } from '../../bench/lib/netns.ts';
import { startTestNginx, startTestRedis, type TestRedis } from '../helpers/servers.ts';
import { servesQueue, servesSale, startTestSpike, type TestSpike } from '../helpers/spike.ts';
import { queueKeys, SALES_KEY } from '../../src/redis/keys.ts';
import { setQueue } from '../../src/redis/queue.ts';

setDefaultTimeout(60_000);

const CLIENT = join(import.meta.dir, '..', 'helpers', 'http-burst.ts');
let redis: TestRedis;
let spike: TestSpike;
let net: TestNet;
let nginx: Awaited<ReturnType<typeof startTestNginx>>;

interface Burst {
  statuses: Record<string, number>;
  limited?: { body: string; retryAfter?: string };
}

/** `count` requests from `host` to `url` (`{n}`: the request's number), one at a time. */
async function burst(host: string, url: string, count: number, method = 'GET'): Promise<Burst> {
  const from = net.kind === 'loopback' ? [net.hosts.get(host)!.ip] : [];
  const child = net.spawn(host, [process.execPath, CLIENT, url, String(count), '1', '0', ...from], { BURST_METHOD: method });
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (child.exitCode !== 0) throw new Error(`client on ${host} failed: ${err}`);
  return JSON.parse(out) as Burst;
}

async function addSale(id: string, total: number, queued: boolean): Promise<void> {
  await redis.client.hset(id, 'ticket_total_nums', total, 'ticket_sold_nums', 0);
  if (queued) await setQueue(redis.client, queueKeys(id), { admissionMs: 60_000, admitPerSecond: 100 });
  await redis.client.sadd(SALES_KEY, id);
  await spike.sync.kick();
  await servesSale(spike, id);
  if (queued) await servesQueue(spike, id);
}

beforeAll(async () => {
  redis = await startTestRedis();
  spike = await startTestSpike(redis.url, { SPIKE_PAY_WINDOW: '300' });
  net = startTestNet(['hoarder', 'neighbour']);
  // Request limits off: what stops the hoarder here must be the holds, not the rate.
  const exempt = net.kind === 'loopback' ? ['127.0.0.1'] : [];
  nginx = await startTestNginx(spike.ports, { host: net.gateway, limits: { rate: 0, burst: 0, conn: 0, exempt, ipv6Prefix: 64 } });
});
afterAll(async () => {
  await nginx?.close();
  net?.close();
  await spike?.close();
  await redis?.close();
});

describe('holds per client', () => {
  test('a host inventing names gets 4 seats and 429 too_many_holds after; another host buys normally', async () => {
    await addSale('hoard', 50, false);
    const hoarder = await burst('hoarder', `${nginx.url}/buy/ticket?sale=hoard&user=invented{n}`, 20);
    expect(hoarder.statuses).toEqual({ '200': 4, '429': 16 });
    expect(JSON.parse(hoarder.limited!.body)).toMatchObject({ error: 'too_many_holds' });
    expect(Number(hoarder.limited!.retryAfter)).toBe(300);
    // Anonymous buyers are counted the same way: no name at all does not open the limit.
    expect((await burst('hoarder', `${nginx.url}/buy/ticket?sale=hoard`, 3)).statuses).toEqual({ '429': 3 });
    const neighbour = await burst('neighbour', `${nginx.url}/buy/ticket?sale=hoard&user=neighbour{n}`, 3);
    expect(neighbour.statuses).toEqual({ '200': 3 });
    expect(await redis.client.hget('hoard', 'ticket_sold_nums')).toBe('7');
    // A request from loopback that nginx did not name (ab and the bench at a worker) is not counted.
    const local = await Promise.all(
      Array.from({ length: 10 }, (_, i) => fetch(`${spike.url(i % 4)}/buy/ticket?sale=hoard&user=local${i}`).then((r) => r.status)),
    );
    expect(local).toEqual(Array(10).fill(200));
  });

  test('a host takes 4 places in a waiting room with invented names; another host still joins', async () => {
    await addSale('lined', 50, true);
    const hoarder = await burst('hoarder', `${nginx.url}/queue/join?sale=lined&user=invented{n}`, 10, 'POST');
    expect(hoarder.statuses).toEqual({ '200': 4, '429': 6 });
    expect(JSON.parse(hoarder.limited!.body)).toMatchObject({ error: 'too_many_holds' });
    // The same names again keep their places: joining twice takes nothing more.
    expect((await burst('hoarder', `${nginx.url}/queue/join?sale=lined&user=invented{n}`, 4, 'POST')).statuses).toEqual({ '200': 4 });
    const neighbour = await burst('neighbour', `${nginx.url}/queue/join?sale=lined&user=neighbour{n}`, 2, 'POST');
    expect(neighbour.statuses).toEqual({ '200': 2 });
    expect(await redis.client.hlen(queueKeys('lined').places)).toBe(6);
  });
});
