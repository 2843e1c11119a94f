// Redis Sentinel, the common way to keep one Redis available: a master, two replicas and three
// sentinels, real processes on free loopback ports. spike connects through the sentinels
// (REDIS_SENTINELS) and follows a failover by itself: the master is killed with SIGKILL under
// load, and every buyer's history is checked against what Redis holds afterwards.
import { afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test';
import Redis from 'ioredis';
import { saleKeys, SOLD_FIELD } from '../../src/redis/keys.ts';
import { freePort } from '../../src/services/free-port.ts';
import { startTestSentinels, type TestSentinels } from '../helpers/sentinel.ts';
import { adminCreateSale, servesSale, startTestSpike, type TestSpike } from '../helpers/spike.ts';

setDefaultTimeout(120_000);

const TOKEN = 'admin-token-for-sentinel-tests-01';
const SALE = 'sentinel';
let set: TestSentinels | undefined;
let spike: TestSpike | undefined;

/** The sentinels, and a node that reaches Redis through them, selling SALE. */
async function start(env: Record<string, string>): Promise<{ set: TestSentinels; spike: TestSpike }> {
  set = await startTestSentinels();
  const port = await freePort();
  spike = await startTestSpike('', {
    REDIS_URL: '',
    REDIS_SENTINELS: set.sentinels.join(','),
    SPIKE_ADMIN_PORT: String(port),
    SPIKE_ADMIN_TOKEN: TOKEN,
    SPIKE_TOTAL: '100',
    SPIKE_RESET: 'force',
    ...env,
  });
  expect((await adminCreateSale(`http://127.0.0.1:${port}`, TOKEN, { id: SALE, total: 100_000 })).status).toBe(201);
  await servesSale(spike, SALE);
  return { set, spike };
}

afterEach(async () => {
  await spike?.close();
  await set?.close();
  spike = set = undefined;
}, 30_000);

interface Buyer {
  readonly user: string;
  /** The order a buyer holds once told so (code 1, or code 2 on a retry after a 503). */
  orderId?: string;
  /** Every answer, with the times it was asked and answered. */
  readonly answers: { sent: number; at: number; status: number; code?: number }[];
}

/** One buyer: asks until told something final (a 503 or a dropped connection is asked again, as a person would). */
async function buy(node: TestSpike, user: string, worker: number, buyers: Buyer[]): Promise<Buyer> {
  const buyer: Buyer = { user, answers: [] };
  buyers.push(buyer);
  for (let attempt = 0; attempt < 200; attempt++) {
    const sent = Date.now();
    const res = await fetch(`${node.url(worker)}/buy/ticket?sale=${SALE}&user=${user}`).catch(() => null);
    const body = res ? ((await res.json().catch(() => ({}))) as { code?: number; orderId?: string }) : {};
    buyer.answers.push({ sent, at: Date.now(), status: res?.status ?? 0, code: body.code });
    if (body.code === 1 || body.code === 2) {
      buyer.orderId = body.orderId;
      return buyer;
    }
    if (res?.status === 200) return buyer;
    await Bun.sleep(100);
  }
  return buyer;
}

/** 16 buyers at a time until `done` says stop (at most 30 s). */
async function crowd(node: TestSpike, buyers: Buyer[], done: () => boolean): Promise<void> {
  let n = 0;
  const stopAt = Date.now() + 30_000;
  await Promise.all(
    Array.from({ length: 16 }, async (_, lane) => {
      while (Date.now() < stopAt && !done()) await buy(node, `s${n++}`, lane % 4, buyers);
    }),
  );
}

const holding = (buyers: readonly Buyer[]) => buyers.filter((b) => b.orderId).length;
/** Buyers who came after `t` and hold an order. */
const holdingSince = (buyers: readonly Buyer[], t: number) => holding(buyers.filter((b) => (b.answers[0]?.sent ?? 0) > t));

/** When the first purchase asked after `t` was sold, in ms after `t`. */
function soldAgainAfter(buyers: readonly Buyer[], t: number): number {
  const sold = buyers.flatMap((b) => b.answers).filter((a) => a.code === 1 && a.sent > t);
  return Math.min(...sold.map((a) => a.at)) - t;
}

/** Every order a buyer was told of is readable and on the master the sentinels name now; nothing sold twice. */
async function expectEveryOrderKept(s: { set: TestSentinels; spike: TestSpike }, buyers: readonly Buyer[]): Promise<void> {
  const holders = buyers.filter((b) => b.orderId);
  const acknowledged = holders.map((b) => b.orderId!);
  expect(new Set(acknowledged).size).toBe(acknowledged.length);
  // A read answered 503 (the node still checking the new master) is asked again, as a buyer would.
  const read = async (b: Buyer, i: number) => {
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200 && status !== 404; attempt++, await Bun.sleep(status ? 100 : 0))
      status = (await fetch(`${s.spike.url(i % 4)}/orders/${b.orderId}?sale=${SALE}&user=${b.user}`)).status;
    return status;
  };
  const reads = await Promise.all(holders.map(read));
  expect(reads.filter((status) => status !== 200)).toEqual([]);
  const redis = new Redis({
    sentinels: s.set.sentinels.map((x) => ({ host: '127.0.0.1', port: Number(x.split(':')[1]) })),
    name: s.set.master,
    maxRetriesPerRequest: 1,
  });
  try {
    const keys = saleKeys(SALE);
    expect(Number(await redis.hget(keys.sale, SOLD_FIELD))).toBe(acknowledged.length);
    expect(await redis.hlen(keys.buyers)).toBe(acknowledged.length);
  } finally {
    redis.disconnect();
  }
}

describe('Redis Sentinel', () => {
  test('with SPIKE_WAIT_REPLICAS=1, the master killed under load: sold again within 20 s, every order kept, sold = acknowledged', async () => {
    const s = await start({ SPIKE_WAIT_REPLICAS: '1', SPIKE_WAIT_MS: '500' });
    const buyers: Buyer[] = [];
    let killedAt = 0;
    const buying = crowd(s.spike, buyers, () => killedAt > 0 && holdingSince(buyers, killedAt) >= 200);
    while (holding(buyers) < 300) await Bun.sleep(20);
    const old = await s.set.masterPort();
    killedAt = Date.now();
    await s.set.kill(old);
    await buying;

    const answers = buyers.flatMap((b) => b.answers);
    // From `ready:` on, every sale is confirmed in time: the first purchases answered 503 while the
    // replicas were still syncing (5 of 40), now the start waits until they confirm a write.
    expect(answers.filter((a) => a.status !== 200 && a.sent < killedAt)).toEqual([]);
    expect(answers.some((a) => a.status === 503 && a.sent > killedAt)).toBe(true);
    const after = soldAgainAfter(buyers, killedAt);
    console.log(`sentinel, WAIT 1: sold again ${after} ms after the master was killed; ${holding(buyers)} orders`);
    expect(after).toBeLessThan(20_000);
    expect(await s.set.masterPort()).not.toBe(old);
    await expectEveryOrderKept(s, buyers);
  });

  test('without waiting for replicas, a promoted replica that lacks sales is restored from the database and the journal', async () => {
    const s = await start({ SPIKE_WAIT_REPLICAS: '0' });
    const buyers: Buyer[] = [];
    let phase: 'before' | 'replicas stopped' | 'failed over' = 'before';
    let killedAt = 0;
    const buying = crowd(s.spike, buyers, () => phase === 'failed over' && holdingSince(buyers, killedAt) >= 200);
    while (holding(buyers) < 200) await Bun.sleep(20);
    // The replicas are frozen and cut from the master's stream: what is sold now is on the master alone.
    const old = await s.set.masterPort();
    const replicas = s.set.dataPorts.filter((p) => p !== old);
    for (const port of replicas) s.set.signal(port, 'SIGSTOP');
    Bun.spawnSync(['redis-cli', '-p', String(old), 'client', 'kill', 'type', 'replica']);
    phase = 'replicas stopped';
    const before = holding(buyers);
    while (holding(buyers) < before + 200) await Bun.sleep(20);
    const soldOn = (port: number) =>
      Number(Bun.spawnSync(['redis-cli', '-p', String(port), 'hget', saleKeys(SALE).sale, SOLD_FIELD]).stdout);
    const soldOnMaster = soldOn(old);
    killedAt = Date.now();
    await s.set.kill(old);
    for (const port of replicas) s.set.signal(port, 'SIGCONT');
    phase = 'failed over';
    // The replicas (one of them the next master) lack what was sold while they were cut off.
    await Bun.sleep(200);
    expect(Math.max(...replicas.map(soldOn))).toBeLessThan(soldOnMaster - 100);
    await buying;

    const after = soldAgainAfter(buyers, killedAt);
    console.log(`sentinel, no WAIT: sold again ${after} ms after the master was killed; ${holding(buyers)} orders`);
    expect(after).toBeLessThan(20_000);
    expect(await s.set.masterPort()).not.toBe(old);
    await expectEveryOrderKept(s, buyers);
  });
});
