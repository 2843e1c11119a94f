/**
 * The supervisor's admission task: every sync period, for each sale with a waiting room, it
 * draws the pre-queue once the sale opens (draw-3.lua), moves the serving counter as the stock
 * allows (admit-3.lua) and publishes the result into the sale's board for the workers. Every
 * node runs one; they agree through Redis, so any number of them admit as one would.
 */
import { log } from '../log.ts';
import type { RedisClient as Redis } from '../redis/client.ts';
import { queueKeys } from '../redis/keys.ts';
import { admit, draw } from '../redis/queue.ts';
import { STEP_RING, type QueueBoard } from './board.ts';

/** Admitted-but-not-bought users per remaining ticket: a few more than the stock, for those who never buy. */
export const ADMIT_FACTOR = 1.2;

export interface QueueSale {
  readonly id: string;
  readonly board: QueueBoard;
  /** The newest order id of the sale the node saw (includes/guard.lua). */
  readonly seen: () => string;
  /** Whether the sync's last reading found it sold out with nothing reserved (stock/local-stock.ts). */
  readonly finished?: () => boolean;
}

/** How often a node with no waiting room looks for one. */
const IDLE_LOOK_MS = 1000;

export class Admission {
  readonly #redis: Redis;
  readonly #sales: () => readonly QueueSale[];
  readonly #intervalMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  /** When each finished sale last stepped (Date.now()). */
  readonly #lastStep = new Map<string, number>();
  #running: Promise<void> | undefined;
  #failing = false;

  readonly #ready: () => boolean;

  /** `ready`: false while Redis is down or just back and not yet checked for lost writes (no round then). */
  constructor(redis: Redis, sales: () => readonly QueueSale[], intervalMs: number, ready: () => boolean = () => true) {
    this.#redis = redis;
    this.#sales = sales;
    this.#intervalMs = intervalMs;
    this.#ready = ready;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#next();
  }

  /**
   * Rounds every intervalMs while a sale has a waiting room; without one, a look every
   * IDLE_LOOK_MS (with the sync's, a round every 100 ms over 1 000 sales without a waiting room
   * cost an idle node ~2 % of a core). A waiting room switched on starts admitting within that second.
   */
  #next(): void {
    const delay = this.#sales().length > 0 ? this.#intervalMs : Math.max(this.#intervalMs, IDLE_LOOK_MS);
    this.#timer = setTimeout(async () => {
      await this.tick();
      if (this.#started) this.#next();
    }, delay);
  }

  /** One round (skipped while the previous one still runs). */
  tick(): Promise<void> {
    this.#running ??= this.#round().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #round(): Promise<void> {
    if (!this.#ready()) return;
    try {
      const now = Date.now();
      await Promise.all(this.#sales().map((sale) => (sale.board.isQueued() && this.#due(sale, now) ? this.#step(sale) : undefined)));
      if (this.#failing) log.info('[queue] admissions resumed');
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) log.warn(`[queue] cannot admit: ${error instanceof Error ? error.message : error} (retrying)`);
      this.#failing = true;
    }
  }

  /**
   * A sale sold out for good (no reserved order can come back), as its last step and the sync's
   * last reading both say, steps once every IDLE_LOOK_MS: a finished sale's admissions every
   * 100 ms were most of an idle node's Redis commands (an admit script, a ZCARD, an LRANGE each).
   * Stock added or a reset shows in the sync's reading first, and the next round steps.
   */
  #due({ id, board, finished }: QueueSale, now: number): boolean {
    if (!board.view().final || !finished?.()) {
      this.#lastStep.delete(id);
      return true;
    }
    if (now - (this.#lastStep.get(id) ?? 0) < IDLE_LOOK_MS) return false;
    this.#lastStep.set(id, now);
    return true;
  }

  async #step({ id, board, seen }: QueueSale): Promise<void> {
    const keys = queueKeys(id);
    const view = board.view();
    // Steps at least this far apart, so one admission window's steps fit the board's ring.
    const minStepMs = Math.max(this.#intervalMs, Math.ceil(view.admissionMs / (STEP_RING - 24)));
    let state = await admit(this.#redis, keys, ADMIT_FACTOR, minStepMs, seen());
    if (state && !state.drawn && state.pre > 0 && (await draw(this.#redis, keys, seen())) >= 0)
      state = await admit(this.#redis, keys, ADMIT_FACTOR, minStepMs, seen());
    if (state) board.publish(state);
  }

  async stop(): Promise<void> {
    this.#started = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
