/**
 * The node's last hour at one-second resolution, and its last day a minute at a time, for the
 * dashboard's charts and its "now firing" list: one ring of numbers per figure. Bounded, whatever
 * the traffic or the number of sales: FIGURES.length × (3 600 + 1 440) doubles a node.
 */

/** Every figure the history keeps, one sample a second (rates are per second). */
export const FIGURES = [
  /** Epoch seconds of the sample. */
  't',
  /** The workers' purchase answers: sold, sold out, held (the buyer had one already). */
  'sold',
  'soldout',
  'held',
  /** The workers' other answers by status: 4xx (but 429), 429, 503. */
  'w4xx',
  'w429',
  'w503',
  /** nginx's own answers: 4xx it refused, 429 from its limits, 503 when no worker could answer. */
  'n4xx',
  'n429',
  'n503',
  /** The purchase path's latency in the worker, ms. */
  'p50',
  'p99',
  /** Waiting-room places waiting, and admissions a second (all sales). */
  'waiting',
  'admitted',
  /** Order events not in the database yet (all sales). */
  'lag',
  /** 1 while Redis answers. */
  'redis',
  /** 1 while the node can write its journal (orders/journal.ts). */
  'journal',
  /** Sales stopped to restore lost orders. */
  'recovering',
  /** Worker threads and redis-server restarted, so far (cumulative). */
  'workerRestarts',
  'redisRestarts',
] as const;
export type Figure = (typeof FIGURES)[number];
export type Row = Record<Figure, number>;

export const HISTORY_SECONDS = 3600;
/** Minutes kept at one row a minute: a day. */
export const HISTORY_MINUTES = 1440;

export class History {
  readonly #series: Record<Figure, Float64Array>;
  #next = 0;
  #length = 0;

  constructor(readonly capacity = HISTORY_SECONDS) {
    this.#series = Object.fromEntries(FIGURES.map((f) => [f, new Float64Array(capacity)])) as Record<Figure, Float64Array>;
  }

  push(row: Row): void {
    for (const f of FIGURES) this.#series[f][this.#next] = row[f];
    this.#next = (this.#next + 1) % this.capacity;
    this.#length = Math.min(this.#length + 1, this.capacity);
  }

  get length(): number {
    return this.#length;
  }

  /** The figure's samples, oldest first (at most `last` of them). */
  series(figure: Figure, last = this.#length): number[] {
    const n = Math.min(last, this.#length);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.#series[figure][(this.#next - n + i + this.capacity) % this.capacity]!;
    return out;
  }

  /** Every figure's samples, oldest first: what a dashboard gets when it connects. */
  all(): Record<Figure, number[]> {
    return Object.fromEntries(FIGURES.map((f) => [f, this.series(f)])) as Record<Figure, number[]>;
  }
}

/** Figures read as "how bad was it at worst" over a minute; `redis` and `journal` the worst too (0 = down). */
const WORST_HIGH = new Set<Figure>(['p50', 'p99', 'waiting', 'lag', 'recovering', 'workerRestarts', 'redisRestarts']);
const WORST_LOW = new Set<Figure>(['redis', 'journal']);

/** A minute's row of second rows: rates averaged, gauges at their worst, `t` the minute's first second. */
export function minuteOf(rows: readonly Row[]): Row {
  const out = {} as Row;
  for (const f of FIGURES) {
    const values = rows.map((r) => r[f]);
    out[f] =
      f === 't'
        ? values[0]!
        : WORST_HIGH.has(f)
          ? Math.max(...values)
          : WORST_LOW.has(f)
            ? Math.min(...values)
            : values.reduce((a, b) => a + b, 0) / values.length;
  }
  return out;
}
