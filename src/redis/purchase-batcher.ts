/** Gathers the purchases a worker receives in one event-loop turn into one script call. */
import type { RedisClient as Redis } from './client.ts';
import { waitForReplicas } from './client.ts';
import type { SaleKeys } from './keys.ts';
import { PurchaseCode, purchaseMany, type Purchase, type Seller } from './sale.ts';
import { TurnBatch } from './turn-batch.ts';

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

/**
 * A worker's purchases of one sale, one script call per event-loop turn (turn-batch.ts). The
 * script still handles the buyers one by one, in arrival order, atomically.
 */
export class PurchaseBatcher {
  readonly #redis: Redis;
  readonly #keys: SaleKeys;
  readonly #seller: Seller;
  readonly #turns: TurnBatch<string, Purchase>;
  readonly #durability: Durability | undefined;
  readonly #seen: Seen | undefined;

  readonly #onSold: ((sold: readonly { orderId: string; user: string }[]) => void) | undefined;

  /** `onSold` hears of a batch's sales before any of its buyers is answered (the node's journal). */
  constructor(
    redis: Redis,
    keys: SaleKeys,
    seller: Seller,
    {
      maxBatch = 64,
      durability,
      seen,
      onSold,
    }: {
      maxBatch?: number;
      durability?: Durability;
      seen?: Seen;
      onSold?: (sold: readonly { orderId: string; user: string }[]) => void;
    } = {},
  ) {
    this.#redis = redis;
    this.#keys = keys;
    this.#seller = seller;
    this.#durability = durability;
    this.#seen = seen;
    this.#onSold = onSold;
    this.#turns = new TurnBatch((users) => this.#sell(users), maxBatch);
  }

  /** Resolves with this buyer's answer; rejects when the batch's Redis call fails. */
  buy(user: string): Promise<Purchase> {
    return this.#turns.add(user);
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
    if (this.#onSold) {
      const sold = answers.flatMap((a, i) => (a.code === PurchaseCode.Sold ? [{ orderId: a.orderId, user: users[i]! }] : []));
      if (sold.length > 0) this.#onSold(sold);
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
