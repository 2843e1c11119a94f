/** Compares a sale's three records — Redis' counts and order states, the stream, the database — and lists every difference. */
import type { RedisClient as Redis } from '../redis/client.ts';
import { isLive, type Order } from './model.ts';
import { parseOrder, reservedOrder } from './store.ts';
import { PAID_FIELD, SOLD_FIELD, TOTAL_FIELD, WRITERS_GROUP, type SaleKeys } from '../redis/keys.ts';
import type { DbOrder, OrderDb } from './db.ts';
import { parseEvent, type OrderEvent } from './events.ts';

export interface AuditReport {
  readonly sale: string;
  readonly total: number;
  readonly sold: number;
  readonly reserved: number;
  readonly paid: number;
  readonly released: number;
  readonly streamEvents: number;
  readonly dbOrders: number;
  /** Stream events the order writers have not written yet. */
  readonly unwritten: number;
  readonly differences: string[];
}

type Entries = [string, string[]][];

/** Redis' orders, as readOrder sees them: the states entry, else the `created` entry (reserved). */
function redisOrders(sale: string, rawStates: Record<string, string>, entries: Entries): Map<string, Order> {
  const orders = new Map<string, Order>(Object.entries(rawStates).map(([id, raw]) => [id, parseOrder(sale, id, raw)]));
  for (const [id, fields] of entries) {
    if (orders.has(id)) continue;
    const order = reservedOrder(sale, id, fields);
    if (order) orders.set(id, order);
  }
  return orders;
}

/** Redis against itself: the counts, and each buyer's one live order. */
function redisDifferences(
  orders: Map<string, Order>,
  counts: { total: number; sold: number; paidCount: number },
  buyers: Record<string, string>,
): string[] {
  const differences: string[] = [];
  const count = (state: string) => [...orders.values()].filter((o) => o.state === state).length;
  const [reserved, paid] = [count('reserved'), count('paid')];
  if (counts.sold !== reserved + paid) differences.push(`Redis: sold ${counts.sold} != reserved ${reserved} + paid ${paid}`);
  if (counts.sold > counts.total) differences.push(`Redis: sold ${counts.sold} > total ${counts.total} (oversold)`);
  if (counts.paidCount !== paid) differences.push(`Redis: ${PAID_FIELD} ${counts.paidCount} != ${paid} paid orders`);
  for (const [user, id] of Object.entries(buyers)) {
    const o = orders.get(id);
    if (!o || !isLive(o.state) || o.user !== user)
      differences.push(`Redis: buyer ${user} points at ${id}, which is ${o ? `${o.state} (user ${o.user || 'anonymous'})` : 'missing'}`);
  }
  const named = [...orders.values()].filter((o) => o.user && isLive(o.state));
  if (named.length !== Object.keys(buyers).length)
    differences.push(`Redis: ${named.length} live named orders but ${Object.keys(buyers).length} buyers (a user holds two?)`);
  return differences;
}

/** The stream against Redis' states, for orders whose events are still on the stream. */
function streamDifferences(orders: Map<string, Order>, entries: Entries): string[] {
  const fromStream = new Map<string, string>();
  for (const [id, fields] of entries) {
    const e = parseEvent(id, fields);
    if (!e) continue;
    if (e.kind === 'created') fromStream.set(e.orderId, fromStream.get(e.orderId) ?? 'reserved');
    else if (e.kind === 'restored') fromStream.set(e.orderId, e.state ?? 'reserved');
    else fromStream.set(e.orderId, e.kind);
  }
  const differences: string[] = [];
  for (const [id, state] of fromStream) {
    const o = orders.get(id);
    if (!o) differences.push(`stream: order ${id} is not in Redis`);
    else if (o.state !== state) differences.push(`stream: order ${id} ends ${state}, Redis says ${o.state}`);
  }
  return differences;
}

/** The database against Redis, order by order. */
function dbDifferences(orders: Map<string, Order>, dbRows: readonly DbOrder[]): string[] {
  const differences: string[] = [];
  const rows = new Map(dbRows.map((r) => [r.orderId, r]));
  for (const o of orders.values()) {
    const row = rows.get(o.orderId);
    if (!row) differences.push(`database: order ${o.orderId} (${o.state}) is missing`);
    else if (row.state !== o.state || row.user !== o.user)
      differences.push(
        `database: order ${o.orderId} is ${row.state} of ${row.user || 'anonymous'}, Redis says ${o.state} of ${o.user || 'anonymous'}`,
      );
  }
  for (const id of rows.keys()) if (!orders.has(id)) differences.push(`database: order ${id} is not in Redis`);
  return differences;
}

/**
 * Writes into the database every order Redis holds that the database lacks, or holds as reserved
 * while Redis says it ended (as the order writer writes a `restored` event): for a database that
 * missed them (before 0.1's writer wrote restored orders, an older backup). Returns how many rows
 * it wrote. The database keeps the state of an order's first ending, as the writer does.
 */
export async function repairDatabase(redis: Redis, keys: SaleKeys, db: OrderDb): Promise<number> {
  const [rawStates, entries, dbRows] = await Promise.all([
    redis.hgetall(keys.states),
    redis.xrange(keys.orders, '-', '+') as Promise<Entries>,
    db.orders(keys.sale),
  ]);
  const rows = new Map(dbRows.map((r) => [r.orderId, r]));
  const missing = [...redisOrders(keys.sale, rawStates, entries).values()].filter((o) => {
    const row = rows.get(o.orderId);
    return !row || (row.state === 'reserved' && o.state !== 'reserved');
  });
  const events: OrderEvent[] = missing.map((o) => ({
    id: o.orderId,
    kind: 'restored',
    orderId: o.orderId,
    user: o.user,
    port: o.port,
    window: null,
    state: o.state,
    payBy: o.payBy,
    updatedAt: o.updatedAt,
    at: o.createdAt,
  }));
  if (events.length > 0) await db.apply([{ sale: keys.sale, events }]);
  return events.length;
}

export async function auditSale(redis: Redis, keys: SaleKeys, db: OrderDb): Promise<AuditReport> {
  const [[total, sold, paidCount], rawStates, buyers, entries, dbRows] = await Promise.all([
    redis.hmget(keys.sale, TOTAL_FIELD, SOLD_FIELD, PAID_FIELD),
    redis.hgetall(keys.states),
    redis.hgetall(keys.buyers),
    redis.xrange(keys.orders, '-', '+') as Promise<Entries>,
    db.orders(keys.sale),
  ]);
  const orders = redisOrders(keys.sale, rawStates, entries);
  const counts = { total: Number(total ?? 0), sold: Number(sold ?? 0), paidCount: Number(paidCount ?? 0) };
  const differences = [
    ...redisDifferences(orders, counts, buyers),
    ...streamDifferences(orders, entries),
    ...dbDifferences(orders, dbRows),
  ];
  const unwritten = await unwrittenEvents(redis, keys);
  if (unwritten > 0) differences.push(`the order writers have ${unwritten} events not yet written`);
  const inState = (state: string) => [...orders.values()].filter((o) => o.state === state).length;
  return {
    sale: keys.sale,
    total: counts.total,
    sold: counts.sold,
    reserved: inState('reserved'),
    paid: inState('paid'),
    released: orders.size - inState('reserved') - inState('paid'),
    streamEvents: entries.length,
    dbOrders: dbRows.length,
    unwritten,
    differences,
  };
}

/** Pending plus never-delivered entries of the writers' group (0 when there is no group). */
export async function unwrittenEvents(redis: Redis, keys: SaleKeys, group = WRITERS_GROUP): Promise<number> {
  let groups: (string | number)[][];
  try {
    groups = (await redis.xinfo('GROUPS', keys.orders)) as (string | number)[][];
  } catch {
    return 0;
  }
  const info = groups.find((g) => g[g.indexOf('name') + 1] === group);
  // No group yet: no writer ever read the stream, so every entry is unwritten.
  if (!info) return redis.xlen(keys.orders);
  const field = (name: string) => info[info.indexOf(name) + 1];
  const pending = Number(field('pending') ?? 0);
  const lag = field('lag');
  if (lag !== null && lag !== undefined) return pending + Number(lag);
  // Redis cannot tell the lag (nil) after a restart, a trim or a group created late, until the
  // writers catch up: count the entries after what the group was last delivered instead.
  return pending + (await entriesAfter(redis, keys, String(field('last-delivered-id') ?? '0-0')));
}

/** How many stream entries come after `id`, counted page by page. */
async function entriesAfter(redis: Redis, keys: SaleKeys, id: string): Promise<number> {
  let count = 0;
  for (let from = `(${id}`; ; ) {
    const page = (await redis.xrange(keys.orders, from, '+', 'COUNT', 1000)) as [string, string[]][];
    count += page.length;
    if (page.length < 1000) return count;
    from = `(${page.at(-1)![0]}`;
  }
}

/** Waits up to `waitMs` for the order writers to catch up (a live sale keeps them a moment behind), then audits. */
export async function auditWhenWritten(redis: Redis, keys: SaleKeys, db: OrderDb, waitMs = 10_000): Promise<AuditReport> {
  const deadline = Date.now() + waitMs;
  while ((await unwrittenEvents(redis, keys)) > 0 && Date.now() < deadline) await Bun.sleep(50);
  return auditSale(redis, keys, db);
}
