/** Owns the SharedArrayBuffer of one sale on one node: every worker's local stock, and the sale's flags. */
import { ANSWER_RESULTS } from './answers.ts';
import { saleState, type SaleFigures, type SaleState } from './sale-state.ts';

/** The most tickets a sale may hold: its counts live in 32-bit slots of the shared buffer. */
export const MAX_TICKETS = 2_147_483_647;

const SEQ_BITS = 20n;
const SEQ_MAX = 2 ** 20 - 1;

/** A stream id `<ms>-<seq>` as one ordered 64-bit number: `ms << 20 | min(seq, 2^20 - 1)`; 0 for anything else. */
function encodeId(id: string): bigint {
  const match = /^(\d{1,15})-(\d{1,20})$/.exec(id);
  if (!match) return 0n;
  return (BigInt(match[1]!) << SEQ_BITS) | BigInt(Math.min(Number(match[2]), SEQ_MAX));
}

/** Sale-wide slots, written by the supervisor's sync (and the sold-out flag by any worker). */
enum Global {
  SoldOut = 0,
  Total,
  Sold,
  Syncs,
  /** A worker at or below this many units asks for a top-up before it runs dry. */
  LowWater,
  /** 1 while the sale sells (not paused, inside its start and end, not recovering), as of the last sync. */
  Open,
  /**
   * Tickets released (cancelled, expired) on this node, counted: a sync that read Redis before a
   * release must not set the sold-out flag the release just cleared.
   */
  Releases,
  /** As of the last sync: paid, cancelled and expired orders, and 1 while the sale is paused or recovering (sale-state.ts). */
  Paid,
  Cancelled,
  Expired,
  Paused,
  Recovering,
  /** The workers' sales and the releases counted when the sync last read Redis: what the node saw since is added to its count. */
  SalesAtSync,
  ReleasesAtSync,
  /** Purchase script calls (batches) observed, then one counter per bucket of BATCH_BUCKETS. */
  Batches,
  Buckets,
}

/** Upper bounds (seconds) of the purchase-batch histogram's buckets; the last is +Inf. */
export const BATCH_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, Number.POSITIVE_INFINITY] as const;
const GLOBAL_SIZE = Global.Buckets + BATCH_BUCKETS.length;

/** How many answer counters each worker has: one per result of the purchase path (answers.ts). */
export const ANSWER_KINDS = ANSWER_RESULTS.length;

/** Per-worker slots; a worker only ever touches its own block. */
enum Slot {
  /** Units this worker may still try to sell through Redis. */
  Stock = 0,
  /** Tickets this worker sold (Redis confirmed). */
  Sales,
  /** 1 once the worker asked the supervisor for a top-up; cleared by a refill. */
  TopUpAsked,
  /** ANSWER_KINDS counters of this worker's answers, by kind. */
  Answers,
}
const SLOT_SIZE = Slot.Answers + ANSWER_KINDS;

/** The 64-bit cells after the 32-bit slots. */
enum Wide {
  /** The newest order id this node saw Redis make for the sale, as `ms << 20 | seq`. */
  Seen = 0,
  /** Microseconds spent in purchase script calls, summed. */
  BatchMicros,
  /** The sale's start and end (ms since the epoch; 0 when it has none), as of the last sync. */
  StartsAt,
  EndsAt,
  Size,
}

const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : null);

export interface WorkerStock {
  readonly stock: number;
  readonly sales: number;
}

export interface StockSnapshot {
  readonly soldOut: boolean;
  readonly total: number;
  readonly sold: number;
  readonly remaining: number;
  /** How many times the supervisor has synced with Redis; 0 means nothing is published yet. */
  readonly syncs: number;
  /** Whether it sells now (not paused, inside its start and end, not recovering), as of the last sync. */
  readonly open: boolean;
  /** Its start and end as ISO times, or null when it has none. */
  readonly startsAt: string | null;
  readonly endsAt: string | null;
  readonly workers: readonly WorkerStock[];
}

/**
 * Local stock of one sale on one node. The supervisor allocates it; each worker thread attaches to the same
 * buffer, so a restarted worker finds its stock and sales where its predecessor left them.
 * Every change goes through Atomics: the supervisor refills while workers take.
 */
export class LocalStock {
  readonly #cells: Int32Array;
  /** The 64-bit cells (Wide). */
  readonly #wide: BigInt64Array;
  readonly workers: number;

  private constructor(buffer: SharedArrayBuffer, workers: number) {
    if (buffer.byteLength !== LocalStock.bytesFor(workers)) {
      throw new Error(
        `local stock buffer holds ${buffer.byteLength} bytes, expected ${LocalStock.bytesFor(workers)} for ${workers} workers`,
      );
    }
    this.#cells = new Int32Array(buffer, 0, GLOBAL_SIZE + workers * SLOT_SIZE);
    this.#wide = new BigInt64Array(buffer, LocalStock.#int32Bytes(workers), Wide.Size);
    this.workers = workers;
  }

  /** Bytes of the 32-bit slots, rounded up to 8 so the 64-bit slot after them is aligned. */
  static #int32Bytes(workers: number): number {
    return Math.ceil(((GLOBAL_SIZE + workers * SLOT_SIZE) * Int32Array.BYTES_PER_ELEMENT) / 8) * 8;
  }

  static bytesFor(workers: number): number {
    return LocalStock.#int32Bytes(workers) + Wide.Size * BigInt64Array.BYTES_PER_ELEMENT;
  }

  /** A new, empty buffer for `workers` workers. */
  static create(workers: number): LocalStock {
    return new LocalStock(new SharedArrayBuffer(LocalStock.bytesFor(workers)), workers);
  }

  /** Views a buffer made by {@link create} (in a worker thread). */
  static attach(buffer: SharedArrayBuffer, workers: number): LocalStock {
    return new LocalStock(buffer, workers);
  }

  get buffer(): SharedArrayBuffer {
    return this.#cells.buffer as SharedArrayBuffer;
  }

  #at(worker: number, slot: Slot): number {
    if (!Number.isInteger(worker) || worker < 0 || worker >= this.workers) throw new RangeError(`no worker ${worker}`);
    return GLOBAL_SIZE + worker * SLOT_SIZE + slot;
  }

  /** Takes one unit of the worker's stock; false when it has none. Never goes below zero. */
  tryTake(worker: number): boolean {
    const i = this.#at(worker, Slot.Stock);
    for (;;) {
      const left = Atomics.load(this.#cells, i);
      if (left <= 0) return false;
      if (Atomics.compareExchange(this.#cells, i, left, left - 1) === left) return true;
    }
  }

  /** Returns a unit taken by {@link tryTake} that did not become a sale. */
  giveBack(worker: number): void {
    Atomics.add(this.#cells, this.#at(worker, Slot.Stock), 1);
  }

  /** Counts a sale Redis confirmed; returns the worker's sales so far. */
  recordSale(worker: number): number {
    return Atomics.add(this.#cells, this.#at(worker, Slot.Sales), 1) + 1;
  }

  sales(worker: number): number {
    return Atomics.load(this.#cells, this.#at(worker, Slot.Sales));
  }

  level(worker: number): number {
    return Atomics.load(this.#cells, this.#at(worker, Slot.Stock));
  }

  /**
   * Raises the worker's stock to `units` if it is below, and wakes its requests waiting in
   * {@link waitForStock}; returns how many units were added.
   */
  refill(worker: number, units: number): number {
    const i = this.#at(worker, Slot.Stock);
    Atomics.store(this.#cells, this.#at(worker, Slot.TopUpAsked), 0);
    for (;;) {
      const left = Atomics.load(this.#cells, i);
      if (left >= units) return 0;
      if (Atomics.compareExchange(this.#cells, i, left, units) === left) {
        Atomics.notify(this.#cells, i);
        return units - left;
      }
    }
  }

  /**
   * Resolves when the worker's stock is no longer zero, the sale is marked sold out, or after
   * `ms`. Lets a dry worker wait a moment for its top-up instead of wrongly answering sold out.
   */
  async waitForStock(worker: number, ms: number): Promise<void> {
    const wait = Atomics.waitAsync(this.#cells, this.#at(worker, Slot.Stock), 0, ms);
    if (wait.async) await wait.value;
  }

  /** True for the first call since the last refill, so a worker asks for a top-up once, not per request. */
  askTopUp(worker: number): boolean {
    return Atomics.compareExchange(this.#cells, this.#at(worker, Slot.TopUpAsked), 0, 1) === 0;
  }

  /** True when the worker holds no more than the low-water mark: time to ask for a top-up. */
  isLow(worker: number): boolean {
    return this.level(worker) <= Atomics.load(this.#cells, Global.LowWater);
  }

  setLowWater(units: number): void {
    Atomics.store(this.#cells, Global.LowWater, units);
  }

  isSoldOut(): boolean {
    return Atomics.load(this.#cells, Global.SoldOut) === 1;
  }

  /** Sets the sold-out flag; on the first set, wakes every request waiting for stock so it answers now. */
  markSoldOut(): void {
    if (Atomics.compareExchange(this.#cells, Global.SoldOut, 0, 1) !== 0) return;
    for (let w = 0; w < this.workers; w++) Atomics.notify(this.#cells, this.#at(w, Slot.Stock));
  }

  clearSoldOut(): void {
    Atomics.store(this.#cells, Global.SoldOut, 0);
  }

  /**
   * A ticket of this sale was released (an order cancelled or expired): it is on sale again at
   * once on every worker of the node, before the next sync, which then tops the workers up.
   */
  noteRelease(): void {
    Atomics.add(this.#cells, Global.Releases, 1);
    this.clearSoldOut();
  }

  /** How many releases this node noted; a sync compares it before and after its read of Redis. */
  releases(): number {
    return Atomics.load(this.#cells, Global.Releases);
  }

  /** This node's sales and releases so far: what the sync marks before it reads Redis (see {@link publishGlobal}). */
  mark(): { sales: number; releases: number } {
    let sales = 0;
    for (let w = 0; w < this.workers; w++) sales += this.sales(w);
    return { sales, releases: this.releases() };
  }

  /**
   * Publishes the global count read from Redis, for `GET /stock` and every figure; `mark` is the
   * node's own sales and releases just before that read. Until the next sync the count shown adds
   * what this node sold and released since: never older than what it already saw.
   */
  publishGlobal(total: number, sold: number, mark = this.mark()): void {
    Atomics.store(this.#cells, Global.Total, total);
    Atomics.store(this.#cells, Global.Sold, sold);
    Atomics.store(this.#cells, Global.SalesAtSync, mark.sales);
    Atomics.store(this.#cells, Global.ReleasesAtSync, mark.releases);
    Atomics.add(this.#cells, Global.Syncs, 1);
  }

  /** Sold as of the last sync plus what this node sold and released since, within 0 and the total. */
  #sold(): number {
    const { sales, releases } = this.mark();
    const since = sales - Atomics.load(this.#cells, Global.SalesAtSync) - (releases - Atomics.load(this.#cells, Global.ReleasesAtSync));
    return Math.max(0, Math.min(Atomics.load(this.#cells, Global.Total), Atomics.load(this.#cells, Global.Sold) + since));
  }

  /**
   * Remembers that Redis made order `id` (a stream id) for this sale. If Redis later shows an
   * older newest order, it lost writes (see purchase-N.lua). A sequence past 2^20 - 1 counts as
   * 2^20 - 1: the mark may then be a little older than the truth, never newer.
   */
  noteSeen(id: string): void {
    const value = encodeId(id);
    for (;;) {
      const known = Atomics.load(this.#wide, Wide.Seen);
      if (known >= value || Atomics.compareExchange(this.#wide, Wide.Seen, known, value) === known) return;
    }
  }

  /** The newest order seen, as a mark to compare a later read with ({@link sawNewerThan}). */
  seenMark(): bigint {
    return Atomics.load(this.#wide, Wide.Seen);
  }

  /**
   * Whether this node saw a newer order than `id` (so a Redis whose newest order is `id` lost
   * writes). Give the mark taken before the read of `id`: a sale made while it was read is no loss.
   */
  sawNewerThan(id: string, mark = this.seenMark()): boolean {
    return mark > encodeId(id);
  }

  /** The newest order id noted by {@link noteSeen}; `0-0` when none. */
  seen(): string {
    const value = Atomics.load(this.#wide, Wide.Seen);
    return `${value >> SEQ_BITS}-${value & BigInt(SEQ_MAX)}`;
  }

  /** Counts one answer of `kind` (0 to ANSWER_KINDS - 1) by `worker`: one Atomics.add on the purchase path. */
  countAnswer(worker: number, kind: number): void {
    // Past the last kind is the next worker's stock: countAnswer(0, 8) once raised worker 1's by one.
    if (!(kind >= 0 && kind < ANSWER_KINDS)) throw new RangeError(`no answer kind ${kind} (0 to ${ANSWER_KINDS - 1})`);
    Atomics.add(this.#cells, this.#at(worker, Slot.Answers + kind), 1);
  }

  /** The worker's answer counters, by kind. */
  answers(worker: number): number[] {
    return Array.from({ length: ANSWER_KINDS }, (_, kind) => Atomics.load(this.#cells, this.#at(worker, Slot.Answers + kind)));
  }

  /** Records one purchase script call that took `seconds` (per batch of buyers, not per request). */
  observeBatch(seconds: number): void {
    const bucket = BATCH_BUCKETS.findIndex((le) => seconds <= le);
    Atomics.add(this.#cells, Global.Buckets + bucket, 1);
    Atomics.add(this.#cells, Global.Batches, 1);
    Atomics.add(this.#wide, Wide.BatchMicros, BigInt(Math.round(seconds * 1e6)));
  }

  /** The batch histogram: count per bucket (not cumulative), calls, and seconds in all. */
  batches(): { buckets: number[]; count: number; seconds: number } {
    const buckets = BATCH_BUCKETS.map((_, i) => Atomics.load(this.#cells, Global.Buckets + i));
    return { buckets, count: Atomics.load(this.#cells, Global.Batches), seconds: Number(Atomics.load(this.#wide, Wide.BatchMicros)) / 1e6 };
  }

  /** Publishes whether the sale sells now (the sync's reading of paused, start, end, recovering). */
  setOpen(open: boolean): void {
    Atomics.store(this.#cells, Global.Open, open ? 1 : 0);
  }

  /** Publishes what the sale's state is made of besides its counts and window (sale-state.ts). */
  setStatus({
    paid,
    cancelled = 0,
    expired = 0,
    paused,
    recovering,
  }: {
    paid: number;
    cancelled?: number;
    expired?: number;
    paused: boolean;
    recovering: boolean;
  }): void {
    Atomics.store(this.#cells, Global.Paid, paid);
    Atomics.store(this.#cells, Global.Cancelled, cancelled);
    Atomics.store(this.#cells, Global.Expired, expired);
    Atomics.store(this.#cells, Global.Paused, paused ? 1 : 0);
    Atomics.store(this.#cells, Global.Recovering, recovering ? 1 : 0);
  }

  /** Reserved (sold, not yet paid) orders as of the last sync. */
  reserved(): number {
    return Math.max(0, this.#sold() - Atomics.load(this.#cells, Global.Paid));
  }

  /** Whether the last sync found the sale recovering lost orders. */
  isRecovering(): boolean {
    return Atomics.load(this.#cells, Global.Recovering) === 1;
  }

  /** Orders by state as of the last sync (no Redis call): for the dashboard and the metrics. */
  orders(): { reserved: number; paid: number; cancelled: number; expired: number } {
    const paid = Atomics.load(this.#cells, Global.Paid);
    return {
      reserved: Math.max(0, this.#sold() - paid),
      paid,
      cancelled: Atomics.load(this.#cells, Global.Cancelled),
      expired: Atomics.load(this.#cells, Global.Expired),
    };
  }

  /** The sale's figures as of the last sync, for saleState(). */
  figures(): SaleFigures {
    return {
      total: Atomics.load(this.#cells, Global.Total),
      sold: this.#sold(),
      paused: Atomics.load(this.#cells, Global.Paused) === 1,
      recovering: Atomics.load(this.#cells, Global.Recovering) === 1,
      startsAt: this.startsAt(),
      endsAt: this.endsAt(),
    };
  }

  /** Its state now (sale-state.ts), and whether a ticket can still come back when none is left (an order is reserved). */
  state(now = Date.now()): { state: SaleState; reserved: number; final: boolean } {
    const figures = this.figures();
    const reserved = Math.max(0, figures.sold - Atomics.load(this.#cells, Global.Paid));
    return { state: saleState(figures, now), reserved, final: figures.sold >= figures.total && reserved === 0 };
  }

  isOpen(): boolean {
    return Atomics.load(this.#cells, Global.Open) === 1;
  }

  /** Publishes the sale's start and end (ms since the epoch; 0: none), for pages and the waiting room. */
  setWindow(startsAt: number, endsAt: number): void {
    Atomics.store(this.#wide, Wide.StartsAt, BigInt(startsAt));
    Atomics.store(this.#wide, Wide.EndsAt, BigInt(endsAt));
  }

  /** The sale's start and end in ms since the epoch; 0 when it has none. */
  startsAt(): number {
    return Number(Atomics.load(this.#wide, Wide.StartsAt));
  }

  endsAt(): number {
    return Number(Atomics.load(this.#wide, Wide.EndsAt));
  }

  snapshot(): StockSnapshot {
    const total = Atomics.load(this.#cells, Global.Total);
    const sold = this.#sold();
    const workers: WorkerStock[] = [];
    for (let w = 0; w < this.workers; w++) {
      workers.push({ stock: this.level(w), sales: this.sales(w) });
    }
    return {
      soldOut: this.isSoldOut(),
      total,
      sold,
      remaining: Math.max(0, total - sold),
      syncs: Atomics.load(this.#cells, Global.Syncs),
      open: this.isOpen(),
      startsAt: iso(this.startsAt()),
      endsAt: iso(this.endsAt()),
      workers,
    };
  }
}
