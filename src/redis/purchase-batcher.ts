/** Gathers the purchases a worker receives in one event-loop turn, for every sale, into one script call. */
import { Cluster } from 'ioredis';
import type { RedisClient as Redis } from './client.ts';
import { waitForReplicas } from './client.ts';
import type { SaleKeys } from './keys.ts';
import { PurchaseCode, purchaseSales, type Buyer, type Purchase, type SaleBatch, type Seller } from './sale.ts';
import { hashSlot } from './slot.ts';
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

/** One sale as the batcher sells it: its id and keys, and what hears of its sales. */
export interface BatchedSale {
  readonly id: string;
  readonly keys: SaleKeys;
  readonly seen?: Seen;
  /** Sales made for buyers who had been told 503 already (see timeoutMs): to undo or keep. */
  readonly onUnanswered?: (sold: readonly Sold[], lateMs: number) => void;
}

/** The sales one call made of one sale. */
export interface SaleSold {
  readonly sale: BatchedSale;
  readonly sold: readonly Sold[];
}

export interface BatcherOptions {
  readonly maxBatch?: number;
  /**
   * Hears of a call's sales, of every sale in it, before any of its buyers is answered (the
   * node's journal: one write a call, where one a sale was 25 writes a call over 100 sales).
   */
  readonly onSold?: (sold: readonly SaleSold[]) => void;
  readonly durability?: Durability;
  /**
   * How long a buyer waits for Redis before being told 503. The script may still run after that
   * (Redis was slow, not gone): its late answer then goes to the sale's `onUnanswered`. Default: no limit.
   */
  readonly timeoutMs?: number;
}

/** A purchase refused without asking Redis: an earlier call has waited past the timeout, so Redis is stalled. */
export class RedisStalledError extends Error {
  override name = 'RedisStalledError';
}

/** A purchase sent to Redis that got no answer in time: it may still happen (see onUnanswered). */
export class RedisTimeoutError extends Error {
  override name = 'RedisTimeoutError';
}

interface Order {
  readonly sale: BatchedSale;
  readonly buyer: Buyer;
}

/** A turn's orders of one sale, and where each stands in the turn. */
interface Part {
  readonly sale: BatchedSale;
  readonly buyers: Buyer[];
  readonly at: number[];
}

/**
 * A worker's purchases, one script call per event-loop turn (turn-batch.ts) for all its sales:
 * a hundred sales on sale at once cost the calls of one (on a Cluster, one call per slot). The
 * script still handles each sale's buyers one by one, in arrival order, atomically.
 *
 * While Redis stalls, a buyer is told 503 after `timeoutMs`, and later buyers at once, without
 * another call: a frozen Redis that wakes up runs every script it was sent, and each would sell
 * to someone already told 503. The few calls sent before the stall was noticed are answered
 * late; their sales go to `onUnanswered`.
 */
export class PurchaseBatcher {
  readonly #redis: Redis;
  readonly #seller: Seller;
  readonly #turns: TurnBatch<Order, Purchase>;
  readonly #options: BatcherOptions;
  /** When each call still waiting for Redis was sent (performance.now()). */
  readonly #inFlight = new Set<number>();

  constructor(redis: Redis, seller: Seller, options: BatcherOptions = {}) {
    this.#redis = redis;
    this.#seller = seller;
    this.#options = options;
    this.#turns = new TurnBatch((orders) => this.#sellTurn(orders), options.maxBatch ?? 64);
  }

  /** Resolves with this buyer's answer; rejects when the batch's Redis call fails or Redis is stalled. */
  buy(sale: BatchedSale, buyer: Buyer): Promise<Purchase> {
    if (this.#stalled()) return Promise.reject(new RedisStalledError('Redis has not answered an earlier purchase in time'));
    return this.#turns.add({ sale, buyer });
  }

  #stalled(): boolean {
    const limit = this.#options.timeoutMs;
    if (limit === undefined || this.#inFlight.size === 0) return false;
    const now = performance.now();
    for (const sent of this.#inFlight) if (now - sent > limit) return true;
    return false;
  }

  /** A turn's orders, grouped by sale and each group of sales by slot: one call per slot. */
  async #sellTurn(orders: readonly Order[]): Promise<Purchase[]> {
    const parts = new Map<BatchedSale, Part>();
    orders.forEach(({ sale, buyer }, i) => {
      const part = parts.get(sale) ?? { sale, buyers: [], at: [] };
      parts.set(sale, part);
      part.buyers.push(buyer);
      part.at.push(i);
    });
    const slots = new Map<number, Part[]>();
    const cluster = this.#redis instanceof Cluster;
    for (const part of parts.values()) {
      const slot = cluster ? hashSlot(part.sale.keys.sale) : 0;
      const group = slots.get(slot);
      if (group) group.push(part);
      else slots.set(slot, [part]);
    }
    const answers: Purchase[] = new Array(orders.length);
    await Promise.all(
      [...slots.values()].map(async (group) => {
        const results = await this.#sell(group);
        group.forEach((part, p) => {
          part.at.forEach((i, b) => {
            answers[i] = results[p]![b]!;
          });
        });
      }),
    );
    return answers;
  }

  async #sell(parts: readonly Part[]): Promise<Purchase[][]> {
    const sent = performance.now();
    this.#inFlight.add(sent);
    const batches: SaleBatch[] = parts.map(({ sale, buyers }) => ({ keys: sale.keys, seen: sale.seen?.newest() ?? '0-0', buyers }));
    const call = purchaseSales(this.#redis, this.#seller, batches).finally(() => this.#inFlight.delete(sent));
    const results = await this.#inTime(call, parts, sent);
    const took = (performance.now() - sent) / 1000;
    const sold: SaleSold[] = [];
    parts.forEach(({ sale, buyers }, p) => {
      sale.seen?.batchTook?.(took);
      noteNewest(sale, results[p]!);
      const made = soldOf(results[p]!, buyers);
      if (made.length > 0) sold.push({ sale, sold: made });
    });
    if (sold.length > 0) this.#options.onSold?.(sold);
    const durability = this.#options.durability;
    if (durability && sold.length > 0) {
      // Tell no buyer "sold" before that many replicas hold the sale: a failover right now
      // must not lose it. A buyer who is not told retries, and is shown their order (code 2).
      const acked = await waitForReplicas(this.#redis, parts[0]!.sale.keys.sale, durability.replicas, durability.timeoutMs);
      if (acked < durability.replicas)
        throw new Error(`only ${acked} of ${durability.replicas} replicas confirmed the sale within ${durability.timeoutMs} ms`);
    }
    return results;
  }

  /** `call`'s answers, or a rejection after timeoutMs; a late answer still reaches onUnanswered. */
  #inTime(call: Promise<Purchase[][]>, parts: readonly Part[], sent: number): Promise<Purchase[][]> {
    const limit = this.#options.timeoutMs;
    if (limit === undefined) return call;
    // One timer a call, settled by whichever comes first (no Promise.race: a call is per batch, but on the path).
    return new Promise((resolve, reject) => {
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        reject(new RedisTimeoutError(`Redis did not answer a purchase within ${limit} ms`));
      }, limit);
      call.then(
        (results) => {
          clearTimeout(timer);
          if (!late) return resolve(results);
          parts.forEach(({ sale, buyers }, p) => {
            noteNewest(sale, results[p]!);
            const sold = soldOf(results[p]!, buyers);
            if (sold.length > 0) sale.onUnanswered?.(sold, performance.now() - sent);
          });
        },
        (error) => {
          clearTimeout(timer);
          if (!late) reject(error);
        },
      );
    });
  }
}

/** The last sale of a batch is its newest order: one note per sale per batch, not per buyer. */
function noteNewest(sale: BatchedSale, answers: readonly Purchase[]): void {
  for (let i = answers.length - 1; i >= 0; i--) {
    const answer = answers[i]!;
    if (answer.code === PurchaseCode.Sold) {
      sale.seen?.note(answer.orderId);
      return;
    }
  }
}

function soldOf(answers: readonly Purchase[], buyers: readonly Buyer[]): Sold[] {
  const sold: Sold[] = [];
  for (let i = 0; i < answers.length; i++) {
    const a = answers[i]!;
    if (a.code === PurchaseCode.Sold) sold.push({ orderId: a.orderId, user: buyers[i]!.user });
  }
  return sold;
}
