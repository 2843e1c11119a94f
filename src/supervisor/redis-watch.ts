/**
 * The supervisor's watch over its Redis, private or not: a TIME command every quarter second. It says in
 * one `warning:` line when Redis stops answering and in one line when it answers again, keeps the
 * node's RedisHealth (redis/health.ts) for the workers, and, when Redis is back, first records
 * the outage in every sale (payment deadlines move by it) and checks every sale for lost writes,
 * and only then lets the background tasks that write (reaper, admissions) run again.
 */
import { log } from '../log.ts';
import type { RedisClient } from '../redis/client.ts';
import type { RedisHealth } from '../redis/health.ts';

export interface RedisWatchOptions {
  /** The Redis for messages, without a password. */
  readonly described: string;
  readonly intervalMs?: number;
  /** Redis answers again after an outage: record it and check for lost writes; a throw means "try again at the next probe". */
  readonly onBack: (outage: string) => Promise<void>;
}

export class RedisWatch {
  readonly #redis: RedisClient;
  readonly #health: RedisHealth;
  readonly #options: RedisWatchOptions;
  #lastOk = Date.now();
  #recovered = true;
  #probing = false;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(redis: RedisClient, health: RedisHealth, options: RedisWatchOptions) {
    this.#redis = redis;
    this.#health = health;
    this.#options = options;
  }

  /** True while Redis answers and, after an outage, once the recovery steps are done. */
  ready(): boolean {
    return this.#health.isUp() && this.#recovered;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.probe(), this.#options.intervalMs ?? 250);
  }

  /** One probe (skipped while the previous one still waits). */
  async probe(): Promise<void> {
    if (this.#probing) return;
    this.#probing = true;
    try {
      // TIME rather than PING: the same round trip, and it tells Redis' clock (health.redisNow).
      const sent = Date.now();
      const [seconds, micros] = (await this.#redis.time()).map(Number) as [number, number];
      this.#health.setOffset(seconds * 1000 + micros / 1000 - (sent + Date.now()) / 2);
      await this.#answered();
    } catch (error) {
      this.#silent(error);
    } finally {
      this.#probing = false;
    }
  }

  async #answered(): Promise<void> {
    const ended = this.#health.markUp();
    const outage = ended ? this.#health.outageArgument() : '';
    this.#lastOk = Date.now();
    if (ended) {
      log.info(`Redis at ${this.#options.described} answers again after ${((ended.end - ended.start) / 1000).toFixed(1)} s`);
      this.#recovered = false;
      this.#pending = outage;
    }
    if (this.#recovered) return;
    try {
      await this.#options.onBack(this.#pending);
      this.#recovered = true;
    } catch (error) {
      log.warn(`[redis watch] after the outage: ${error instanceof Error ? error.message : error}; trying again`);
    }
  }

  #pending = '';

  #silent(error: unknown): void {
    if (!this.#health.markDown(this.#lastOk)) return;
    const why = error instanceof Error ? error.message : String(error);
    log.warn(`Redis at ${this.#options.described} does not answer (${why}); buyers get 503 until it is back`);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
