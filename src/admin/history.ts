/**
 * The node's last 15 minutes at one-second resolution, for the dashboard's charts and its
 * "now firing" list: one ring of numbers per figure. Bounded: FIGURES.length × 900 doubles
 * (18 × 900 × 8 B ≈ 130 KiB a node), whatever the traffic or the number of sales.
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

export const HISTORY_SECONDS = 900;

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
