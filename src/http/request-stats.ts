/**
 * Every answer a worker gives, counted and timed in one SharedArrayBuffer of the node: by route
 * and status, a latency histogram each. Each worker writes only its own cells, so a request is two
 * plain increments (no Atomics, no allocation); the supervisor reads them for /metrics
 * (spike_request_duration_seconds) and the dashboard's history, a moment behind at most. The time
 * is the worker's own: from the request reaching the handler to the answer being ready.
 */

/** Where a request went. */
export const ROUTES = ['buy', 'orders', 'queue', 'page', 'other'] as const;
export type Route = (typeof ROUTES)[number];

/** The statuses counted one by one; any other counts as `other`. */
export const STATUSES = [200, 201, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503] as const;
const OTHER_STATUS = STATUSES.length;
const STATUS_COUNT = STATUSES.length + 1;
/** Status code → its index in STATUSES (OTHER_STATUS for the rest), for 100–599. */
const STATUS_INDEX = new Uint8Array(600).fill(OTHER_STATUS);
STATUSES.forEach((s, i) => {
  STATUS_INDEX[s] = i;
});
const ROUTE_INDEX = Object.fromEntries(ROUTES.map((r, i) => [r, i])) as Record<Route, number>;

/** Upper bounds (seconds) of the latency buckets; the last is +Inf. */
export const LATENCY_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  Number.POSITIVE_INFINITY,
];
/** Per (route, status): the buckets (32-bit counts); the sums of milliseconds are 64-bit floats after them. */
const CELL = LATENCY_BUCKETS.length;
const PAIRS = ROUTES.length * STATUS_COUNT;
const PER_WORKER = PAIRS * CELL;

/** The route of a URL path: /buy/ticket, /orders…, /queue/…, the page and its files, anything else. */
export function routeOf(path: string): Route {
  if (path === '/buy/ticket') return 'buy';
  if (path.startsWith('/orders')) return 'orders';
  if (path.startsWith('/queue/')) return 'queue';
  if (path === '/' || path === '/buyer.js' || path === '/buyer.css') return 'page';
  return 'other';
}

export interface RouteFigures {
  readonly route: Route;
  /** The status, or 'other'. */
  readonly status: string;
  /** Answers per bucket (not cumulative), and the seconds they took in all. */
  readonly buckets: readonly number[];
  readonly count: number;
  readonly seconds: number;
}

const bytes = (workers: number) => ({ counts: workers * PER_WORKER * 4, sums: workers * PAIRS * 8 });

export class RequestStats {
  readonly #cells: Int32Array;
  readonly #sums: Float64Array;
  readonly workers: number;

  private constructor(buffer: SharedArrayBuffer, workers: number) {
    const { counts } = bytes(workers);
    this.#cells = new Int32Array(buffer, 0, counts / 4);
    this.#sums = new Float64Array(buffer, Math.ceil(counts / 8) * 8, workers * PAIRS);
    this.workers = workers;
  }

  static create(workers: number): RequestStats {
    const { counts, sums } = bytes(workers);
    return new RequestStats(new SharedArrayBuffer(Math.ceil(counts / 8) * 8 + sums), workers);
  }

  static attach(buffer: SharedArrayBuffer, workers: number): RequestStats {
    return new RequestStats(buffer, workers);
  }

  get buffer(): SharedArrayBuffer {
    return this.#cells.buffer as SharedArrayBuffer;
  }

  /** Counts one answer of `worker` on `route` with `status`, which took `ms`. Only `worker`'s thread may call it. */
  observe(worker: number, route: Route, status: number, ms: number): void {
    const seconds = ms / 1000;
    let bucket = 0;
    while (seconds > LATENCY_BUCKETS[bucket]!) bucket++;
    const pair = (worker * ROUTES.length + ROUTE_INDEX[route]) * STATUS_COUNT + (STATUS_INDEX[status] ?? OTHER_STATUS);
    this.#cells[pair * CELL + bucket]!++;
    this.#sums[pair]! += ms;
  }

  /** Every (route, status) that has answers, summed over the workers. */
  figures(): RouteFigures[] {
    const out: RouteFigures[] = [];
    for (let r = 0; r < ROUTES.length; r++) {
      for (let s = 0; s < STATUS_COUNT; s++) {
        const buckets = new Array<number>(LATENCY_BUCKETS.length).fill(0);
        let ms = 0;
        for (let w = 0; w < this.workers; w++) {
          const pair = (w * ROUTES.length + r) * STATUS_COUNT + s;
          for (let b = 0; b < CELL; b++) buckets[b]! += this.#cells[pair * CELL + b]!;
          ms += this.#sums[pair]!;
        }
        const count = buckets.reduce((a, b) => a + b, 0);
        if (count > 0)
          out.push({
            route: ROUTES[r]!,
            status: s === OTHER_STATUS ? 'other' : String(STATUSES[s]),
            buckets,
            count,
            seconds: ms / 1000,
          });
      }
    }
    return out;
  }
}

/** The `q` quantile (0–1) of answers spread over LATENCY_BUCKETS, as the bucket's upper bound (seconds); 0 without answers. */
export function quantile(buckets: readonly number[], q: number): number {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= q * total) return Number.isFinite(LATENCY_BUCKETS[i]!) ? LATENCY_BUCKETS[i]! : LATENCY_BUCKETS.at(-2)!;
  }
  return LATENCY_BUCKETS.at(-2)!;
}
