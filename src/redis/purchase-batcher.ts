/** Gathers the purchases a worker receives in one event-loop turn into one script call. */
import type { RedisClient as Redis } from './client.ts';
import { waitForReplicas } from './client.ts';
import type { SaleKeys } from './keys.ts';
import { PurchaseCode, purchaseMany, type Purchase, type Seller } from './sale.ts';

/** Confirm sales on this many replicas (Redis WAIT) before answering; see SPIKE_WAIT_REPLICAS. */
export interface Durability {
  readonly replicas: number;
  readonly timeoutMs: number;
}

/** Where the node keeps the newest order id it saw Redis make for a sale (shared by its workers). */
export interface Seen {
  newest(): string;
  note(orderId: string): void;
  /** One purchase script call took this long (for the metrics' histogram; per batch, not per buyer). */
  batchTook?(seconds: number): void;
}

interface Pending {
  readonly user: string;
  readonly resolve: (purchase: Purchase) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Each EVALSHA has a fixed cost in Redis (~4 µs here) and in ioredis; a spike brings dozens of
 * buyers per turn, so one call for all of them sells about twice as many tickets per second.
 * The script still handles the buyers one by one, in arrival order, atomically.
 */
export class PurchaseBatcher {
  readonly #redis: Redis;
  readonly #keys: SaleKeys;
  readonly #seller: Seller;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #scheduled = false;

  readonly #durability: Durability | undefined;

  readonly #seen: Seen | undefined;

  constructor(
    redis: Redis,
    keys: SaleKeys,
    seller: Seller,
    { maxBatch = 64, durability, seen }: { maxBatch?: number; durability?: Durability; seen?: Seen } = {},
  ) {
    this.#redis = redis;
    this.#keys = keys;
    this.#seller = seller;
    this.#maxBatch = maxBatch;
    this.#durability = durability;
    this.#seen = seen;
  }

  /** Resolves with this buyer's answer; rejects when the batch's Redis call fails. */
  buy(user: string): Promise<Purchase> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ user, resolve, reject });
      if (this.#queue.length >= this.#maxBatch) {
        this.#flush();
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        // setImmediate, as ioredis' auto-pipelining does: after this turn's requests were read.
        setImmediate(() => {
          this.#scheduled = false;
          this.#flush();
        });
      }
    });
  }

  #flush(): void {
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    this.#sell(batch.map((p) => p.user)).then(
      (answers) => {
        for (const [i, p] of batch.entries()) p.resolve(answers[i]!);
      },
      (error) => {
        for (const p of batch) p.reject(error);
      },
    );
  }

  async #sell(users: string[]): Promise<Purchase[]> {
    const started = performance.now();
    const answers = await purchaseMany(this.#redis, this.#keys, this.#seller, users, this.#seen?.newest() ?? '0-0');
    this.#seen?.batchTook?.((performance.now() - started) / 1000);
    // The last sale of a batch is its newest order: one note per batch, not per buyer.
    for (let i = answers.length - 1; i >= 0; i--) {
      const answer = answers[i]!;
      if (answer.code === PurchaseCode.Sold) {
        this.#seen?.note(answer.orderId);
        break;
      }
    }
    const durability = this.#durability;
    if (durability && answers.some((a) => a.code === PurchaseCode.Sold)) {
      // Tell no buyer "sold" before that many replicas hold the sale: a failover right now
      // must not lose it. A buyer who is not told retries, and is shown their order (code 2).
      const acked = await waitForReplicas(this.#redis, this.#keys.sale, durability.replicas, durability.timeoutMs);
      if (acked < durability.replicas)
        throw new Error(`only ${acked} of ${durability.replicas} replicas confirmed the sale within ${durability.timeoutMs} ms`);
    }
    return answers;
  }
}
