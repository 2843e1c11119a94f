/** The sales this node serves, each with its keys and its own local stock buffer. */
import type { RedisClient as Redis } from '../redis/client.ts';
import { SALE_PATTERN, SALES_KEY, saleKeys, type SaleKeys } from '../redis/keys.ts';
import { LocalStock } from './local-stock.ts';

export interface SaleEntry {
  readonly id: string;
  readonly keys: SaleKeys;
  readonly stock: LocalStock;
}

export interface SaleBookOptions {
  readonly workers: number;
  /** Units each worker starts with, and the low-water mark is a quarter of it. */
  readonly localStock: number;
  /** Told of every sale added, so the workers can attach its buffer. */
  readonly onAdded?: (entry: SaleEntry) => void;
}

export class SaleBook {
  readonly #sales = new Map<string, SaleEntry>();
  readonly #options: SaleBookOptions;

  constructor(options: SaleBookOptions) {
    this.#options = options;
  }

  /** Adds sale `id` if it is new: a fresh local stock, every worker filled to its local stock. */
  add(id: string): SaleEntry {
    const known = this.#sales.get(id);
    if (known) return known;
    const stock = LocalStock.create(this.#options.workers);
    for (let w = 0; w < this.#options.workers; w++) stock.refill(w, this.#options.localStock);
    // Top a worker up when a quarter of its stock is left, before its buyers have to wait.
    stock.setLowWater(Math.floor(this.#options.localStock / 4));
    const entry = { id, keys: saleKeys(id), stock };
    this.#sales.set(id, entry);
    this.#options.onAdded?.(entry);
    return entry;
  }

  get(id: string): SaleEntry | undefined {
    return this.#sales.get(id);
  }

  all(): SaleEntry[] {
    return [...this.#sales.values()];
  }

  /** Adds the sales other nodes (or the admin API) registered in Redis. */
  async discover(redis: Redis): Promise<void> {
    for (const id of await redis.smembers(SALES_KEY)) if (SALE_PATTERN.test(id)) this.add(id);
  }
}
