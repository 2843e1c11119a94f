/** The sales this node serves, each with its keys and its own local stock buffer. */
import type { RedisClient as Redis } from '../redis/client.ts';
import { SALE_PATTERN, SALES_KEY, saleKeys, type SaleKeys } from '../redis/keys.ts';
import { QueueBoard } from '../queue/board.ts';
import { LocalStock } from './local-stock.ts';

export interface SaleEntry {
  readonly id: string;
  readonly keys: SaleKeys;
  readonly stock: LocalStock;
  /** Its waiting room as the workers read it (queue/board.ts). */
  readonly queue: QueueBoard;
}

export interface SaleBookOptions {
  readonly workers: number;
  /** Told of every sale added, so the workers can attach its buffer. */
  readonly onAdded?: (entry: SaleEntry) => void;
}

export class SaleBook {
  readonly #sales = new Map<string, SaleEntry>();
  readonly #options: SaleBookOptions;

  constructor(options: SaleBookOptions) {
    this.#options = options;
  }

  /**
   * Adds sale `id` if it is new, with a fresh, empty local stock: the sync fills it from the sale's
   * own total in Redis (refill.ts) in its next round, which an addition asks for at once.
   */
  add(id: string): SaleEntry {
    const known = this.#sales.get(id);
    if (known) return known;
    const stock = LocalStock.create(this.#options.workers);
    const entry = { id, keys: saleKeys(id), stock, queue: QueueBoard.create() };
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
