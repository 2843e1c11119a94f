/** The supervisor's watch over lost writes: checks each sale at start, when the sync sees it behind, and every few seconds. */
import { log } from '../log.ts';
import type { RedisClient as Redis } from '../redis/client.ts';
import { RECOVERING_FIELD, type SaleKeys } from '../redis/keys.ts';
import type { OrderDb } from './db.ts';
import type { JournalEntry } from './journal.ts';
import { behindReason, describeReconcile, reconcileSale } from './reconcile.ts';

export interface WatchedSale {
  readonly id: string;
  readonly keys: SaleKeys;
  /** The newest order id this node saw Redis make for the sale. */
  seen(): string;
}

export interface ReconcilerOptions {
  readonly sales: () => readonly WatchedSale[];
  readonly payWindowMs: number;
  /** How often every sale's stream is compared with the database's mark. */
  readonly intervalMs: number;
  readonly say: (line: string) => void;
  /** A sale was restored and sells again: sync the local stock now. */
  readonly onResumed?: () => void;
  /** This node's journal entries of a sale (orders/journal.ts). */
  readonly journaled?: (sale: string) => readonly JournalEntry[];
}

/**
 * Without a database (SPIKE_WRITER=0) there is nothing to restore from: a sale seen behind stays
 * stopped (purchases answer code -3) until a person runs `bun run audit -- --repair`.
 */
export class Reconciler {
  readonly #redis: Redis;
  readonly #db: OrderDb | undefined;
  readonly #options: ReconcilerOptions;
  readonly #running = new Map<string, Promise<void>>();
  readonly #reported = new Set<string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #failing = false;

  constructor(redis: Redis, db: OrderDb | undefined, options: ReconcilerOptions) {
    this.#redis = redis;
    this.#db = db;
    this.#options = options;
  }

  /** Checks every sale once; at start this runs before any worker sells. */
  async checkAll(): Promise<void> {
    await Promise.all(this.#options.sales().map((sale) => this.check(sale.id)));
  }

  /** Checks sale `id` and restores it when it is behind; one run per sale at a time. */
  check(id: string): Promise<void> {
    const sale = this.#options.sales().find((s) => s.id === id);
    if (!sale) return Promise.resolve();
    let run = this.#running.get(id);
    if (!run) {
      run = this.#run(sale).finally(() => this.#running.delete(id));
      this.#running.set(id, run);
    }
    return run;
  }

  async #run(sale: WatchedSale): Promise<void> {
    try {
      if (!this.#db) return await this.#cannot(sale);
      const reason = await behindReason(this.#redis, sale.keys, this.#db, sale.seen());
      if (!reason) return;
      this.#options.say(`sale ${sale.id}: stopped selling: ${reason}; restoring its orders from the database`);
      const report = await reconcileSale(this.#redis, sale.keys, this.#db, {
        reason,
        seen: sale.seen(),
        payWindowMs: this.#options.payWindowMs,
        journaled: this.#options.journaled?.(sale.id),
      });
      this.#options.say(describeReconcile(report));
      this.#options.onResumed?.();
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) log.warn(`[reconcile] sale ${sale.id}: ${error instanceof Error ? error.message : error}; trying again`);
      this.#failing = true;
    }
  }

  async #cannot(sale: WatchedSale): Promise<void> {
    const reason = await this.#redis.hget(sale.keys.sale, RECOVERING_FIELD);
    if (!reason || this.#reported.has(sale.id)) return;
    this.#reported.add(sale.id);
    this.#options.say(
      `sale ${sale.id}: stopped selling: ${reason}; no order database to restore from (SPIKE_WRITER=0): ` +
        `run 'bun run audit -- --repair --sale ${sale.id}' to let it sell again`,
    );
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.checkAll(), this.#options.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all(this.#running.values());
  }
}
