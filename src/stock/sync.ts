/** The supervisor's sync task: reads each sale's global stock, publishes it, and tops up workers that run low. */
import { log } from '../log.ts';
import type { RedisClient as Redis } from '../redis/client.ts';
import { readSale } from '../redis/sale.ts';
import { localStockFor, lowWater, topUpTo, type RefillPolicy } from './refill.ts';
import type { SaleBook, SaleEntry } from './sale-book.ts';
import { SALES_CHANGED } from '../redis/changes.ts';

export interface StockSyncOptions {
  /** How much local stock each worker gets (refill.ts). */
  readonly policy: RefillPolicy;
  readonly intervalMs: number;
  /** How long a sale nothing was heard of may go unread (the slow full round, spread over the rounds). Default 60 s. */
  readonly fullMs?: number;
  /**
   * The sale's Redis state went back in time (its newest order is older than one this node saw,
   * or a worker marked it recovering): its lost orders must be restored.
   */
  readonly onBehind?: (sale: string) => void;
  /** A sale's newest order moved since the last read (the reconciler watches such sales closely). */
  readonly onAdvanced?: (sale: string) => void;
  /** The total the operator last set for `sale` through this node (orders/sale-record.ts): stock only rises. */
  readonly recordedTotal?: (sale: string) => number | undefined;
  /** A sale was reset (its epoch moved): what was recorded of it before no longer applies. */
  readonly onReset?: (sale: string) => void;
  /** This node changed `sales` (its workers sold, a release, an admin action): tell the other nodes. */
  readonly publish?: (sales: readonly string[]) => void;
}

/** What the sync remembers of a sale between rounds, to tell whether it must read it again. */
interface Memo {
  /** Its workers' sales plus its releases at the last read: a change means Redis changed. */
  activity: number;
  /** The next startsAt or endsAt after the last read (0: none): the sale opens or ends then. */
  boundary: number;
  lastId: string;
  epoch: string;
  /** When it was read (Date.now()), and whether more than a tenth of it remained then. */
  readAt: number;
  plenty: boolean;
}

/**
 * A sale its own workers keep selling, with more than a tenth of it left, is read at most this
 * often: each of 100 selling sales read (and told to the other nodes) every round was 0.17 reads
 * and 0.17 messages a purchase. Its workers ask for a top-up when they run low (a read at once),
 * and the last tenth is read every round, so a sold-out sale is still told within a round.
 */
const BUSY_READ_MS = 500;

/** How often the list of sales is read (one SMEMBERS): a sale registered in Redis by hand is served within it. */
const DISCOVER_MS = 10_000;

/** The longest pause between rounds while nothing changes. */
const IDLE_MS = 1000;

/**
 * Keeps the node's local stock in step with Redis. A sale is read when something may have changed
 * it: its workers sold (at most every BUSY_READ_MS while much is left) or released, a worker
 * asked for a top-up, an admin action, another node said so (redis/changes.ts), its start or end
 * came, or it was recovering or missing; every other sale is read once every `fullMs` (a minute:
 * a safety net, as a change is told at once and a lost subscription reads everything), a slice of
 * them per round. So 1 000 idle sales cost ~17 reads a second, not one per sale per round. Rounds
 * stretch to IDLE_MS while nothing happens. A read:
 * - publishes total and sold for `GET /stock` (so that endpoint never calls Redis);
 * - sets the sold-out flag when nothing remains, clears it when tickets come back;
 * - tops up each worker that runs low to what remains plus the buffer, at most its local stock.
 * So a worker that sells nothing leaves its share to the others, and the sale ends with exactly
 * `total` sold while Redis sees about `total + buffer` buyers.
 * The list of sales is read every 10 s too, for sales registered in Redis without a word (by hand).
 */
export class StockSync {
  readonly #redis: Redis;
  readonly #book: SaleBook;
  readonly #options: StockSyncOptions;
  readonly #fullMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  /** The pause before the next round: intervalMs while anything happens, longer while idle. */
  #delay: number;
  /** Whether the last round found something happening (more than the slow sweep), and the nearest start or end of a sale after it (0: none). */
  #readAny = true;
  #nextBoundary = 0;
  #lastRoundAt = 0;
  #running: Promise<void> | undefined;
  #again = false;
  #failing = false;
  readonly #missing = new Set<string>();
  readonly #memo = new Map<string, Memo>();
  /** Changed here (published after the read), and changed by another node (not published again). */
  readonly #changedHere = new Set<string>();
  readonly #changedThere = new Set<string>();
  #everything = true;
  #listChanged = false;
  #lastDiscover = 0;
  #cursor = 0;
  #sweepShare = 0;

  constructor(redis: Redis, book: SaleBook, options: StockSyncOptions) {
    this.#redis = redis;
    this.#book = book;
    this.#options = options;
    this.#fullMs = options.fullMs ?? 60_000;
    this.#delay = options.intervalMs;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#arm(this.#options.intervalMs);
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#delay = ms;
    this.#timer = setTimeout(() => void this.#tick(), ms);
  }

  /**
   * A timed round, then the next one: after intervalMs while sales change, and doubling up to
   * IDLE_MS while rounds find nothing to read (with the admissions', a round over 1 000 idle
   * sales every 100 ms was ~2 % of a core, a third of an idle node's CPU). Never past the next
   * start or end of a sale. A change told by a worker, another node or an admin action runs a
   * round at once whatever the pause.
   */
  async #tick(): Promise<void> {
    this.#timer = undefined;
    await this.#run();
    if (!this.#started || this.#timer) return;
    const { intervalMs } = this.#options;
    let next = this.#readAny ? intervalMs : Math.min(IDLE_MS, this.#delay * 2);
    if (this.#nextBoundary > 0) next = Math.max(intervalMs, Math.min(next, this.#nextBoundary - Date.now()));
    this.#arm(next);
  }

  /** Reads every sale now (a new sale, an admin action, Redis back); a request during a round runs one more right after it. */
  kick(): Promise<void> {
    this.#everything = true;
    return this.#run();
  }

  /** Reads `sale` now: this node changed it (a top-up asked for, a release, an admin action). */
  changed(sale: string): Promise<void> {
    this.#changedHere.add(sale);
    return this.#run();
  }

  /** This node changed the list of sales (it archived one): tell the other nodes to read it. */
  saleListChanged(): void {
    this.#options.publish?.([SALES_CHANGED]);
  }

  /** Another node changed `sale` (SALES_CHANGED: the list of sales): read it in the next round. */
  heard(sale: string): void {
    // A sale this node does not know yet was created elsewhere: read the list of sales too.
    if (sale === SALES_CHANGED || !this.#book.get(sale)) this.#listChanged = true;
    if (sale !== SALES_CHANGED) this.#changedThere.add(sale);
    // Idle here, busy there: back to the short pause.
    if (this.#started && this.#delay > this.#options.intervalMs) this.#arm(this.#options.intervalMs);
  }

  #run(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#round();
      } while (this.#again);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** One round over every sale. A Redis failure is reported once and leaves the flags as they were. */
  syncOnce(): Promise<void> {
    return this.kick();
  }

  async #round(): Promise<void> {
    const everything = this.#everything;
    this.#everything = false;
    const here = new Set(this.#changedHere);
    const there = new Set(this.#changedThere);
    this.#changedHere.clear();
    this.#changedThere.clear();
    try {
      const now = Date.now();
      if (everything || this.#listChanged || now - this.#lastDiscover >= DISCOVER_MS) {
        this.#listChanged = false;
        this.#lastDiscover = now;
        await this.#book.discover(this.#redis);
      }
      if (everything) this.#readAny = true;
      const due = everything ? this.#book.all() : this.#due(here, there, now);
      await Promise.all(due.map((sale) => this.#syncSale(sale)));
      this.#options.publish?.(due.filter((sale) => here.has(sale.id)).map((sale) => sale.id));
      this.#failing = false;
    } catch (error) {
      // Read again next round: what was asked for is not lost with a failed round.
      for (const id of here) this.#changedHere.add(id);
      for (const id of there) this.#changedThere.add(id);
      this.#everything ||= everything;
      if (!this.#failing) log.warn(`[sync] cannot read the stock: ${error instanceof Error ? error.message : error}`);
      this.#failing = true;
    }
  }

  /** The sales to read this round; those whose own workers sold join `here`, to be told to the other nodes. */
  #due(here: Set<string>, there: Set<string>, now: number): SaleEntry[] {
    const all = this.#book.all();
    // Whole sales only: with few sales a round's share is a fraction (1 sale: 1/600), and rounding
    // it up read that sale every round. The share follows the time since the last round: rounds
    // are further apart while idle.
    const elapsed = this.#lastRoundAt ? Math.min(this.#fullMs, now - this.#lastRoundAt) : this.#options.intervalMs;
    this.#lastRoundAt = now;
    this.#sweepShare += (all.length * elapsed) / this.#fullMs;
    const slice = Math.floor(this.#sweepShare);
    this.#sweepShare -= slice;
    const swept = new Set<SaleEntry>();
    for (let i = 0; i < Math.min(slice, all.length); i++) swept.add(all[(this.#cursor + i) % all.length]!);
    this.#cursor = all.length ? (this.#cursor + slice) % all.length : 0;
    this.#nextBoundary = 0;
    this.#readAny = false;
    return all.filter((sale) => {
      const memo = this.#memo.get(sale.id);
      if (memo && memo.boundary > now && (this.#nextBoundary === 0 || memo.boundary < this.#nextBoundary))
        this.#nextBoundary = memo.boundary;
      const sold = memo !== undefined && activity(sale) !== memo.activity;
      // Read a moment ago with much left: it stays changed (its activity unread) until its turn.
      const later = sold && memo.plenty && now - memo.readAt < BUSY_READ_MS;
      if (sold && !later) here.add(sale.id);
      const due =
        !memo ||
        here.has(sale.id) ||
        there.has(sale.id) ||
        (memo.boundary > 0 && now >= memo.boundary) ||
        this.#missing.has(sale.id) ||
        sale.stock.isRecovering();
      // Something happening keeps rounds short; the slow sweep alone does not.
      if (due || later) this.#readAny = true;
      return due || swept.has(sale);
    });
  }

  async #syncSale(sale: SaleEntry): Promise<void> {
    const { id, keys, stock, queue } = sale;
    const releases = stock.releases();
    const before = activity(sale);
    const mark = stock.mark();
    // Taken before the read: a sale this node makes while Redis answers is newer than what it read.
    const seen = stock.seenMark();
    const count = await readSale(this.#redis, keys);
    if (!count) {
      // The sale vanished (Redis lost its data, or someone deleted it). Recreating it here could
      // sell its tickets a second time, so only a person may do that (--reset, or the admin API).
      if (!this.#missing.has(id)) log.warn(`[sync] sale ${id} is missing from Redis; its purchases answer 404 until it is created again`);
      this.#missing.add(id);
      return;
    }
    this.#missing.delete(id);
    const previous = this.#memo.get(id);
    if (previous && previous.lastId !== count.lastId) this.#options.onAdvanced?.(id);
    if (previous && previous.epoch !== count.epoch) this.#options.onReset?.(id);
    const now = Date.now();
    const boundary = [count.startsAt, count.endsAt].filter((t) => t > now).sort((a, b) => a - b)[0] ?? 0;
    const plenty = count.total - count.sold > count.total / 10;
    this.#memo.set(id, { activity: before, boundary, lastId: count.lastId, epoch: count.epoch, readAt: now, plenty });
    // Older than this node saw: an order it saw, or a total the operator set through it, is missing.
    // The second reopened a sale paused after the copy until the reconciler's sweep found it.
    const behind = stock.sawNewerThan(count.lastId, seen) || count.total < (this.#options.recordedTotal?.(id) ?? 0);
    if (count.recovering || behind) this.#options.onBehind?.(id);
    else stock.noteSeen(count.lastId);
    if (behind || count.recovering) {
      // Redis is older than what this node saw, or being restored: its figures are not the sale's
      // (a rolled-back copy said 44 sold of 50 for 51-381 ms, a restore half done more). Nothing of
      // them is shown; the sale is recovering until restored, and sells nothing meanwhile anyway.
      const kept = stock.orders();
      stock.setOpen(false);
      stock.setStatus({ paid: kept.paid, cancelled: kept.cancelled, expired: kept.expired, paused: count.paused, recovering: true });
      return;
    }
    // Before any refill: a sale that needs an admission must never sell without one.
    queue.setSettings(count.queue);
    stock.publishGlobal(count.total, count.sold, mark);
    stock.setOpen(count.open);
    stock.setStatus({ ...count, recovering: count.recovering !== undefined });
    stock.setWindow(count.startsAt, count.endsAt);
    const remaining = count.total - count.sold;
    if (remaining <= 0) {
      // A release noted after the read is newer than it: the next sync (it asked for one) decides.
      if (stock.releases() === releases) stock.markSoldOut();
      return;
    }
    stock.clearSoldOut();
    // The sale's own total sets its local stock, so stock added mid-sale raises it too.
    const { policy } = this.#options;
    stock.setLowWater(lowWater(localStockFor(policy, count.total)));
    const share = topUpTo(policy, count.total, remaining);
    for (let worker = 0; worker < stock.workers; worker++) {
      if (stock.isLow(worker)) stock.refill(worker, share);
    }
  }

  async stop(): Promise<void> {
    this.#started = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}

/** What a sale's workers did that changes Redis: their sales and the releases they noted. */
function activity({ stock }: SaleEntry): number {
  let n = stock.releases();
  for (let worker = 0; worker < stock.workers; worker++) n += stock.sales(worker);
  return n;
}
