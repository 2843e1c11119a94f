/** The supervisor's sync task: reads each sale's global stock, publishes it, and tops up workers that run low. */
import { log } from '../log.ts';
import type { RedisClient as Redis } from '../redis/client.ts';
import { readSale } from '../redis/sale.ts';
import { localStockFor, lowWater, topUpTo, type RefillPolicy } from './refill.ts';
import type { SaleBook, SaleEntry } from './sale-book.ts';

export interface StockSyncOptions {
  /** How much local stock each worker gets (refill.ts). */
  readonly policy: RefillPolicy;
  readonly intervalMs: number;
  /**
   * The sale's Redis state went back in time (its newest order is older than one this node saw,
   * or a worker marked it recovering): its lost orders must be restored.
   */
  readonly onBehind?: (sale: string) => void;
}

/**
 * Keeps the node's local stock in step with Redis. Every `intervalMs`, and at once when a worker
 * asks for a top-up or orders are released, for every sale:
 * - publishes total and sold for `GET /stock` (so that endpoint never calls Redis);
 * - sets the sold-out flag when nothing remains, clears it when tickets come back;
 * - tops up each worker that runs low to what remains plus the buffer, at most its local stock.
 * So a worker that sells nothing leaves its share to the others, and the sale ends with exactly
 * `total` sold while Redis sees about `total + buffer` buyers.
 * Each round also picks up sales registered in Redis by other nodes or the admin API.
 */
export class StockSync {
  readonly #redis: Redis;
  readonly #book: SaleBook;
  readonly #options: StockSyncOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #failing = false;
  readonly #missing = new Set<string>();

  constructor(redis: Redis, book: SaleBook, options: StockSyncOptions) {
    this.#redis = redis;
    this.#book = book;
    this.#options = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.kick(), this.#options.intervalMs);
  }

  /** Syncs now; a request during a sync runs one more right after it, never two at once. */
  kick(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.syncOnce();
      } while (this.#again);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** One round over every sale. A Redis failure is reported once and leaves the flags as they were. */
  async syncOnce(): Promise<void> {
    try {
      await this.#book.discover(this.#redis);
      await Promise.all(this.#book.all().map((sale) => this.#syncSale(sale)));
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) log.warn(`[sync] cannot read the stock: ${error instanceof Error ? error.message : error}`);
      this.#failing = true;
    }
  }

  async #syncSale({ id, keys, stock, queue }: SaleEntry): Promise<void> {
    const releases = stock.releases();
    const count = await readSale(this.#redis, keys);
    if (!count) {
      // The sale vanished (Redis lost its data, or someone deleted it). Recreating it here could
      // sell its tickets a second time, so only a person may do that (--reset, or the admin API).
      if (!this.#missing.has(id)) log.warn(`[sync] sale ${id} is missing from Redis; its purchases answer 404 until it is created again`);
      this.#missing.add(id);
      return;
    }
    this.#missing.delete(id);
    if (count.recovering || stock.sawNewerThan(count.lastId)) this.#options.onBehind?.(id);
    else stock.noteSeen(count.lastId);
    // Before any refill: a sale that needs an admission must never sell without one.
    queue.setSettings(count.queue);
    stock.publishGlobal(count.total, count.sold);
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
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
