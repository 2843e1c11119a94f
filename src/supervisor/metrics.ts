/**
 * Prometheus metrics of one node, read when scraped: the sales and workers from shared memory
 * (the purchase path only adds one Atomics.add per answer and one histogram sample per batch),
 * the orders and the writer's lag from Redis, and the process metrics prom-client gives.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { LATENCY_BUCKETS, type RequestStats } from '../http/request-stats.ts';
import type { EdgeCounts } from './edge-log.ts';
import { STAT_RESULTS } from '../http/stat-log.ts';
import { unwrittenEvents } from '../orders/audit.ts';
import type { JournalHealth } from '../orders/journal-health.ts';
import type { RedisClient } from '../redis/client.ts';
import { BATCH_BUCKETS } from '../stock/local-stock.ts';
import { SALE_STATES } from '../stock/sale-state.ts';
import type { QueueBoard } from '../queue/board.ts';
import type { SaleBook } from '../stock/sale-book.ts';

export interface MetricsDeps {
  readonly book: SaleBook;
  readonly redis: RedisClient;
  /** Worker ports, by worker index. */
  readonly ports: readonly number[];
  readonly restarts: (worker: number) => number;
  /** Times the private redis-server exited and was started again. */
  readonly redisRestarts: () => number;
  /** Times the supervisor saw Redis stop answering. */
  readonly redisOutages: () => number;
  /** Every answer of the workers, counted and timed (http/request-stats.ts). */
  readonly requests: RequestStats;
  /** What nginx answered, from its log (edge-log.ts); undefined without nginx. */
  readonly edge: () => EdgeCounts | undefined;
  /** Whether the node can write its journal. */
  readonly journal: JournalHealth;
}

type Sample = { readonly labels?: Record<string, string | number>; readonly value: number; readonly metricName?: string };
type Kind = 'gauge' | 'counter' | 'histogram';

/** A metric whose samples are computed at each scrape (prom-client's registry formats them). */
function sampled(registry: Registry, name: string, help: string, type: Kind, samples: () => Sample[] | Promise<Sample[]>): void {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: await samples() }),
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

/** Figures of every sale from shared memory, as of the last sync. */
function saleMetrics(registry: Registry, { book, ports }: MetricsDeps): void {
  const perSale = (value: (entry: ReturnType<SaleBook['all']>[number]) => number) => () =>
    book.all().map((entry) => ({ labels: { sale: entry.id }, value: value(entry) }));
  sampled(
    registry,
    'spike_sale_tickets_total',
    // A counter: a sale's tickets only grow (stock added mid-sale), and Prometheus keeps _total for counters.
    'Tickets put on sale.',
    'counter',
    perSale((e) => e.stock.snapshot().total),
  );
  sampled(
    registry,
    'spike_sale_tickets_sold',
    'Tickets held by live orders (reserved or paid).',
    'gauge',
    perSale((e) => e.stock.snapshot().sold),
  );
  sampled(
    registry,
    'spike_sale_tickets_remaining',
    'Tickets left, as of the last sync.',
    'gauge',
    perSale((e) => e.stock.snapshot().remaining),
  );
  sampled(
    registry,
    'spike_sale_open',
    '1 while the sale sells; 0 paused, outside its window or recovering.',
    'gauge',
    perSale((e) => (e.stock.isOpen() ? 1 : 0)),
  );
  sampled(registry, 'spike_sale_state', "The sale's state (1 for the one it is in), as everywhere else.", 'gauge', () =>
    book.all().flatMap(({ id, stock }) => {
      const { state } = stock.state();
      return SALE_STATES.map((name) => ({ labels: { sale: id, state: name }, value: name === state ? 1 : 0 }));
    }),
  );
  workerMetrics(registry, { book, ports } as MetricsDeps);
}

/** Each worker's purchase answers, local stock and purchase batches, from shared memory. */
function workerMetrics(registry: Registry, { book, ports }: MetricsDeps): void {
  sampled(registry, 'spike_requests_total', 'Purchase answers, by sale, worker port and result.', 'counter', () =>
    book
      .all()
      .flatMap(({ id, stock }) =>
        ports.flatMap((port, w) =>
          STAT_RESULTS.map((result, kind) => ({ labels: { sale: id, worker: port, result }, value: stock.answers(w)[kind]! })),
        ),
      ),
  );
  sampled(registry, 'spike_local_stock', 'Units a worker may still sell of the sale before it asks for more.', 'gauge', () =>
    book.all().flatMap(({ id, stock }) => ports.map((port, w) => ({ labels: { sale: id, worker: port }, value: stock.level(w) }))),
  );
  sampled(registry, 'spike_purchase_batch_seconds', 'Time of one purchase script call (a batch of buyers).', 'histogram', () => {
    const all = book.all().map((entry) => entry.stock.batches());
    let cumulative = 0;
    const buckets = BATCH_BUCKETS.map((le, i) => {
      cumulative += all.reduce((n, b) => n + b.buckets[i]!, 0);
      return {
        metricName: 'spike_purchase_batch_seconds_bucket',
        labels: { le: le === Number.POSITIVE_INFINITY ? '+Inf' : le },
        value: cumulative,
      };
    });
    const sum = all.reduce((n, b) => n + b.seconds, 0);
    const count = all.reduce((n, b) => n + b.count, 0);
    return [
      ...buckets,
      { metricName: 'spike_purchase_batch_seconds_sum', value: sum },
      { metricName: 'spike_purchase_batch_seconds_count', value: count },
    ];
  });
}

/** Each waiting room's places given and admitted, from its board (sales without one have no sample). */
function queueMetrics(registry: Registry, { book }: MetricsDeps): void {
  const queued = (value: (view: ReturnType<QueueBoard['view']>) => number) => () =>
    book
      .all()
      .filter((entry) => entry.queue.isQueued())
      .map((entry) => ({ labels: { sale: entry.id }, value: value(entry.queue.view()) }));
  sampled(
    registry,
    'spike_queue_joined',
    'Places given in the waiting room (its last position).',
    'gauge',
    queued((v) => v.tail),
  );
  sampled(
    registry,
    'spike_queue_admitted',
    'Places admitted so far (the serving counter).',
    'gauge',
    queued((v) => v.serving),
  );
}

/** Orders by state and the writer's lag, from Redis; nothing when Redis does not answer (spike_redis_up says so). */
function orderMetrics(registry: Registry, { book, redis, journal }: MetricsDeps): void {
  const fromRedis = async <T>(read: () => Promise<T>): Promise<T | undefined> => read().catch(() => undefined);
  sampled(registry, 'spike_orders', 'Orders of the sale, by state (as of the last sync).', 'gauge', () =>
    book.all().flatMap(({ id, stock }) => Object.entries(stock.orders()).map(([state, value]) => ({ labels: { sale: id, state }, value }))),
  );
  sampled(
    registry,
    'spike_order_writer_lag_entries',
    'Stream entries the order writers have not written to the database yet.',
    'gauge',
    async () => {
      const samples: Sample[] = [];
      for (const { id, keys } of book.all()) {
        const lag = await fromRedis(() => unwrittenEvents(redis, keys));
        if (lag !== undefined) samples.push({ labels: { sale: id }, value: lag });
      }
      return samples;
    },
  );
  sampled(registry, 'spike_redis_up', '1 when Redis answers a PING from the supervisor.', 'gauge', async () => [
    { value: (await fromRedis(() => redis.ping())) === 'PONG' ? 1 : 0 },
  ]);
  sampled(registry, 'spike_journal_writable', '1 while the node can write its journal; 0: it sells nothing.', 'gauge', () => [
    { value: journal.failing() ? 0 : 1 },
  ]);
}

/** Every answer through nginx by status and by who gave it, and every worker answer's time. */
function edgeAndLatency(registry: Registry, { edge, requests }: MetricsDeps): void {
  sampled(
    registry,
    'spike_edge_responses_total',
    'Answers nginx sent, by status and by who gave them: a worker, or nginx itself (no worker could answer, its limits, requests it refused).',
    'counter',
    () =>
      [...(edge() ?? [])].map(([key, value]) => {
        const [code, source] = key.split('|');
        return { labels: { code: code!, source: source! }, value };
      }),
  );
  sampled(
    registry,
    'spike_request_duration_seconds',
    "Time of a worker's answer, from the request to the answer, by route and status.",
    'histogram',
    () =>
      requests.figures().flatMap(({ route, status, buckets, count, seconds }) => {
        let cumulative = 0;
        const labels = { route, code: status };
        return [
          ...buckets.map((n, i) => {
            cumulative += n;
            const le = LATENCY_BUCKETS[i] === Number.POSITIVE_INFINITY ? '+Inf' : LATENCY_BUCKETS[i]!;
            return { metricName: 'spike_request_duration_seconds_bucket', labels: { ...labels, le }, value: cumulative };
          }),
          { metricName: 'spike_request_duration_seconds_sum', labels, value: seconds },
          { metricName: 'spike_request_duration_seconds_count', labels, value: count },
        ];
      }),
  );
}

/** The node's registry; `metrics()` renders the Prometheus text format. */
export function createMetrics(deps: MetricsDeps): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges named *_total break Prometheus' naming rule (promtool says so), and Bun reports no handles anyway.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  saleMetrics(registry, deps);
  queueMetrics(registry, deps);
  sampled(registry, 'spike_worker_restarts_total', 'Times a worker thread died and was started again.', 'counter', () =>
    deps.ports.map((port, w) => ({ labels: { worker: port }, value: deps.restarts(w) })),
  );
  sampled(registry, 'spike_redis_restarts_total', 'Times the private redis-server exited and was started again.', 'counter', () => [
    { value: deps.redisRestarts() },
  ]);
  sampled(registry, 'spike_redis_outages_total', 'Times Redis stopped answering the supervisor (each a WARN line).', 'counter', () => [
    { value: deps.redisOutages() },
  ]);
  orderMetrics(registry, deps);
  edgeAndLatency(registry, deps);
  return registry;
}
