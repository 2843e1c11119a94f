// The waiting room with a real Redis and real workers: fair order (a random draw for the
// pre-queue, first in first out after the opening), admissions that follow the stock and expire,
// tickets checked in the worker, sold out told without Redis, and a restart that changes nothing.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { issueTicket } from '../../src/queue/ticket.ts';
import { queueKeys, SOLD_FIELD } from '../../src/redis/keys.ts';
import { freePort } from '../../src/services/free-port.ts';
import { fire } from '../helpers/load.ts';
import { startTestRedis, tempDir, type TestRedis } from '../helpers/servers.ts';
import { adminCreateSale, servesQueue, startTestSpike, type TestSpike } from '../helpers/spike.ts';

setDefaultTimeout(120_000);

const TOKEN = 'admin-token-for-the-waiting-room-0123';
const SECRET = 'queue-secret-for-the-waiting-room-tests';

interface Status {
  state: 'waiting' | 'admitted' | 'soldout' | 'closed';
  ticket: string | null;
  position: number;
  ahead: number;
  etaSeconds: number;
  pollAfterMs: number;
  lapsed?: boolean;
  msg?: string;
  admissionEndsAt?: string;
}

let redis: TestRedis;
let spike: TestSpike;
let admin: string;

async function startSpike(env: Record<string, string> = {}): Promise<TestSpike> {
  const port = await freePort();
  const started = await startTestSpike(redis.url, {
    SPIKE_ADMIN_PORT: String(port),
    SPIKE_ADMIN_TOKEN: TOKEN,
    SPIKE_QUEUE_SECRET: SECRET,
    SPIKE_USER_ATTEMPTS: '0',
    ...env,
  });
  admin = `http://127.0.0.1:${port}`;
  return started;
}

/** A queued sale, created through the admin API, served by every worker. */
async function createSale(id: string, total: number, queue: Record<string, number>, startsAt?: Date): Promise<void> {
  const res = await adminCreateSale(admin, TOKEN, { id, total, queue, startsAt: startsAt?.toISOString() });
  expect(res.status).toBe(201);
  await servesQueue(spike, id);
}

async function adminPost(path: string): Promise<void> {
  const res = await fetch(`${admin}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  await spike.sync.kick();
}

async function join(sale: string, user: string, worker = 0): Promise<Status> {
  const res = await fetch(`${spike.url(worker)}/queue/join?sale=${sale}&user=${user}`, { method: 'POST' });
  expect(res.status).toBe(200);
  return (await res.json()) as Status;
}

async function poll(sale: string, ticket: string, worker = 0): Promise<Status> {
  const res = await fetch(`${spike.url(worker)}/queue/status?sale=${sale}`, { headers: { 'x-queue-ticket': ticket } });
  expect(res.status).toBe(200);
  return (await res.json()) as Status;
}

async function buy(sale: string, user: string, ticket: string | null, worker = 0) {
  const headers: Record<string, string> = ticket ? { 'x-queue-ticket': ticket } : {};
  const res = await fetch(`${spike.url(worker)}/buy/ticket?sale=${sale}&user=${user}`, { headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function pay(sale: string, user: string, orderId: string, worker = 0): Promise<void> {
  const res = await fetch(`${spike.url(worker)}/orders/${orderId}/pay?sale=${sale}&user=${user}`, { method: 'POST' });
  expect(res.status).toBe(200);
}

/**
 * One admission round that can step: admissions are at least one sync period apart (a
 * background round may have just stepped), so wait that long first.
 */
async function admitRound(): Promise<void> {
  await Bun.sleep(150);
  await spike.admission.tick();
}

/** Runs `work` on every item, `lanes` at a time. */
async function inLanes<T>(items: readonly T[], lanes: number, work: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
}

/** Spearman's rank correlation of two rankings of the same items (no ties). */
function spearman(a: readonly number[], b: readonly number[]): number {
  const rank = (xs: readonly number[]) => {
    const order = xs.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
    const ranks = new Array<number>(xs.length);
    order.forEach(([, i], r) => {
      ranks[i] = r;
    });
    return ranks;
  };
  const ra = rank(a);
  const rb = rank(b);
  const n = a.length;
  const d2 = ra.reduce((sum, r, i) => sum + (r - rb[i]!) ** 2, 0);
  return 1 - (6 * d2) / (n * (n * n - 1));
}

beforeAll(async () => {
  redis = await startTestRedis();
  spike = await startSpike();
});
afterAll(async () => {
  await spike?.close();
  await redis?.close();
});

describe('the waiting room', () => {
  test('5 000 users for 500 tickets: exactly 500 sold, each to an admitted user; the pre-queue drawn at random ahead of everyone after the opening, who go first in first out', async () => {
    const startsAt = new Date(Date.now() + 6000);
    await createSale('fair', 500, { admissionSeconds: 3, admitPerSecond: 5000 }, startsAt);
    // Joins one at a time, so the join order is known exactly.
    const tickets = new Map<string, Status>();
    const pre = Array.from({ length: 1000 }, (_, i) => `pre${i}`);
    for (const [i, user] of pre.entries()) tickets.set(user, await join('fair', user, i % 4));
    expect(Date.now()).toBeLessThan(startsAt.getTime());
    expect([...tickets.values()].every((t) => t.state === 'waiting' && t.position === 0)).toBe(true);
    while (Date.now() < startsAt.getTime() + 50) await Bun.sleep(20);
    const post = Array.from({ length: 4000 }, (_, i) => `post${i}`);
    for (const [i, user] of post.entries()) tickets.set(user, await join('fair', user, i % 4));
    expect(post.map((u) => tickets.get(u)!.position)).toEqual(post.map((_, i) => 1001 + i));

    // Every user polls until their fate is known; 4 in 5 of the pre-queue walk away when admitted.
    const leaves = (user: string) => user.startsWith('pre') && Number(user.slice(3)) % 5 !== 0;
    const admittedAt = new Map<string, string>();
    const position = new Map<string, number>();
    const fate = new Map<string, string>();
    const bought: string[] = [];
    while (fate.size < tickets.size) {
      const open = [...tickets.keys()].filter((u) => !fate.has(u));
      await inLanes(open, 100, async (user, i) => {
        const status = await poll('fair', tickets.get(user)!.ticket!, i % 4);
        tickets.set(user, { ...status, ticket: status.ticket ?? tickets.get(user)!.ticket });
        if (status.position > 0) position.set(user, status.position);
        if (status.state === 'soldout' || status.state === 'closed') fate.set(user, status.state);
        if (status.state !== 'admitted') return;
        admittedAt.set(user, status.admissionEndsAt!);
        if (leaves(user)) return void fate.set(user, 'left');
        const answer = await buy('fair', user, status.ticket, i % 4);
        // Admitted when polled, but the admission may end before the purchase arrives.
        if (answer.status === 403) return void expect(answer.body.status).toMatchObject({ state: 'closed' });
        expect(answer.status).toBe(200);
        fate.set(user, `code ${answer.body.code}`);
        if (answer.body.code === 1) {
          bought.push(user);
          await pay('fair', user, String(answer.body.orderId), i % 4);
        }
      });
      await Bun.sleep(100);
    }
    expect(Number(await redis.client.hget('fair', SOLD_FIELD))).toBe(500);
    expect(bought).toHaveLength(500);
    expect(bought.every((user) => admittedAt.has(user))).toBe(true);
    expect(await redis.client.hlen('{fair}:buyers')).toBe(500);
    // Post-opening joiners: admitted in join order (positions rise with it, admission times never fall).
    const admittedPost = post.filter((u) => admittedAt.has(u));
    expect(admittedPost.length).toBeGreaterThan(100);
    for (let i = 1; i < admittedPost.length; i++)
      expect(admittedAt.get(admittedPost[i]!)! >= admittedAt.get(admittedPost[i - 1]!)!).toBe(true);
    // Pre-queue: drawn at random (no link to join order), and all ahead of every post-opening joiner.
    const drawn = pre.map((u) => position.get(u)!);
    expect(new Set(drawn).size).toBe(1000);
    expect(Math.max(...drawn)).toBe(1000);
    expect(
      Math.abs(
        spearman(
          pre.map((_, i) => i),
          drawn,
        ),
      ),
    ).toBeLessThan(0.2);
    expect(fate.size).toBe(5000);
  });

  test('forged, expired, someone else’s, another sale’s and not-yet-admitted tickets get 403, and nothing is sold', async () => {
    await createSale('strict', 2, { admissionSeconds: 2, admitPerSecond: 5000 });
    await createSale('other', 2, { admissionSeconds: 60, admitPerSecond: 5000 });
    const alice = await join('strict', 'alice');
    const bob = await join('strict', 'bob');
    const late = await join('strict', 'zed');
    await join('strict', 'c1');
    await join('strict', 'c2');
    const c3 = await join('strict', 'c3');
    const carol = await join('other', 'carol');
    await admitRound();
    expect((await poll('strict', alice.ticket!)).state).toBe('admitted');
    const forged = `${alice.ticket!.split('.')[0]}.${'A'.repeat(22)}`;
    const otherKey = issueTicket('a-different-secret-0123456789', { sale: 'strict', user: 'alice', position: 1 });
    const cases: [string, string, string | null][] = [
      ['no ticket', 'alice', null],
      ['forged', 'alice', forged],
      ['signed with another secret', 'alice', otherKey],
      ["someone else's", 'bob', alice.ticket],
      ["another sale's", 'carol', carol.ticket],
      ['not yet admitted', 'c3', c3.ticket],
      ['a place of its own making', 'c3', issueTicket('not-the-queue-secret-at-all', { sale: 'strict', user: 'c3', position: 1 })],
    ];
    for (const [what, user, ticket] of cases) {
      const answer = await buy('strict', user, ticket);
      expect({ what, status: answer.status, error: answer.body.error }).toEqual({ what, status: 403, error: 'not_admitted' });
    }
    expect((await buy('strict', 'c3', c3.ticket)).body.status).toMatchObject({ state: 'waiting', position: 6, ahead: 2 });
    // Expired: bob was admitted, waits out his two seconds, and is refused.
    expect((await poll('strict', bob.ticket!)).state).toBe('admitted');
    await Bun.sleep(2300);
    const expired = await buy('strict', 'bob', bob.ticket);
    expect(expired.status).toBe(403);
    expect(expired.body.status).toMatchObject({ state: 'closed', lapsed: true });
    expect(late.position).toBe(3);
    expect(await redis.client.hget('strict', SOLD_FIELD)).toBe('0');
    expect(await redis.client.hget('other', SOLD_FIELD)).toBe('0');
    // A status poll with a bad ticket is refused too; without one it says what to send.
    const bad = await fetch(`${spike.url(0)}/queue/status?sale=strict`, { headers: { 'x-queue-ticket': forged } });
    expect(bad.status).toBe(403);
    expect(((await bad.json()) as { error: string }).error).toBe('bad_ticket');
    const anonymous = await fetch(`${spike.url(0)}/queue/join?sale=strict`, { method: 'POST' });
    expect(anonymous.status).toBe(400);
    expect(((await anonymous.json()) as { error: string }).error).toBe('user_required');
  });

  test('300 admitted users who never buy: after their admission ends the next 300 are admitted, and the sale ends with exactly its total sold', async () => {
    await createSale('idle', 250, { admissionSeconds: 2, admitPerSecond: 5000 });
    // Paused while they join, so the first 300 are admitted in one step (not as they trickle in,
    // which would end their admissions at different times).
    await adminPost('/sales/idle/pause');
    const users = Array.from({ length: 800 }, (_, i) => `idle${i}`);
    const tickets = new Map<string, string>();
    for (const user of users) tickets.set(user, (await join('idle', user)).ticket!);
    await adminPost('/sales/idle/resume');
    await admitRound();
    const first = await Promise.all(users.map((u) => poll('idle', tickets.get(u)!)));
    expect(first.filter((s) => s.state === 'admitted').map((s) => s.position)).toEqual(users.slice(0, 300).map((_, i) => i + 1));
    // Nobody buys; once the 300 admissions end, the next 300 come in.
    await Bun.sleep(2200);
    await admitRound();
    const second = await Promise.all(users.map((u) => poll('idle', tickets.get(u)!)));
    const admitted = users.filter((_, i) => second[i]!.state === 'admitted');
    expect(admitted).toEqual(users.slice(300, 600));
    expect(second.slice(0, 300).every((s) => s.state === 'closed' && s.lapsed === true)).toBe(true);
    const answers = await Promise.all(admitted.map((u, i) => buy('idle', u, tickets.get(u)!, i % 4)));
    expect(answers.filter((a) => a.body.code === 1)).toHaveLength(250);
    expect(answers.filter((a) => a.body.code === -1)).toHaveLength(50);
    expect(Number(await redis.client.hget('idle', SOLD_FIELD))).toBe(250);
  });

  // An expired admission was a dead end: the page said "your admission has expired", joining
  // again gave back the same lapsed place, and the buyer was out of the sale for good.
  test('a lapsed admission joins again once at the back of the line and can buy; a second lapse is final', async () => {
    await createSale('lapse', 5, { admissionSeconds: 1, admitPerSecond: 5000 });
    const first = await join('lapse', 'lena');
    await admitRound();
    expect((await poll('lapse', first.ticket!)).state).toBe('admitted');
    await join('lapse', 'max');
    await Bun.sleep(1200);
    await admitRound();
    expect(await poll('lapse', first.ticket!)).toMatchObject({ state: 'closed', lapsed: true });
    expect((await buy('lapse', 'lena', first.ticket!)).status).toBe(403);
    const again = await join('lapse', 'lena');
    expect(again.position).toBeGreaterThan(first.position);
    expect(await join('lapse', 'lena')).toMatchObject({ position: again.position });
    await admitRound();
    expect((await poll('lapse', again.ticket!)).state).toBe('admitted');
    expect((await buy('lapse', 'lena', again.ticket!)).body).toMatchObject({ code: 1 });
    // Max never buys, joins again once, lets that lapse too: no third place.
    const maxAgain = await join('lapse', 'max');
    expect(maxAgain.position).toBeGreaterThan(again.position);
    await admitRound();
    await Bun.sleep(1200);
    await admitRound();
    const refused = await fetch(`${spike.url(1)}/queue/join?sale=lapse&user=max`, { method: 'POST' });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ error: 'rejoin_used' });
  });

  test('sold out while 4 000 wait: every waiter reads soldout after one admission round, and their polls never reach Redis', async () => {
    await createSale('crowd', 100, { admissionSeconds: 60, admitPerSecond: 5000 });
    const users = Array.from({ length: 4120 }, (_, i) => `w${i}`);
    const joined = await fire(
      users.map((u, i) => `${spike.url(i % 4)}/queue/join?sale=crowd&user=${u}`),
      50,
      { method: 'POST' },
    );
    const ticket = new Map(users.map((u, i) => [u, String(joined[i]!.body.ticket)]));
    await admitRound();
    const front = users.filter((_, i) => Number(joined[i]!.body.position) <= 120);
    for (const [i, user] of front.entries()) {
      const answer = await buy('crowd', user, ticket.get(user)!, i % 4);
      if (answer.body.code === 1) await pay('crowd', user, String(answer.body.orderId), i % 4);
    }
    expect(Number(await redis.client.hget('crowd', SOLD_FIELD))).toBe(100);
    // One sync period's work: the sale's stock and its waiting room read once from Redis.
    await spike.sync.kick();
    await admitRound();
    await redis.client.config('RESETSTAT');
    const waiters = users.filter((u) => !front.includes(u));
    expect(waiters.length).toBeGreaterThanOrEqual(4000);
    const statuses: Status[] = [];
    for (let i = 0; i < waiters.length; i += 50)
      statuses.push(...(await Promise.all(waiters.slice(i, i + 50).map((u, j) => poll('crowd', ticket.get(u)!, j % 4)))));
    expect(statuses.every((s) => s.state === 'soldout')).toBe(true);
    const stats = await redis.client.info('commandstats');
    const calls = [...stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[2]), 0);
    // Only the background tasks' few reads a second (and the order writer copying the payments):
    // not one command per poll.
    expect(calls).toBeLessThan(waiters.length / 4);
    // A late joiner learns it at once, from memory.
    expect((await join('crowd', 'late-comer')).state).toBe('soldout');
  });

  // A client that keeps polling with its pre-queue ticket after the draw made one Redis lookup
  // per poll: 54 000 polls, 60 900 commands. The place is now asked once per worker.
  test('10 000 polls with a pre-queue ticket after the draw cost Redis fewer than 100 lookups', async () => {
    const startsAt = new Date(Date.now() + 1500);
    await createSale('drawn', 100, { admissionSeconds: 60, admitPerSecond: 1 }, startsAt);
    const early = await join('drawn', 'early-bird');
    expect(early.position).toBe(0);
    while (Date.now() < startsAt.getTime() + 50) await Bun.sleep(20);
    await admitRound();
    const placed = await poll('drawn', early.ticket!);
    expect(placed.position).toBe(1);
    await redis.client.config('RESETSTAT');
    const polls = await fire(
      Array.from({ length: 10_000 }, (_, i) => `${spike.url(i % 4)}/queue/status?sale=drawn`),
      50,
      { headers: { 'x-queue-ticket': early.ticket! } },
    );
    expect(polls.every((p) => p.status === 200 && p.body.position === 1)).toBe(true);
    const stats = await redis.client.info('commandstats');
    const calls = [...stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[2]), 0);
    // A place is one HGET (placeOf); the rest are the background tasks' few reads a second.
    const lookups = Number(/^cmdstat_hget:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
    console.log(`10 000 polls with a pre-queue ticket after the draw: ${lookups} HGETs, ${calls} Redis commands in all`);
    expect(lookups).toBeLessThan(100);
    expect(calls).toBeLessThan(1000);
  });

  test('a restarted supervisor keeps every position and admission', async () => {
    await createSale('steady', 10, { admissionSeconds: 120, admitPerSecond: 5000 });
    const users = Array.from({ length: 40 }, (_, i) => `s${i}`);
    const tickets = new Map<string, string>();
    for (const user of users) tickets.set(user, (await join('steady', user)).ticket!);
    await admitRound();
    const strip = ({ state, position, ahead, admissionEndsAt }: Status) => ({ state, position, ahead, admissionEndsAt });
    const before = await Promise.all(users.map((u) => poll('steady', tickets.get(u)!).then(strip)));
    expect(before.filter((s) => s.state === 'admitted')).toHaveLength(12);
    const serving = await redis.client.hget('steady', 'queue_serving');
    await spike.close();
    spike = await startSpike();
    await servesQueue(spike, 'steady');
    await admitRound();
    const after = await Promise.all(users.map((u, i) => poll('steady', tickets.get(u)!, i % 4).then(strip)));
    expect(after).toEqual(before);
    expect(await redis.client.hget('steady', 'queue_serving')).toBe(serving);
    expect((await buy('steady', 's0', tickets.get('s0')!, 2)).body.code).toBe(1);
    expect(await redis.client.hlen(queueKeys('steady').places)).toBe(40);
  });

  test('without SPIKE_QUEUE_SECRET a single node keeps its generated secret across restarts', async () => {
    const dataDir = tempDir('queue-secret');
    const first = await startTestSpike(redis.url, { SPIKE_DATA_DIR: dataDir, SPIKE_QUEUE: '1', SPIKE_RESET: 'force' });
    const ticket = (await (await fetch(`${first.url(0)}/queue/join?user=kim`, { method: 'POST' })).json()) as Status;
    await first.close();
    const second = await startTestSpike(redis.url, { SPIKE_DATA_DIR: dataDir, SPIKE_QUEUE: '1' });
    try {
      const res = await fetch(`${second.url(1)}/queue/status`, { headers: { 'x-queue-ticket': ticket.ticket! } });
      expect(res.status).toBe(200);
      expect(((await res.json()) as Status).position).toBe(ticket.position);
    } finally {
      await second.close();
    }
  });
});
