// A history check in the spirit of Jepsen. End-state audits could not see what buyers were told
// along the way: "sold out" while a seat was free, a paid order that later read "expired", an
// acknowledged order answering 404 for a while. Here clients buy, pay, cancel and read orders of
// one small sale while Redis is copied, frozen, killed and finally restarted from the older copy,
// and every request is recorded with when it was sent and answered. The history must be
// linearizable against the model of a sale (helpers/sale-model.ts), checked with the Wing & Gong /
// Lowe search (helpers/linearizability.ts): never more than the total live, one live ticket per
// user, each order's life reserved → paid | cancelled | expired, no expiry before the deadline,
// nothing acknowledged lost, and "sold out" only when every ticket is taken, except while Redis is
// down or being restored.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkLinearizable } from '../helpers/linearizability.ts';
import { earlyExpiries, saleModel, type OrderState, type SaleInput, type SaleOp, type SaleOutput } from '../helpers/sale-model.ts';
import { RestorableRedis } from '../helpers/servers.ts';
import { startTestSpike, type TestSpike } from '../helpers/spike.ts';

setDefaultTimeout(240_000);

const TOTAL = 8;
const WINDOW_S = 2;
const USERS = Array.from({ length: 24 }, (_, i) => `h${i}`);
const CLIENTS = 10;

const history: SaleOp[] = [];
/** When Redis was down or being restored: [start, end] (ms). */
const faults: { start: number; end: number }[] = [];
let redis: RestorableRedis;
let spike: TestSpike;

beforeAll(async () => {
  redis = new RestorableRedis();
  await redis.start();
  spike = await startTestSpike(
    redis.server.url,
    {
      SPIKE_TOTAL: String(TOTAL),
      SPIKE_RESET: 'force',
      SPIKE_PAY_WINDOW: String(WINDOW_S),
      SPIKE_REAP_MS: '200',
      SPIKE_USER_ATTEMPTS: '0',
      SPIKE_REDIS_TIMEOUT_MS: '500',
    },
    undefined,
    { onExpired: (_, orders, start, end) => history.push({ input: { kind: 'expire', orders }, output: { kind: 'done' }, start, end }) },
  );
});
afterAll(async () => {
  await spike?.close();
  await redis?.close();
});

/** Around a fault, answers may be stale or refused: this long after it ends counts as part of it. */
const SETTLE_MS = 2000;
/** A request Redis may have run after its client gave up happened at the latest this long after the fault that stalled it. */
const LATE_EFFECT_MS = 3000;

const inFault = (start: number, end: number) => faults.some((f) => start <= f.end + SETTLE_MS && end >= f.start);

/** What an HTTP answer means for the model. */
function outputOf(kind: SaleInput['kind'], status: number, body: Record<string, unknown>, exempt: boolean): SaleOutput {
  if (status === 503) return body.outcome === 'unknown' ? { kind: 'unknown' } : { kind: 'refused' };
  if (status === 404 && body.error === 'no_order') return { kind: 'missing' };
  if (kind === 'buy' && status === 200) {
    const code = Number(body.code);
    if (code === 1) return { kind: 'sold', orderId: String(body.orderId) };
    if (code === 2) return { kind: 'held', orderId: String(body.orderId) };
    if (code === -1) return { kind: 'soldout', exempt };
    if (code === -3) return { kind: 'refused' };
  }
  if (kind !== 'buy' && status === 200) return { kind: 'state', state: body.state as OrderState };
  if (status === 409) {
    const state = { expired: 'expired', cancelled: 'cancelled', already_paid: 'paid' }[String(body.error)];
    if (state) return { kind: 'state', state: state as OrderState };
  }
  throw new Error(`unexpected answer to ${kind}: ${status} ${JSON.stringify(body)}`);
}

/** Sends one operation and records it. */
async function perform(input: SaleInput, learn: (user: string, orderId: string) => void): Promise<void> {
  const worker = spike.url(Math.floor(Math.random() * 4));
  if (input.kind === 'expire') return;
  const [method, path] =
    input.kind === 'buy'
      ? ['GET', `/buy/ticket?user=${input.user}`]
      : input.kind === 'read'
        ? ['GET', `/orders/${input.orderId}?user=${input.user}`]
        : ['POST', `/orders/${input.orderId}/${input.kind}?user=${input.user}`];
  const start = Date.now();
  let status = 0;
  let body: Record<string, unknown> = {};
  try {
    const res = await fetch(`${worker}${path}`, { method, signal: AbortSignal.timeout(30_000) });
    status = res.status;
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    status = 0;
  }
  const end = Date.now();
  const output = status === 0 ? ({ kind: 'unknown' } as const) : outputOf(input.kind, status, body, inFault(start, end));
  history.push({ input, output, start, end });
  if ((output.kind === 'sold' || output.kind === 'held') && input.kind === 'buy') learn(input.user, output.orderId);
}

/** Payments made so far: a few, so most tickets come back (cancelled, expired) and sell again. */
let payments = 0;
const MAX_PAYMENTS = 3;

/**
 * One client: random buys, payments, cancels and reads of the orders it learned, until
 * `running()` is false. The first third of the users never pay or cancel: their orders expire.
 */
async function client(running: () => boolean, known: Map<string, string>): Promise<void> {
  while (running()) {
    const index = Math.floor(Math.random() * USERS.length);
    const user = USERS[index]!;
    const orderId = known.get(user);
    const roll = Math.random();
    const forgetful = index < USERS.length / 3;
    const input: SaleInput =
      !orderId || roll < 0.5
        ? { kind: 'buy', user }
        : !forgetful && roll < 0.55 && payments < MAX_PAYMENTS && ++payments
          ? { kind: 'pay', orderId, user }
          : !forgetful && roll < 0.6
            ? { kind: 'cancel', orderId, user }
            : { kind: 'read', orderId, user };
    await perform(input, (u, id) => known.set(u, id));
    await Bun.sleep(20 + Math.random() * 60);
  }
}

/** Runs `fault` and records its window. */
async function fault(what: () => Promise<void>): Promise<void> {
  const entry = { start: Date.now(), end: Number.POSITIVE_INFINITY };
  faults.push(entry);
  await what();
  entry.end = Date.now();
}

describe('the history of a sale under faults', () => {
  test('is linearizable: Redis copied, frozen 2 s, killed, then restored from the older copy while the writer is held back', async () => {
    let running = true;
    const known = new Map<string, string>();
    const clients = Array.from({ length: CLIENTS }, () => client(() => running, known));
    await Bun.sleep(2000);
    await fault(() => redis.snapshot());
    await Bun.sleep(2000);
    await fault(async () => {
      redis.freeze();
      await Bun.sleep(2000);
      redis.thaw();
    });
    await Bun.sleep(2500);
    await fault(() => redis.killAndRestart());
    await Bun.sleep(2500);
    // From here the database gets nothing: what Redis loses next is only in the node's journal.
    await spike.writer!.stop();
    await Bun.sleep(1500);
    await fault(() => redis.restoreSnapshot());
    await Bun.sleep(5000);
    running = false;
    await Promise.all(clients);

    // An operation without an answer may have taken effect until shortly after the fault that
    // stalled it; answers that change nothing whatever happened (refusals, unanswered reads) are
    // left out, which only spares the search work.
    const latest = (op: SaleOp) => {
      const stalled = faults.filter((f) => f.start <= op.end && f.end >= op.start).at(-1);
      return Math.max(op.end, stalled?.end ?? op.end) + LATE_EFFECT_MS;
    };
    const sorted = history
      .filter((op) => op.output.kind !== 'refused' && !(op.input.kind === 'read' && op.output.kind === 'unknown'))
      .map((op) => (op.output.kind === 'unknown' ? { ...op, end: latest(op) } : op))
      .sort((a, b) => a.start - b.start);
    const kinds = sorted.reduce<Record<string, number>>(
      (n, op) => ({ ...n, [`${op.input.kind}:${op.output.kind}`]: (n[`${op.input.kind}:${op.output.kind}`] ?? 0) + 1 }),
      {},
    );
    console.log(`history: ${sorted.length} operations ${JSON.stringify(kinds)}`);
    expect(sorted.filter((op) => op.output.kind === 'sold').length).toBeGreaterThan(TOTAL);
    expect(sorted.some((op) => op.input.kind === 'expire')).toBe(true);
    expect(earlyExpiries(sorted, WINDOW_S * 1000)).toEqual([]);
    const verdict = checkLinearizable(saleModel(TOTAL), sorted);
    if (!verdict.ok) {
      const kept = join(tmpdir(), `spike-history-${process.pid}.json`);
      writeFileSync(kept, JSON.stringify({ history: sorted, faults }));
      console.log(`the whole history is in ${kept}`);
      const last = verdict.linearized
        .slice(-15)
        .map((op) => `${op.start}-${op.end} ${JSON.stringify(op.input)} → ${JSON.stringify(op.output)}`);
      const stuck = verdict.stuck.map((op) => `${op.start}-${op.end} ${JSON.stringify(op.input)} → ${JSON.stringify(op.output)}`);
      console.log(
        `not linearizable; faults ${JSON.stringify(faults)}\nlast placed:\n${last.join('\n')}\ncould not place:\n${stuck.join('\n')}`,
      );
    }
    console.log(`history: checked, ${verdict.explored} configurations explored`);
    expect(verdict.ok).toBe(true);
  });
});
