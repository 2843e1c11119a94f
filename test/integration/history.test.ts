// A history check in the spirit of Jepsen. End-state audits could not see what buyers were told
// along the way: "sold out" while a seat was free, a paid order that later read "expired", an
// acknowledged order answering 404 for a while. Here clients buy, pay, cancel and read orders
// while Redis is copied, frozen, killed and finally restarted from the older copy, and every
// request is recorded with when it was sent and answered. The history must be linearizable against
// the model of a sale (helpers/sale-model.ts), checked with the Wing & Gong / Lowe search
// (helpers/linearizability.ts): never more than the total live, one live ticket per user, each
// order's life reserved → paid | cancelled | expired, no expiry before the deadline, nothing
// acknowledged lost, and "sold out" only when every ticket is taken, except while Redis is down or
// being restored. The second test adds an operator (pause, resume, add stock, archive) and a
// second node: where capabilities meet, an archive racing a resume once lost acknowledged orders.
// The clients' choices come from a seeded generator: SPIKE_HISTORY_SEED=<seed> repeats them.
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/services/free-port.ts';
import { checkLinearizable } from '../helpers/linearizability.ts';
import { earlyExpiries, saleModel, type OrderState, type SaleInput, type SaleOp, type SaleOutput } from '../helpers/sale-model.ts';
import { RestorableRedis } from '../helpers/servers.ts';
import { adminCreateSale, reachable, servesSale, startTestSpike, type TestSpike } from '../helpers/spike.ts';

setDefaultTimeout(300_000);

const SEED = Number(Bun.env.SPIKE_HISTORY_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`history: seed ${SEED} (SPIKE_HISTORY_SEED=${SEED} bun test test/integration/history.test.ts repeats the clients' choices)`);

/** A small seeded generator (mulberry32): the same seed, the same choices. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Around a fault, answers may be stale or refused: this long after it ends counts as part of it. */
const SETTLE_MS = 2000;
/**
 * A node hears of a ticket released or added on another node within a sync round and a message
 * (README, Known limits): a buyer asking it meanwhile may be told "sold out". This long after such
 * a change on another node, a "sold out" is not held against the sale.
 */
const ACROSS_NODES_MS = 1000;
/** A request Redis may have run after its client gave up happened at the latest this long after the fault that stalled it. */
const LATE_EFFECT_MS = 3000;

/** Records what clients asked and were answered, with the faults' windows, and checks the history. */
class Recorder {
  readonly history: SaleOp[] = [];
  readonly faults: { name: string; start: number; end: number }[] = [];
  /** Changes that free or add tickets, with the node that made them: another node learns of them a moment later. */
  readonly freed: { node: number; end: number }[] = [];
  readonly random: () => number;
  /** The operator's last answer, for a failure's message. */
  answered = '';

  constructor(seed: number) {
    this.random = seeded(seed);
  }

  inFault(start: number, end: number): boolean {
    return this.faults.some((f) => start <= f.end + SETTLE_MS && end >= f.start);
  }

  /** Whether node `node` may not have heard yet of a ticket freed or added on another node before `start`. */
  unheard(node: number, start: number): boolean {
    return this.freed.some((f) => f.node !== node && f.end <= start && start - f.end < ACROSS_NODES_MS);
  }

  /** Runs a fault and records its window. */
  async fault(name: string, what: () => Promise<void>): Promise<{ start: number; end: number }> {
    const entry = { name, start: Date.now(), end: Number.POSITIVE_INFINITY };
    this.faults.push(entry);
    await what();
    entry.end = Date.now();
    return entry;
  }

  /** Operations answered while `fault` lasted (or just after) that Redis' trouble refused or left unknown. */
  troubled(fault: { start: number; end: number }): number {
    return this.history.filter(
      (op) => op.start <= fault.end + SETTLE_MS && op.end >= fault.start && (op.output.kind === 'unknown' || op.output.kind === 'refused'),
    ).length;
  }

  /** The recorded history checked against the model of a sale of `total` tickets; prints what it needs on failure. */
  check(total: number, windowMs: number): void {
    // An operation without an answer may have taken effect until shortly after the fault that
    // stalled it; answers that change nothing whatever happened (refusals, unanswered reads) are
    // left out, which only spares the search work.
    const latest = (op: SaleOp) => {
      const stalled = this.faults.filter((f) => f.start <= op.end && f.end >= op.start).at(-1);
      return Math.max(op.end, stalled?.end ?? op.end) + LATE_EFFECT_MS;
    };
    const sorted = this.history
      .filter((op) => op.output.kind !== 'refused' && !(op.input.kind === 'read' && op.output.kind === 'unknown'))
      .map((op) => (op.output.kind === 'unknown' ? { ...op, end: latest(op) } : op))
      .sort((a, b) => a.start - b.start);
    const kinds: Record<string, number> = {};
    for (const op of sorted) kinds[`${op.input.kind}:${op.output.kind}`] = (kinds[`${op.input.kind}:${op.output.kind}`] ?? 0) + 1;
    console.log(`history: ${sorted.length} operations ${JSON.stringify(kinds)}`);
    expect(earlyExpiries(sorted, windowMs)).toEqual([]);
    const verdict = checkLinearizable(saleModel(total), sorted);
    if (!verdict.ok) {
      const kept = join(tmpdir(), `spike-history-${process.pid}-${SEED}.json`);
      writeFileSync(kept, JSON.stringify({ seed: SEED, history: sorted, faults: this.faults }));
      const show = (op: SaleOp) => `${op.start}-${op.end} ${JSON.stringify(op.input)} → ${JSON.stringify(op.output)}`;
      console.log(
        `not linearizable (seed ${SEED}; the whole history is in ${kept}); faults ${JSON.stringify(this.faults)}\nlast placed:\n${verdict.linearized.slice(-15).map(show).join('\n')}\ncould not place:\n${verdict.stuck.map(show).join('\n')}`,
      );
    }
    console.log(`history: checked, ${verdict.explored} configurations explored`);
    expect(verdict.ok).toBe(true);
  }
}

/** What an HTTP answer to a buyer means for the model. */
function outputOf(kind: SaleInput['kind'], status: number, body: Record<string, unknown>, exempt: boolean): SaleOutput {
  if (status === 503) return body.outcome === 'unknown' ? { kind: 'unknown' } : { kind: 'refused' };
  if (status === 404 && body.error === 'no_order') return { kind: 'missing' };
  if (kind === 'buy' && status === 404 && body.error === 'no_sale') return { kind: 'nosale' };
  if (kind === 'buy' && status === 200) {
    const code = Number(body.code);
    if (code === 1) return { kind: 'sold', orderId: String(body.orderId) };
    if (code === 2) return { kind: 'held', orderId: String(body.orderId) };
    if (code === -1) return { kind: 'soldout', exempt };
    if (code === -3) return { kind: 'refused' };
    if (code === -2) return { kind: 'nosale' };
  }
  if (kind !== 'buy' && status === 200) return { kind: 'state', state: body.state as OrderState };
  if (status === 409) {
    const state = { expired: 'expired', cancelled: 'cancelled', already_paid: 'paid' }[String(body.error)];
    if (state) return { kind: 'state', state: state as OrderState };
  }
  throw new Error(`unexpected answer to ${kind}: ${status} ${JSON.stringify(body)}`);
}

/** A buyer's request to one of `nodes`' workers, recorded. */
async function perform(rec: Recorder, nodes: readonly TestSpike[], sale: string | undefined, input: SaleInput): Promise<SaleOutput> {
  const at = Math.floor(rec.random() * nodes.length);
  const worker = nodes[at]!.url(Math.floor(rec.random() * 4));
  if (input.kind !== 'buy' && input.kind !== 'pay' && input.kind !== 'cancel' && input.kind !== 'read')
    throw new Error(`${input.kind} is not a buyer's`);
  const of = sale ? `sale=${sale}&` : '';
  const [method, path] =
    input.kind === 'buy'
      ? ['GET', `/buy/ticket?${of}user=${input.user}`]
      : input.kind === 'read'
        ? ['GET', `/orders/${input.orderId}?${of}user=${input.user}`]
        : ['POST', `/orders/${input.orderId}/${input.kind}?${of}user=${input.user}`];
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
  const exempt = rec.inFault(start, end) || rec.unheard(at, start);
  const output = status === 0 ? ({ kind: 'unknown' } as const) : outputOf(input.kind, status, body, exempt);
  rec.history.push({ input, output, start, end });
  if (output.kind === 'state' && (output.state === 'cancelled' || output.state === 'expired') && input.kind !== 'read')
    rec.freed.push({ node: at, end });
  return output;
}

/**
 * One client: random buys, payments, cancels and reads of the orders it learned, until `running()`
 * is false. The first third of the users never pay or cancel: their orders expire.
 */
async function client(
  rec: Recorder,
  nodes: readonly TestSpike[],
  sale: string | undefined,
  users: readonly string[],
  running: () => boolean,
  known: Map<string, string>,
) {
  while (running()) {
    const index = Math.floor(rec.random() * users.length);
    const user = users[index]!;
    const orderId = known.get(user);
    const roll = rec.random();
    const forgetful = index < users.length / 3;
    const input: SaleInput =
      !orderId || roll < 0.5
        ? { kind: 'buy', user }
        : !forgetful && roll < 0.55
          ? { kind: 'pay', orderId, user }
          : !forgetful && roll < 0.65
            ? { kind: 'cancel', orderId, user }
            : { kind: 'read', orderId, user };
    const out = await perform(rec, nodes, sale, input);
    if ((out.kind === 'sold' || out.kind === 'held') && input.kind === 'buy') known.set(user, out.orderId);
    await Bun.sleep(20 + rec.random() * 60);
  }
}

/** An operator's call on the admin API, recorded: 200 done, 409/404 refused, 503 or none unknown. */
async function operate(rec: Recorder, admin: string, token: string, sale: string, input: SaleInput): Promise<number> {
  const [path, body] =
    input.kind === 'add' ? [`/sales/${sale}/stock`, JSON.stringify({ add: input.tickets })] : [`/sales/${sale}/${input.kind}`, undefined];
  const start = Date.now();
  let status = 0;
  try {
    const res = await fetch(`${admin}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body,
      signal: AbortSignal.timeout(30_000),
    });
    status = res.status;
    rec.answered = await res.text();
  } catch {
    status = 0;
  }
  const output: SaleOutput =
    status === 200 ? { kind: 'done' } : status === 409 || status === 404 ? { kind: 'refused' } : { kind: 'unknown' };
  rec.history.push({ input, output, start, end: Date.now() });
  // Stock added or a sale resumed on the admin's node (0): the other node hears of it a moment later.
  if (output.kind !== 'refused' && (input.kind === 'add' || input.kind === 'resume')) rec.freed.push({ node: 0, end: Date.now() });
  return status;
}

const users = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const sold = (rec: Recorder, from: number, to: number) =>
  rec.history.filter((op) => op.output.kind === 'sold' && op.start >= from && op.end <= to).length;

describe('the history of a sale under faults', () => {
  const TOTAL = 8;
  const WINDOW_S = 2;
  let redis: RestorableRedis;
  let spike: TestSpike;
  afterAll(async () => {
    await spike?.close();
    await redis?.close();
  });

  test('is linearizable: Redis copied, frozen 2 s, killed, then restored from the older copy while the writer is held back', async () => {
    const rec = new Recorder(SEED);
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
      {
        onExpired: (_, orders, start, end) => rec.history.push({ input: { kind: 'expire', orders }, output: { kind: 'done' }, start, end }),
      },
    );
    let running = true;
    const known = new Map<string, string>();
    const clients = Array.from({ length: 10 }, () => client(rec, [spike], undefined, users('h', 24), () => running, known));
    await Bun.sleep(2000);
    const copied = await rec.fault('copy', () => redis.snapshot());
    await Bun.sleep(2000);
    const frozen = await rec.fault('freeze', async () => {
      redis.freeze();
      await Bun.sleep(2000);
      redis.thaw();
    });
    await Bun.sleep(2500);
    const killed = await rec.fault('kill', () => redis.killAndRestart());
    await Bun.sleep(2500);
    // From here the database gets nothing: what Redis loses next is only in the node's journal.
    await spike.writer!.stop();
    await Bun.sleep(1500);
    const restored = await rec.fault('restore', () => redis.restoreSnapshot());
    await Bun.sleep(5000);
    running = false;
    await Promise.all(clients);

    // Each fault had its effect: the freeze and the kill refused or left requests unknown, and
    // the older copy lacked orders acknowledged after it was taken (they had to come back).
    expect(rec.troubled(frozen)).toBeGreaterThan(0);
    expect(rec.troubled(killed)).toBeGreaterThan(0);
    expect(sold(rec, copied.end, restored.start)).toBeGreaterThan(0);
    expect(rec.history.filter((op) => op.output.kind === 'sold').length).toBeGreaterThan(TOTAL);
    expect(rec.history.some((op) => op.input.kind === 'expire')).toBe(true);
    expect(rec.history.some((op) => op.input.kind === 'pay' && op.output.kind === 'state' && op.output.state === 'paid')).toBe(true);
    rec.check(TOTAL, WINDOW_S * 1000);
  });
});

describe('every operation against every other', () => {
  const TOTAL = 6;
  const WINDOW_S = 2;
  const TOKEN = 'history-operator-token-0123456789';
  const SALE = 'contested';
  let redis: RestorableRedis;
  const nodes: TestSpike[] = [];
  afterAll(async () => {
    for (const node of nodes) await node.close();
    await redis?.close();
  });

  test('two nodes, buyers and an operator pausing, resuming, adding stock and archiving, under freezes, a kill and a rollback: linearizable, nothing acknowledged lost', async () => {
    const rec = new Recorder(SEED + 1);
    redis = new RestorableRedis();
    await redis.start();
    const adminPort = await freePort();
    const admin = `http://127.0.0.1:${adminPort}`;
    const common = { SPIKE_PAY_WINDOW: String(WINDOW_S), SPIKE_REAP_MS: '200', SPIKE_USER_ATTEMPTS: '0', SPIKE_REDIS_TIMEOUT_MS: '500' };
    const onExpired = (node: number) => ({
      onExpired: (sale: string, orders: readonly { orderId: string; user: string }[], start: number, end: number) => {
        if (sale !== SALE) return;
        rec.history.push({ input: { kind: 'expire', orders }, output: { kind: 'done' }, start, end });
        rec.freed.push({ node, end });
      },
    });
    nodes.push(
      await startTestSpike(
        redis.server.url,
        { ...common, SPIKE_ADMIN_PORT: String(adminPort), SPIKE_ADMIN_TOKEN: TOKEN, SPIKE_NODE_ID: 'a' },
        undefined,
        onExpired(0),
      ),
      await startTestSpike(redis.server.url, { ...common, SPIKE_NODE_ID: 'b', SPIKE_WRITER: '0' }, undefined, onExpired(1)),
    );
    expect((await adminCreateSale(admin, TOKEN, { id: SALE, total: TOTAL })).status).toBe(201);
    for (const node of nodes) await servesSale(node, SALE);

    let running = true;
    const known = new Map<string, string>();
    const clients = Array.from({ length: 8 }, () => client(rec, nodes, SALE, users('c', 20), () => running, known));
    // The operator: pause, resume or a ticket more, every 300-700 ms.
    const operator = (async () => {
      while (running) {
        const roll = rec.random();
        const input: SaleInput = roll < 0.35 ? { kind: 'pause' } : roll < 0.8 ? { kind: 'resume' } : { kind: 'add', tickets: 1 };
        await operate(rec, admin, TOKEN, SALE, input);
        await Bun.sleep(300 + rec.random() * 400);
      }
    })();
    await Bun.sleep(2000);
    const copied = await rec.fault('copy', () => redis.snapshot());
    await Bun.sleep(2000);
    const frozen = await rec.fault('freeze', async () => {
      redis.freeze();
      await Bun.sleep(1500);
      redis.thaw();
    });
    await Bun.sleep(2000);
    const killed = await rec.fault('kill', () => redis.killAndRestart());
    await Bun.sleep(2000);
    await nodes[0]!.writer!.stop();
    await Bun.sleep(1500);
    const restored = await rec.fault('restore', () => redis.restoreSnapshot());
    await Bun.sleep(3000);
    await nodes[0]!.writer!.start();
    running = false;
    await Promise.all([...clients, operator]);

    // The end of the sale: paused, every reserved order expired or paid, then archived (refusals
    // while orders are reserved or not yet written are answers like any other), then bought from.
    await reachable(nodes[0]!);
    let archived = 0;
    for (let i = 0; i < 200 && archived !== 200; i++) {
      await operate(rec, admin, TOKEN, SALE, { kind: 'pause' });
      archived = await operate(rec, admin, TOKEN, SALE, { kind: 'archive' });
      if (archived !== 200) await Bun.sleep(250);
    }
    if (archived !== 200) throw new Error(`the sale was never archived; the last answer: ${archived} ${rec.answered}`);
    for (const user of users('late', 4)) await perform(rec, nodes, SALE, { kind: 'buy', user });
    await operate(rec, admin, TOKEN, SALE, { kind: 'resume' });

    // Every order a buyer was told of is found: in the database now the sale is archived.
    const acknowledged = rec.history.flatMap((op) =>
      op.input.kind === 'buy' && (op.output.kind === 'sold' || op.output.kind === 'held')
        ? [{ user: op.input.user, orderId: op.output.orderId }]
        : [],
    );
    const missing: string[] = [];
    for (const { user, orderId } of acknowledged) {
      let status = 0;
      for (let tries = 0; tries < 50 && status !== 200; tries++) {
        status = (await fetch(`${nodes[tries % 2]!.url(tries % 4)}/orders/${orderId}?sale=${SALE}&user=${user}`)).status;
        if (status !== 200) await Bun.sleep(100);
      }
      if (status !== 200) missing.push(`${orderId} of ${user}: ${status}`);
    }
    if (missing.length > 0) {
      const ids = missing.map((m) => m.split(' ')[0]!);
      const about = rec.history.filter((op) => ids.some((id) => JSON.stringify(op).includes(id)));
      console.log(
        `lost (seed ${SEED}): faults ${JSON.stringify(rec.faults)}\n${about.map((op) => `${op.start}-${op.end} ${JSON.stringify(op.input)} → ${JSON.stringify(op.output)}`).join('\n')}`,
      );
    }
    expect(missing).toEqual([]);

    expect(rec.troubled(frozen)).toBeGreaterThan(0);
    expect(rec.troubled(killed)).toBeGreaterThan(0);
    expect(sold(rec, copied.end, restored.start)).toBeGreaterThan(0);
    for (const kind of ['pause', 'resume'] as const)
      expect(rec.history.some((op) => op.input.kind === kind && op.output.kind === 'done')).toBe(true);
    expect(rec.history.some((op) => op.input.kind === 'buy' && op.output.kind === 'nosale')).toBe(true);
    rec.check(TOTAL, WINDOW_S * 1000);
  });
});
