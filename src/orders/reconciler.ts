/** The supervisor's watch over lost writes: checks each sale at start, when the sync sees it behind or taking orders, and every minute. */
import { log } from '../log.ts';
import type { RedisClient as Redis } from '../redis/client.ts';
import { LAST_ID_FIELD, NODES_KEY, RECOVERING_FIELD, restoredField, TOTAL_FIELD, type SaleKeys } from '../redis/keys.ts';
import { compareOrderIds } from './model.ts';
import type { OrderDb } from './db.ts';
import type { JournalEntry } from './journal.ts';
import type { SaleSettings } from './sale-record.ts';
import { behindReason, describeReconcile, reconcileSale } from './reconcile.ts';

/** How long a recovery may wait for a node with a database before a node without one says it is stuck. */
const STUCK_MS = 15_000;

export interface WatchedSale {
  readonly id: string;
  readonly keys: SaleKeys;
  /** The newest order id this node saw Redis make for the sale. */
  seen(): string;
}

export interface ReconcilerOptions {
  /** This node's id: its sign of life, and its journal's part of a recovery, are recorded under it. */
  readonly node: string;
  readonly sales: () => readonly WatchedSale[];
  /** One sale by id (a lookup, not a walk over every sale: a check runs per sale). */
  readonly sale: (id: string) => WatchedSale | undefined;
  readonly payWindowMs: number;
  /** How often the sales whose orders moved are compared with the database's mark. */
  readonly intervalMs: number;
  /** How long any other sale may go unchecked (a slice of them each interval). Default 60 s. */
  readonly sweepMs?: number;
  readonly say: (line: string) => void;
  /** A sale was restored and sells again: sync the local stock now. */
  readonly onResumed?: () => void;
  /** This node's journal entries of a sale (orders/journal.ts). */
  readonly journaled?: (sale: string) => readonly JournalEntry[];
  /** What the operator last set of a sale through this node (orders/sale-record.ts). */
  readonly recorded?: (sale: string) => SaleSettings | undefined;
}

/**
 * Without a database (SPIKE_WRITER=0) a node adds only its journal to a recovery; a sale no node
 * with a database restores stays stopped (purchases answer code -3) until a person runs
 * `bun run audit -- --repair`. Every interval the node also writes its sign of life (NODES_KEY):
 * a recovery waits for the journals of the live nodes.
 */
export class Reconciler {
  readonly #redis: Redis;
  readonly #db: OrderDb | undefined;
  readonly #options: ReconcilerOptions;
  readonly #running = new Map<string, Promise<void>>();
  readonly #reported = new Set<string>();
  /** When this node (without a database) added its journal to a sale's recovery. */
  readonly #addedAt = new Map<string, number>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #failing = false;
  /** Sales whose newest order moved since the last sweep (the sync says so). */
  readonly #moved = new Set<string>();
  #cursor = 0;

  constructor(redis: Redis, db: OrderDb | undefined, options: ReconcilerOptions) {
    this.#redis = redis;
    this.#db = db;
    this.#options = options;
  }

  /** Checks every sale once; at start this runs before any worker sells. */
  async checkAll(): Promise<void> {
    await Promise.all(this.#options.sales().map((sale) => this.check(sale.id)));
  }

  /** Sale `id` took orders: check it in the next sweep, not only in its turn of the slow one. */
  watchClosely(id: string): void {
    this.#moved.add(id);
  }

  /**
   * The sales that took orders since the last sweep, and a slice of the rest: a sale nothing
   * happens to costs a check every `sweepMs`, not every interval (1 000 idle sales cost 500
   * stream reads and database queries a second that way).
   */
  async sweep(): Promise<void> {
    await this.#redis.hset(NODES_KEY, this.#options.node, Date.now()).catch(() => {});
    const all = this.#options.sales();
    const slice = Math.ceil((all.length * this.#options.intervalMs) / (this.#options.sweepMs ?? 60_000));
    const ids = new Set(this.#moved);
    this.#moved.clear();
    for (let i = 0; i < Math.min(slice, all.length); i++) ids.add(all[(this.#cursor + i) % all.length]!.id);
    this.#cursor = all.length ? (this.#cursor + slice) % all.length : 0;
    await Promise.all([...ids].map((id) => this.check(id)));
  }

  /** Checks sale `id` and restores it when it is behind; one run per sale at a time. */
  check(id: string): Promise<void> {
    const sale = this.#options.sale(id);
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
      const reason =
        (this.#db ? await behindReason(this.#redis, sale.keys, this.#db, sale.seen()) : await this.#toAdd(sale)) ??
        (await this.#lostTotal(sale));
      if (!reason) {
        if (!this.#db) await this.#cannot(sale);
        return;
      }
      this.#options.say(
        `sale ${sale.id}: stopped selling: ${reason}; restoring its orders from the ${this.#db ? 'database and ' : ''}journal`,
      );
      const report = await reconcileSale(this.#redis, sale.keys, this.#db, {
        reason,
        node: this.#options.node,
        seen: sale.seen(),
        payWindowMs: this.#options.payWindowMs,
        journaled: this.#options.journaled?.(sale.id),
        recorded: this.#options.recorded?.(sale.id),
        beatMs: this.#options.intervalMs,
      });
      this.#options.say(describeReconcile(report));
      if (!this.#db) this.#addedAt.set(sale.id, Date.now());
      if (report.waitedFor !== undefined) this.#options.onResumed?.();
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) log.warn(`[reconcile] sale ${sale.id}: ${error instanceof Error ? error.message : error}; trying again`);
      this.#failing = true;
    }
  }

  /**
   * Without a database: the recovery this node has not added its journal to yet, if any; a Redis
   * older than what this node saw is a recovery it starts (a node with a database restores and
   * resumes it: the orders only this node sold were otherwise never noticed lost).
   */
  async #toAdd(sale: WatchedSale): Promise<string | undefined> {
    // Taken before the read: a sale this node made while Redis answered was taken for a loss, and
    // stopped every node's sale for good (no node had a database to resume it).
    const seen = sale.seen();
    const [recovering, added, lastId] = await this.#redis.hmget(
      sale.keys.sale,
      RECOVERING_FIELD,
      restoredField(this.#options.node),
      LAST_ID_FIELD,
    );
    if (recovering === null && lastId && compareOrderIds(lastId, seen) < 0)
      return `Redis lost writes: its newest order is ${lastId}, node ${this.#options.node} saw ${seen}`;
    return recovering !== null && recovering !== added ? recovering : undefined;
  }

  /**
   * A total below the one the operator set through this node: stock is only ever added, so Redis
   * lost the addition (an older copy), even when no order was lost with it.
   */
  async #lostTotal(sale: WatchedSale): Promise<string | undefined> {
    const recorded = this.#options.recorded?.(sale.id)?.total;
    if (recorded === undefined) return undefined;
    const total = await this.#redis.hget(sale.keys.sale, TOTAL_FIELD);
    if (total === null || Number(total) >= recorded) return undefined;
    return `Redis lost writes: the sale has ${total} tickets, the operator made it ${recorded}`;
  }

  /** Said once when a recovery this node added its journal to is still not resumed a while later: no node with a database took it up. */
  async #cannot(sale: WatchedSale): Promise<void> {
    const added = this.#addedAt.get(sale.id);
    if (added === undefined || Date.now() - added < STUCK_MS) return;
    const reason = await this.#redis.hget(sale.keys.sale, RECOVERING_FIELD);
    if (!reason) this.#addedAt.delete(sale.id);
    if (!reason || this.#reported.has(sale.id)) return;
    this.#reported.add(sale.id);
    this.#options.say(
      `sale ${sale.id}: stopped selling: ${reason}; no order database to restore from (SPIKE_WRITER=0): ` +
        `run 'bun run audit -- --repair --sale ${sale.id}' to let it sell again`,
    );
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.sweep(), this.#options.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all(this.#running.values());
  }
}
