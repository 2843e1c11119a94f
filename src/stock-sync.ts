/** The supervisor's sync task: reads the global stock, publishes it, and tops up workers that ran dry. */
import type Redis from 'ioredis';
import { readSale, type SaleKeys } from './redis/sale.ts';
import type { LocalStock } from './stock/local-stock.ts';

export interface StockSyncOptions {
  readonly keys: SaleKeys;
  /** Most units a worker holds after a top-up. */
  readonly localStock: number;
  readonly buffer: number;
  readonly intervalMs: number;
}

/**
 * Keeps the node's local stock in step with Redis. Every `intervalMs`, and at once when a worker
 * reports it ran dry:
 * - publishes total and sold for `GET /stock` (so that endpoint never calls Redis);
 * - sets the sold-out flag when nothing remains, clears it when tickets come back;
 * - tops up each worker that runs low to what remains plus the buffer, at most its local stock.
 * So a worker that sells nothing leaves its share to the others, and the sale ends with exactly
 * `total` sold while Redis sees about `total + buffer` purchase calls.
 */
export class StockSync {
  readonly #redis: Redis;
  readonly #stock: LocalStock;
  readonly #options: StockSyncOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #failing = false;
  #missing = false;

  constructor(redis: Redis, stock: LocalStock, options: StockSyncOptions) {
    this.#redis = redis;
    this.#stock = stock;
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

  /** One sync. A Redis failure is reported once and leaves the flags as they were. */
  async syncOnce(): Promise<void> {
    let count;
    try {
      count = await readSale(this.#redis, this.#options.keys);
    } catch (error) {
      if (!this.#failing) console.error(`[sync] cannot read the stock: ${error instanceof Error ? error.message : error}`);
      this.#failing = true;
      return;
    }
    this.#failing = false;
    if (!count) {
      // The sale vanished (Redis lost its data, or someone deleted it). Recreating it here could
      // sell its tickets a second time, so only a person may do that (--reset).
      if (!this.#missing) console.error(`[sync] sale ${this.#options.keys.sale} is missing from Redis; purchases answer 404 until it is created again (bun run start -- --reset, or HMSET)`);
      this.#missing = true;
      return;
    }
    this.#missing = false;
    this.#stock.publishGlobal(count.total, count.sold);
    const remaining = count.total - count.sold;
    if (remaining <= 0) {
      this.#stock.markSoldOut();
      return;
    }
    this.#stock.clearSoldOut();
    const { localStock, buffer } = this.#options;
    // A worker may try to sell everything that remains (plus the buffer), up to its local
    // stock: when traffic reaches only some workers, they must not run dry every few tickets.
    // Redis still refuses every sale past the total.
    const share = Math.min(localStock, Math.max(1, Math.ceil(remaining * (1 + buffer))));
    for (let worker = 0; worker < this.#stock.workers; worker++) {
      if (this.#stock.isLow(worker)) this.#stock.refill(worker, share);
    }
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
