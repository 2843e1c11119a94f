/** The reaper: returns reserved orders whose payment deadline passed to stock. */
import { log } from '../log.ts';
import type { RedisClient as Redis } from '../redis/client.ts';
import { expireDue } from './store.ts';
import type { SaleGuard } from '../redis/guard.ts';
import type { SaleKeys } from '../redis/keys.ts';

/** A sale with reserved orders is visited at least this often, whatever its deadlines said (clocks drift). */
const REVISIT_MS = 30_000;

export interface ReaperOptions {
  /**
   * The sales to reap, as they stand at each pass, each with what the node knows of it
   * (redis/guard.ts) and its reserved orders as of the last sync (none: it is visited each pass).
   */
  readonly sales: () => readonly { readonly keys: SaleKeys; readonly guard: SaleGuard; readonly reserved?: () => number }[];
  /** False while the node's Redis is down or just back and not yet checked for lost writes: no pass then. */
  readonly ready?: () => boolean;
  /** Redis outages seen so far (redis/health.ts): after one every sale is visited at the next pass, its deadlines having moved. */
  readonly outages?: () => number;
  readonly intervalMs: number;
  /** Stream entries walked per script call; a long backlog takes several calls, not one long one. */
  readonly batch?: number;
  /**
   * A call Redis runs this much later than it was sent releases nothing: the reaper has given up
   * on it by then (its command timed out) and would never know what it released.
   */
  readonly lateMs?: number;
  /**
   * Called after orders of a sale were released (with their users, and when the pass that
   * released them began), so its sold-out flag and local stock follow at once.
   */
  readonly onReleased?: (sale: SaleKeys, released: readonly { orderId: string; user: string }[], startedAt: number) => void;
}

/**
 * Several reapers (one per node) may run at once: settle-4.lua releases each order exactly
 * once, and never one that was paid in the same instant.
 */
export class Reaper {
  readonly #redis: Redis;
  readonly #options: ReaperOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<number> | undefined;
  #failing = false;
  /** Per sale: its reserved orders, the next deadline and when it was last visited. */
  readonly #visits = new Map<string, { reserved: number; nextDue: number; at: number }>();
  #outages = 0;

  constructor(redis: Redis, options: ReaperOptions) {
    this.#redis = redis;
    this.#options = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.reap(), this.#options.intervalMs);
  }

  /** Releases every order due now; returns how many. One pass at a time. */
  reap(): Promise<number> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<number> {
    const batch = this.#options.batch ?? 500;
    let released = 0;
    try {
      if (this.#options.ready?.() === false) return 0;
      const outages = this.#options.outages?.() ?? 0;
      if (outages !== this.#outages) this.forget();
      this.#outages = outages;
      for (const { keys, guard, reserved } of this.#options.sales()) {
        const held = reserved?.();
        if (held !== undefined && !this.#due(keys.sale, held)) continue;
        for (;;) {
          const startedAt = Date.now();
          const { ids, users, more, nextDue } = await expireDue(this.#redis, keys, batch, guard, this.#options.lateMs ?? 0);
          if (held !== undefined) this.#visits.set(keys.sale, { reserved: held, nextDue, at: startedAt });
          released += ids.length;
          if (ids.length > 0)
            this.#options.onReleased?.(
              keys,
              ids.map((orderId, i) => ({ orderId, user: users[i]! })),
              startedAt,
            );
          if (!more) break;
        }
      }
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) log.warn(`[reaper] cannot release expired orders: ${error instanceof Error ? error.message : error}`);
      this.#failing = true;
    }
    return released;
  }

  /**
   * Whether a sale needs a visit: it holds reserved orders, and one is due, new ones came, or it
   * was not visited for a while. A sale without reserved orders costs nothing, however many there are.
   */
  #due(sale: string, reserved: number): boolean {
    if (reserved === 0) return false;
    const last = this.#visits.get(sale);
    const now = Date.now();
    return !last || last.reserved !== reserved || (last.nextDue > 0 && now >= last.nextDue) || now - last.at >= REVISIT_MS;
  }

  /** A restore may have put reserved orders back: visit every sale in the next pass. */
  forget(): void {
    this.#visits.clear();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
