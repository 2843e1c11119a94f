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

/** A sale a batch made: its order and buyer (`''`: anonymous). */
export interface Sold {
  readonly orderId: string;
  readonly user: string;
}

export interface BatcherOptions {
  readonly maxBatch?: number;
  readonly durability?: Durability;
  readonly seen?: Seen;
  /** Hears of a batch's sales before any of its buyers is answered (the node's journal). */
  readonly onSold?: (sold: readonly Sold[]) => void;
  /**
   * How long a buyer waits for Redis before being told 503. The script may still run after that
   * (Redis was slow, not gone): its late answer then goes to `onUnanswered`. Default: no limit.
   */
  readonly timeoutMs?: number;
  /** Sales made for buyers who had been told 503 already (see timeoutMs): to undo or keep. */
  readonly onUnanswered?: (sold: readonly Sold[], lateMs: number) => void;
}

/** A purchase refused without asking Redis: an earlier call has waited past the timeout, so Redis is stalled. */
export class RedisStalledError extends Error {
  override name = 'RedisStalledError';
}

/** A purchase sent to Redis that got no answer in time: it may still happen (see onUnanswered). */
export class RedisTimeoutError extends Error {
  override name = 'RedisTimeoutError';
}

/**
 * A worker's purchases of one sale, one script call per event-loop turn (turn-batch.ts). The
 * script still handles the buyers one by one, in arrival order, atomically.
 *
 * While Redis stalls, a buyer is told 503 after `timeoutMs`, and later buyers at once, without
 * another call: a frozen Redis that wakes up runs every script it was sent, and each would sell
 * to someone already told 503. The few calls sent before the stall was noticed are answered
 * late; their sales go to `onUnanswered`.
 */
export class PurchaseBatcher {
  readonly #redis: Redis;
  readonly #keys: SaleKeys;
  readonly #seller: Seller;
  readonly #turns: TurnBatch<string, Purchase>;
  readonly #options: BatcherOptions;
  /** When each call still waiting for Redis was sent (performance.now()). */
  readonly #inFlight = new Set<number>();

  constructor(redis: Redis, keys: SaleKeys, seller: Seller, options: BatcherOptions = {}) {
    this.#redis = redis;
    this.#keys = keys;
    this.#seller = seller;
    this.#options = options;
    this.#turns = new TurnBatch((users) => this.#sell(users), options.maxBatch ?? 64);
  }

  /** Resolves with this buyer's answer; rejects when the batch's Redis call fails or Redis is stalled. */
  buy(user: string): Promise<Purchase> {
    if (this.#stalled()) return Promise.reject(new RedisStalledError('Redis has not answered an earlier purchase in time'));
    return this.#turns.add(user);
  }

  #stalled(): boolean {
    const limit = this.#options.timeoutMs;
    if (limit === undefined || this.#inFlight.size === 0) return false;
    const now = performance.now();
    for (const sent of this.#inFlight) if (now - sent > limit) return true;
    return false;
  }

  async #sell(users: string[]): Promise<Purchase[]> {
    const sent = performance.now();
    this.#inFlight.add(sent);
    const call = purchaseMany(this.#redis, this.#keys, this.#seller, users, this.#options.seen?.newest() ?? '0-0').finally(() =>
      this.#inFlight.delete(sent),
    );
    const answers = await this.#inTime(call, users, sent);
    this.#options.seen?.batchTook?.((performance.now() - sent) / 1000);
    this.#noteNewest(answers);
    const sold = soldOf(answers, users);
    if (sold.length > 0) this.#options.onSold?.(sold);
    const durability = this.#options.durability;
    if (durability && sold.length > 0) {
      // Tell no buyer "sold" before that many replicas hold the sale: a failover right now
      // must not lose it. A buyer who is not told retries, and is shown their order (code 2).
      const acked = await waitForReplicas(this.#redis, this.#keys.sale, durability.replicas, durability.timeoutMs);
      if (acked < durability.replicas)
        throw new Error(`only ${acked} of ${durability.replicas} replicas confirmed the sale within ${durability.timeoutMs} ms`);
    }
    return answers;
  }

  /** `call`'s answers, or a rejection after timeoutMs; a late answer still reaches onUnanswered. */
  async #inTime(call: Promise<Purchase[]>, users: readonly string[], sent: number): Promise<Purchase[]> {
    const limit = this.#options.timeoutMs;
    if (limit === undefined) return call;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisTimeoutError(`Redis did not answer a purchase within ${limit} ms`)), limit);
    });
    try {
      return await Promise.race([call, late]);
    } catch (error) {
      if (error instanceof RedisTimeoutError)
        call.then(
          (answers) => {
            this.#noteNewest(answers);
            const sold = soldOf(answers, users);
            if (sold.length > 0) this.#options.onUnanswered?.(sold, performance.now() - sent);
          },
          () => {},
        );
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last sale of a batch is its newest order: one note per batch, not per buyer. */
  #noteNewest(answers: readonly Purchase[]): void {
    for (let i = answers.length - 1; i >= 0; i--) {
      const answer = answers[i]!;
      if (answer.code === PurchaseCode.Sold) {
        this.#options.seen?.note(answer.orderId);
        return;
      }
    }
  }
}

function soldOf(answers: readonly Purchase[], users: readonly string[]): Sold[] {
  return answers.flatMap((a, i) => (a.code === PurchaseCode.Sold ? [{ orderId: a.orderId, user: users[i]! }] : []));
}
