/** What the dashboard shows of this node, read in one go: sales, workers, orders, the writer's lag, Redis. */
import { STAT_RESULTS } from '../http/stat-log.ts';
import { unwrittenEvents } from '../orders/audit.ts';
import type { RedisClient } from '../redis/client.ts';
import { PAID_FIELD, SOLD_FIELD } from '../redis/keys.ts';
import type { SaleBook } from '../stock/sale-book.ts';
import type { SaleState } from '../stock/sale-state.ts';

export interface SnapshotDeps {
  readonly node: string;
  readonly book: SaleBook;
  readonly redis: RedisClient;
  readonly ports: readonly number[];
  readonly restarts: (worker: number) => number;
}

/** Cumulative figures; the page turns two of them a second apart into rates (sold/s, answers/s, 503/s). */
export interface NodeSnapshot {
  readonly node: string;
  readonly at: number;
  readonly redisUp: boolean;
  readonly sales: {
    id: string;
    total: number;
    sold: number;
    remaining: number;
    open: boolean;
    /** Its state (stock/sale-state.ts), and whether a ticket can still come back once none is left. */
    state: SaleState;
    final: boolean;
    paid: number;
    reserved: number;
    /** Tickets sold so far (answers "sold", released ones included), for sold/s. */
    soldAnswers: number;
    orders: Record<string, number> | null;
    writerLag: number | null;
    /** Its waiting room: places given and admitted; null when it has none. */
    queue: { joined: number; admitted: number } | null;
  }[];
  readonly workers: { port: number; localStock: number; sales: number; restarts: number; answers: number; unavailable: number }[];
}

const SOLD = STAT_RESULTS.indexOf('sold');
const UNAVAILABLE = STAT_RESULTS.indexOf('unavailable');

/** Orders by state and the writer's lag of one sale; null when Redis does not answer. */
async function fromRedis(redis: RedisClient, keys: ReturnType<SaleBook['all']>[number]['keys']) {
  try {
    const counts = await redis.hmget(keys.sale, SOLD_FIELD, PAID_FIELD, 'ticket_cancelled_nums', 'ticket_expired_nums');
    const [sold, paid, cancelled, expired] = counts.map((v) => Number(v ?? 0)) as [number, number, number, number];
    return { orders: { reserved: sold - paid, paid, cancelled, expired }, writerLag: await unwrittenEvents(redis, keys) };
  } catch {
    return { orders: null, writerLag: null };
  }
}

export async function nodeSnapshot({ node, book, redis, ports, restarts }: SnapshotDeps): Promise<NodeSnapshot> {
  const redisUp = await redis.ping().then(
    (pong) => pong === 'PONG',
    () => false,
  );
  const entries = book.all();
  const sales = await Promise.all(
    entries.map(async ({ id, keys, stock, queue }) => {
      const { total, sold, remaining } = stock.snapshot();
      const soldAnswers = ports.reduce((n, _, w) => n + stock.answers(w)[SOLD]!, 0);
      const extra = redisUp ? await fromRedis(redis, keys) : { orders: null, writerLag: null };
      const room = queue.view();
      const waiting = room.queued ? { joined: room.tail, admitted: room.serving } : null;
      const { state, final, reserved } = stock.state();
      return {
        id,
        total,
        sold,
        remaining,
        open: stock.isOpen(),
        state,
        final,
        paid: sold - reserved,
        reserved,
        soldAnswers,
        ...extra,
        queue: waiting,
      };
    }),
  );
  const workers = ports.map((port, w) => {
    let localStock = 0;
    let workerSales = 0;
    let answers = 0;
    let unavailable = 0;
    for (const { stock } of entries) {
      const counts = stock.answers(w);
      localStock += stock.level(w);
      workerSales += stock.sales(w);
      answers += counts.reduce((a, b) => a + b, 0);
      unavailable += counts[UNAVAILABLE]!;
    }
    return { port, localStock, sales: workerSales, restarts: restarts(w), answers, unavailable };
  });
  return { node, at: Date.now(), redisUp, sales, workers };
}
