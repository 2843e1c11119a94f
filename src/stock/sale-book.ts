/** The sales this node serves, each with its keys and its own local stock buffer. */
import type { RedisClient as Redis } from '../redis/client.ts';
import { ARCHIVED_KEY, SALE_PATTERN, SALES_KEY, saleKeys, type SaleKeys } from '../redis/keys.ts';
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
  /** Told of every sale archived, so the workers let go of its buffers. */
  readonly onRemoved?: (id: string) => void;
}

export class SaleBook {
  readonly #sales = new Map<string, SaleEntry>();
  readonly #options: SaleBookOptions;
  /** all(), made once per change of the list: every background task walks it several times a second. */
  #list: readonly SaleEntry[] = [];
  readonly #archived = new Set<string>();

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
    this.#list = [...this.#sales.values()];
    this.#options.onAdded?.(entry);
    return entry;
  }

  get(id: string): SaleEntry | undefined {
    return this.#sales.get(id);
  }

  all(): readonly SaleEntry[] {
    return this.#list;
  }

  /** Forgets an archived sale: its buffers are freed once no worker holds them. */
  remove(id: string): void {
    this.#archived.add(id);
    if (!this.#sales.delete(id)) return;
    this.#list = [...this.#sales.values()];
    this.#options.onRemoved?.(id);
  }

  /** The archived sales this node knows of (their orders are read from the database). */
  archived(): readonly string[] {
    return [...this.#archived];
  }

  /** Learns the sales archived before this node started. */
  async loadArchived(redis: Redis): Promise<void> {
    for (const id of await redis.hkeys(ARCHIVED_KEY)) this.#archived.add(id);
  }

  /** Adds the sales other nodes (or the admin API) registered in Redis, and forgets those archived. */
  async discover(redis: Redis): Promise<void> {
    const listed = new Set(await redis.smembers(SALES_KEY));
    for (const id of listed) if (SALE_PATTERN.test(id)) this.add(id);
    const gone = this.#list.filter((entry) => !listed.has(entry.id)).map((entry) => entry.id);
    // Only an archived sale leaves: one not listed yet (a creation half-way) stays.
    if (gone.length > 0) {
      const archived = await redis.hmget(ARCHIVED_KEY, ...gone);
      gone.forEach((id, i) => {
        if (archived[i]) this.remove(id);
      });
    }
  }
}
