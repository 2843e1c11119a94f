// nginx's per-address limits, seen from several client addresses (test hosts in network
// namespaces, or loopback addresses of their own where namespaces are not permitted): a greedy
// address is answered 429 in JSON with Retry-After while a well-behaved one, at the same time, is
// not throttled at all; loopback, where ab and the bench run, is exempt by default.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import { fire } from '../helpers/load.ts';
import { startTestNet, type TestNet } from '../../bench/lib/netns.ts';
import { startTestNginx, startTestRedis, type TestRedis } from '../helpers/servers.ts';
import { servesQueue, startTestSpike, type TestSpike } from '../helpers/spike.ts';
import { queueKeys, SALES_KEY } from '../../src/redis/keys.ts';
import { setQueue } from '../../src/redis/queue.ts';

setDefaultTimeout(60_000);

const CLIENT = join(import.meta.dir, '..', 'helpers', 'http-burst.ts');
let redis: TestRedis;
let spike: TestSpike;
let net: TestNet;

interface Burst {
  statuses: Record<string, number>;
  limited?: { body: string; retryAfter?: string };
  seconds: number;
}

/** Runs the burst client on `host`: `count` requests to `url`, `lanes` at once, `gapMs` apart in each lane (from `sources` in turn, when given). */
async function burst(host: string, url: string, count: number, lanes: number, gapMs: number, sources?: string[]): Promise<Burst> {
  // On loopback the client binds its host's own address, so nginx sees one address per host.
  const from = sources ? [sources.join(',')] : net.kind === 'loopback' ? [net.hosts.get(host)!.ip] : [];
  const child = net.spawn(host, [process.execPath, CLIENT, url, String(count), String(lanes), String(gapMs), ...from]);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (child.exitCode !== 0) throw new Error(`client on ${host} failed: ${err}`);
  return JSON.parse(out) as Burst;
}

beforeAll(async () => {
  redis = await startTestRedis();
  // Holds per client off: these tests are about request limits (holds.test.ts has the holds).
  spike = await startTestSpike(redis.url, { SPIKE_TOTAL: '100000', SPIKE_RESET: 'force', SPIKE_ADDRESS_HOLDS: '0' });
  net = startTestNet(['greedy', 'polite', 'rotating']);
});
afterAll(async () => {
  net?.close();
  await spike?.close();
  await redis?.close();
});

describe('per-address limits at the edge', () => {
  test('a greedy address gets 429 JSON with Retry-After while a polite one and loopback are not throttled', async () => {
    // On loopback every host is in 127.0.0.0/8: exempt only 127.0.0.1 there, so the hosts are limited.
    const exempt = net.kind === 'loopback' ? ['127.0.0.1'] : ['127.0.0.0/8', '::1'];
    const nginx = await startTestNginx(spike.ports, { host: net.gateway, limits: { rate: 5, burst: 5, conn: 50, exempt, ipv6Prefix: 64 } });
    try {
      const url = `${nginx.url}/buy/ticket`;
      const [greedy, polite] = await Promise.all([burst('greedy', url, 300, 10, 0), burst('polite', url, 8, 1, 250)]);
      expect(polite.statuses).toEqual({ '200': 8 });
      // 5/s with a burst of 5: a few dozen get through in the seconds the 300 take, the rest are refused.
      expect(greedy.statuses['429']).toBeGreaterThanOrEqual(200);
      expect(greedy.statuses['200']).toBeGreaterThanOrEqual(5);
      expect((greedy.statuses['200'] ?? 0) + (greedy.statuses['429'] ?? 0)).toBe(300);
      expect(JSON.parse(greedy.limited!.body)).toMatchObject({ error: 'rate_limited' });
      expect(greedy.limited!.retryAfter).toBe('1');
      // ab and the bench run from 127.0.0.1: never limited.
      if (net.gateway === '127.0.0.1') {
        const local = await fire(
          Array.from({ length: 300 }, () => url),
          20,
        );
        expect(local.filter((a) => a.status !== 200)).toEqual([]);
      }
    } finally {
      await nginx.close();
    }
  });

  test('loopback is exempt with the default limits: the original ab run (-c 100) is never throttled', async () => {
    const nginx = await startTestNginx(spike.ports, {
      limits: { rate: 10, burst: 20, conn: 50, exempt: ['127.0.0.0/8', '::1'], ipv6Prefix: 64 },
    });
    try {
      const answers = await fire(
        Array.from({ length: 1000 }, () => `${nginx.url}/buy/ticket`),
        100,
      );
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    } finally {
      await nginx.close();
    }
  });
});

describe('IPv6 clients', () => {
  // Every home IPv6 connection has a whole /64: keyed by address, 60 addresses of one /64 passed
  // 300 of 300 purchases (each address stayed within the burst).
  test('300 purchases from 60 addresses of one /64 are limited as one client: at most rate and burst pass', async () => {
    const { gateway, addresses } = net.addIpv6('rotating', 60);
    const nginx = await startTestNginx(spike.ports, {
      host: `[${gateway}]`,
      limits: { rate: 5, burst: 5, conn: 50, exempt: [], ipv6Prefix: 64 },
    });
    try {
      const result = await burst('rotating', `${nginx.url}/buy/ticket`, 300, 10, 0, addresses);
      const passed = result.statuses['200'] ?? 0;
      console.log(`edge: ${passed} of 300 passed from 60 addresses of one /64 in ${result.seconds.toFixed(2)} s`);
      expect(passed + (result.statuses['429'] ?? 0)).toBe(300);
      expect(passed).toBeLessThanOrEqual(Math.ceil(5 * result.seconds) + 5 + 1);
    } finally {
      await nginx.close();
    }
  });
});

describe('the per-user cap and the waiting room', () => {
  // Attempts were counted before the admission check: ~4 requests a second carrying an admitted
  // buyer's name, without their ticket, kept that buyer at 429 until their admission ran out.
  test("a flood of an admitted buyer's name without their ticket leaves that buyer able to buy", async () => {
    await redis.client.hset('capped', 'ticket_total_nums', 10, 'ticket_sold_nums', 0);
    await setQueue(redis.client, queueKeys('capped'), { admissionMs: 60_000, admitPerSecond: 100 });
    await redis.client.sadd(SALES_KEY, 'capped');
    await spike.sync.kick();
    await servesQueue(spike, 'capped');
    const joined = (await (await fetch(`${spike.url(0)}/queue/join?sale=capped&user=vera`, { method: 'POST' })).json()) as {
      ticket: string;
    };
    await spike.admission.tick();
    const stranger = await fire(
      Array.from({ length: 100 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?sale=capped&user=vera`),
      10,
    );
    expect(stranger.every((a) => a.status === 403 && a.body.error === 'not_admitted')).toBe(true);
    const bought = await fetch(`${spike.url(1)}/buy/ticket?sale=capped&user=vera`, { headers: { 'x-queue-ticket': joined.ticket } });
    expect(await bought.json()).toMatchObject({ code: 1 });
  });
});
