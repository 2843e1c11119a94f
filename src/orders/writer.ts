/** The order writer: copies a sale's order events from its Redis stream into the database. */
import { Cluster } from 'ioredis';
import { log } from '../log.ts';
import { hashSlot } from '../redis/slot.ts';
import type { RedisClient as Redis } from '../redis/client.ts';
import { compareOrderIds, idTime } from './model.ts';
import { REAPED_FIELD, WRITERS_GROUP, type SaleKeys } from '../redis/keys.ts';
import type { OrderDb, SaleEvents } from './db.ts';
import { parseEvent, type OrderEvent } from './events.ts';

export interface OrderWriterOptions {
  /** The sales whose streams to write, as they stand at each round. */
  readonly sales: () => readonly SaleKeys[];
  /** Consumer group shared by every writer of every node. */
  readonly group?: string;
  /** This writer's name in the group; a restarted writer with the same name resumes its own pending entries. */
  readonly consumer: string;
  /** Entries another writer read but did not acknowledge for this long are taken over. */
  readonly claimIdleMs?: number;
  readonly count?: number;
  /** How long to wait before the next round when a round found nothing. */
  readonly pollMs?: number;
  /**
   * On one Redis, wait this long in Redis for new entries (XREADGROUP BLOCK) instead of polling:
   * an idle node then reads once a second, and a new order is read at once. 0 (default): poll.
   */
  readonly blockMs?: number;
  /** Entries older than this are trimmed from the stream, once every group acknowledged them. */
  readonly keepMs?: number;
  /** Peak shaving while a sale is hot; see {@link Shaving}. Default: {@link DEFAULT_SHAVING}. */
  readonly shaving?: Shaving;
}

/**
 * Peak shaving: while orders pour in faster than `hotRate` a second (a spike is on), the writer
 * writes at most `maxRate` a second and lets the stream absorb the rest, leaving the cores to the
 * buyers; once the rush is over it catches up at full speed. It never falls more than `maxLagMs`
 * behind: at that lag it writes at full speed whatever the rate. maxLagMs 0 turns shaving off.
 */
export interface Shaving {
  readonly hotRate: number;
  readonly maxRate: number;
  readonly maxLagMs: number;
}

export const DEFAULT_SHAVING: Shaving = { hotRate: 1000, maxRate: 5000, maxLagMs: 60_000 };

type Entry = [id: string, fields: string[]];

/** The fewest entries a round reads of each stream, however many are busy. */
const MIN_COUNT = 16;

/** How often the order rate is read: a round every few ms read every hot stream's XINFO each time. */
const RATE_MS = 250;

/**
 * At-least-once delivery made exactly-once by the database: events are applied in one
 * transaction, XACKed only after it commits, and applying them again changes nothing. Entries a
 * dead writer left pending are claimed (XAUTOCLAIM) and finished by a live one.
 */
export class OrderWriter {
  readonly #redis: Redis;
  readonly #db: OrderDb;
  readonly #sales: () => readonly SaleKeys[];
  readonly #groups = new Set<string>();
  readonly #group: string;
  readonly #consumer: string;
  readonly #claimIdleMs: number;
  readonly #count: number;
  readonly #pollMs: number;
  readonly #blockMs: number;
  #blocked = false;
  /** In a blocking read now: nothing of this round is left to commit. */
  #waiting = false;
  /** Streams that had entries in the last read that found any: they share a round's `count`. */
  #busy = 1;
  readonly #keepMs: number;
  #running: Promise<void> | undefined;
  #stopping = false;
  #failing = false;
  #lastTrim = 0;
  #lastFullTrim = 0;
  /** Streams written to since the last trim, and since the last rate reading. */
  readonly #toTrim = new Set<string>();
  readonly #hot = new Set<string>();
  /** Read this writer's own pending entries next round: at start, and after a failure. */
  #ownPending = true;
  #claimCursor = 0;
  readonly #shaving: Shaving;
  /** Per stream: `entries-added` and when it was read, to tell the rate orders arrive at now. */
  readonly #added = new Map<string, { count: number; at: number }>();
  /** The last reading of the order rate, and when (performance.now()). */
  #rate = 0;
  #rateAt = -Infinity;
  /** Milliseconds (Redis clock) of the newest entry the last round wrote. */
  #lastWrittenAt = 0;

  constructor(redis: Redis, db: OrderDb, options: OrderWriterOptions) {
    this.#redis = redis;
    this.#db = db;
    this.#sales = options.sales;
    this.#group = options.group ?? WRITERS_GROUP;
    this.#consumer = options.consumer;
    this.#claimIdleMs = options.claimIdleMs ?? 30_000;
    this.#count = options.count ?? 500;
    this.#pollMs = options.pollMs ?? 100;
    this.#blockMs = options.blockMs ?? 0;
    this.#keepMs = options.keepMs ?? 24 * 3600_000;
    this.#shaving = options.shaving ?? DEFAULT_SHAVING;
  }

  /** Creates the group on a sale's stream (and the stream) unless this writer did already. */
  async ensureGroup(keys: SaleKeys): Promise<void> {
    if (this.#groups.has(keys.orders)) return;
    // A sale archived a moment ago (its keys gone, this writer not told yet) must not get an
    // empty stream back: MKSTREAM would leave one behind for good.
    if ((await this.#redis.exists(keys.sale)) === 0) return;
    try {
      await this.#redis.xgroup('CREATE', keys.orders, this.#group, '0', 'MKSTREAM');
    } catch (error) {
      if (!String(error).includes('BUSYGROUP')) throw error;
    }
    this.#groups.add(keys.orders);
  }

  /**
   * One round: this writer's own pending entries (after a start or a failure), entries claimed
   * from dead writers (a slice of the sales per round), then new entries — of every sale of a
   * Redis slot in one read, so a round costs the same for 1 or 1 000 sales (3 reads per sale
   * per round cost 3 000 commands a second for 1 000 idle ones). Returns the events written.
   * A read blocks (BLOCK) only when the round found nothing else to do and one read covers every
   * sale; otherwise it returns at once, so one connection serves any number of sales and shards.
   */
  async step(): Promise<number> {
    const sales = this.#sales();
    for (const keys of sales) await this.ensureGroup(keys);
    let written = 0;
    if (this.#ownPending) {
      for (const keys of sales) written += await this.#write([[keys, await this.#readGroup(keys, '0')]]);
      this.#ownPending = false;
    }
    for (const keys of this.#claimSlice(sales)) written += await this.#write([[keys, await this.#claim(keys)]]);
    const groups = this.#bySlot(sales.filter((keys) => this.#groups.has(keys.orders)));
    // Block only when nothing else is to be done in this round and one read covers every sale.
    this.#blocked = written === 0 && groups.length === 1 && this.#blockMs > 0 && !this.#stopping;
    const block = this.#blocked ? ['BLOCK', this.#blockMs] : [];
    // COUNT is per stream: 500 from each of 100 hot sales was one reply of 50 000 entries, and
    // Redis, busy building it, kept every buyer waiting 50-200 ms. A round reads about `count` in
    // all, shared among the streams that had entries last time (at least MIN_COUNT each).
    const perStream = Math.max(MIN_COUNT, Math.floor(this.#count / this.#busy));
    let busy = 0;
    for (const group of groups) {
      this.#waiting = this.#blocked;
      const reply = await this.#redis.call(
        'XREADGROUP',
        'GROUP',
        this.#group,
        this.#consumer,
        'COUNT',
        perStream,
        ...block,
        'STREAMS',
        ...group.map((keys) => keys.orders),
        ...group.map(() => '>'),
      );
      this.#waiting = false;
      const byStream = new Map(group.map((keys) => [keys.orders, keys]));
      const read: [SaleKeys, Entry[]][] = [];
      for (const [stream, entries] of streamsOf(reply)) {
        const keys = byStream.get(stream);
        if (keys) read.push([keys, entries]);
        if (entries.length) busy++;
      }
      written += await this.#write(read);
    }
    if (busy > 0) this.#busy = busy;
    await this.#trimWritten(sales);
    return written;
  }

  /** The sales whose turn it is to have dead writers' entries claimed: each one every claimIdleMs. */
  #claimSlice(sales: readonly SaleKeys[]): SaleKeys[] {
    const slice = Math.min(sales.length, Math.ceil((sales.length * this.#pollMs) / Math.max(this.#claimIdleMs, 1)));
    const out: SaleKeys[] = [];
    for (let i = 0; i < slice; i++) out.push(sales[(this.#claimCursor + i) % sales.length]!);
    this.#claimCursor = sales.length ? (this.#claimCursor + slice) % sales.length : 0;
    return out;
  }

  async #claim(keys: SaleKeys): Promise<Entry[]> {
    const [, claimed] = (await this.#redis.xautoclaim(
      keys.orders,
      this.#group,
      this.#consumer,
      this.#claimIdleMs,
      '0-0',
      'COUNT',
      this.#count,
    )) as [string, Entry[]];
    return claimed.filter((e) => e?.[1]);
  }

  /** The sales in groups one read can take: all of them on one Redis, those of one slot on a Cluster. */
  #bySlot(sales: readonly SaleKeys[]): SaleKeys[][] {
    if (!(this.#redis instanceof Cluster)) return sales.length ? [[...sales]] : [];
    const groups = new Map<number, SaleKeys[]>();
    for (const keys of sales) {
      const slot = hashSlot(keys.orders);
      groups.set(slot, [...(groups.get(slot) ?? []), keys]);
    }
    return [...groups.values()];
  }

  /** Trims, every 10 s, the streams written to since (and every stream once an hour: entries age past keepMs). */
  async #trimWritten(sales: readonly SaleKeys[]): Promise<void> {
    const now = Date.now();
    if (now - this.#lastTrim < 10_000) return;
    this.#lastTrim = now;
    const all = now - this.#lastFullTrim >= 3600_000;
    if (all) this.#lastFullTrim = now;
    for (const keys of sales) if (all || this.#toTrim.has(keys.orders)) await this.trim(keys);
    this.#toTrim.clear();
  }

  async #readGroup(keys: SaleKeys, from: '0' | '>'): Promise<Entry[]> {
    return streamEntries(
      await this.#redis.call('XREADGROUP', 'GROUP', this.#group, this.#consumer, 'COUNT', this.#count, 'STREAMS', keys.orders, from),
    );
  }

  /**
   * Writes what one read returned, of one or more sales: every event in one transaction, then
   * the acknowledgements (sent together: one round trip). Each sale its own commit and XACK cost
   * a round over 100 hot sales 100 commits and 100 round trips.
   */
  async #write(read: readonly [SaleKeys, Entry[]][]): Promise<number> {
    const batches: SaleEvents[] = [];
    for (const [keys, entries] of read) {
      if (entries.length === 0) continue;
      this.#toTrim.add(keys.orders);
      this.#hot.add(keys.orders);
      this.#lastWrittenAt = Math.max(this.#lastWrittenAt, idTime(entries.at(-1)![0]));
      const events = entries.map(([id, fields]) => parseEvent(id, fields)).filter((e): e is OrderEvent => e !== null);
      if (events.length) batches.push({ sale: keys.sale, events });
    }
    if (batches.length) await this.#db.apply(batches);
    // Only now, with the rows committed, may Redis forget these entries for this group.
    await Promise.all(
      read
        .filter(([, entries]) => entries.length)
        .map(([keys, entries]) => this.#redis.xack(keys.orders, this.#group, ...entries.map(([id]) => id))),
    );
    return batches.reduce((sum, { events }) => sum + events.length, 0);
  }

  /**
   * Removes entries older than keepMs that every consumer group has acknowledged (below the
   * oldest pending entry of each group, and at or below what each group was delivered) and that
   * the reapers passed: a new order is only its `created` entry until then (settle-4.lua).
   */
  async trim(keys: SaleKeys): Promise<number> {
    const reaped = await this.#redis.hget(keys.sale, REAPED_FIELD);
    if (reaped === null) return 0;
    const groups = (await this.#redis.xinfo('GROUPS', keys.orders)) as (string | number)[][];
    let safe = `${Date.now() - this.#keepMs}-0`;
    if (compareOrderIds(reaped, safe) < 0) safe = reaped;
    for (const info of groups) {
      const field = (name: string) => info[info.indexOf(name) + 1];
      let bound = String(field('last-delivered-id'));
      if (Number(field('pending')) > 0) {
        const [, oldest] = (await this.#redis.xpending(keys.orders, String(field('name')))) as [number, string, string, unknown];
        bound = oldest;
      }
      if (compareOrderIds(bound, safe) < 0) safe = bound;
    }
    if (safe === '0-0' || idTime(safe) <= 0) return 0;
    return Number(await this.#redis.xtrim(keys.orders, 'MINID', safe));
  }

  /**
   * How long to pause after a round that wrote `written` events: the poll interval when there was
   * nothing, the shaving pause while a sale is hot and the lag allows it, else none.
   */
  async #pauseAfter(written: number): Promise<number> {
    if (written === 0) return this.#blocked ? 0 : this.#pollMs;
    const { hotRate, maxRate, maxLagMs } = this.#shaving;
    if (maxLagMs === 0 || Date.now() - this.#lastWrittenAt >= maxLagMs) return 0;
    const hot = (await this.#orderRate()) > hotRate;
    return hot ? Math.ceil((written / maxRate) * 1000) : 0;
  }

  /**
   * Orders a second arriving now on all the streams written to (Redis 7's `entries-added`; 0 where
   * unknown), read at most every RATE_MS. The sum, not the busiest stream: the cores are shared,
   * and 100 sales selling 60 a second each are a spike as much as one selling 6 000.
   */
  async #orderRate(): Promise<number> {
    const now = performance.now();
    if (now - this.#rateAt < RATE_MS) return this.#rate;
    const hot = this.#sales().filter((keys) => this.#hot.has(keys.orders));
    this.#hot.clear();
    // Sent together: one round trip however many sales are hot.
    const infos = await Promise.all(hot.map((keys) => this.#redis.xinfo('STREAM', keys.orders).catch(() => [])));
    let total = 0;
    hot.forEach((keys, i) => {
      const info = infos[i] as (string | number)[];
      const index = info.indexOf('entries-added');
      if (index < 0) return;
      const count = Number(info[index + 1]);
      const before = this.#added.get(keys.orders);
      this.#added.set(keys.orders, { count, at: now });
      if (before && now > before.at && count >= before.count) total += ((count - before.count) * 1000) / (now - before.at);
    });
    [this.#rate, this.#rateAt] = [total, now];
    return total;
  }

  /** Runs step() until stop(); a failure (Redis or database) is reported once and retried. */
  start(): void {
    this.#running ??= (async () => {
      while (!this.#stopping) {
        try {
          const pause = await this.#pauseAfter(await this.step());
          if (pause > 0) await Bun.sleep(pause);
          this.#failing = false;
        } catch (error) {
          // A read left waiting by stop() ends with its connection: nothing was read, nothing to say.
          if (this.#stopping) break;
          const message = error instanceof Error ? error.message : String(error);
          // A stream deleted under the read (its sale archived, or Redis restarted without it):
          // the groups are made again below for the sales that still exist; nothing to report.
          const gone = /^(NOGROUP|UNBLOCKED)/.test(message);
          if (!this.#failing && !gone) log.warn(`[order writer] ${message}; retrying`);
          this.#failing = !gone;
          // Redis may have restarted without the group: create it again. Entries read but not
          // acknowledged (the database failed) are this writer's pending ones: read them again.
          this.#groups.clear();
          this.#ownPending = true;
          await Bun.sleep(gone ? 20 : 500);
        }
      }
    })();
  }

  /**
   * Finishes the current round (its events are committed and acknowledged), then stops. A read
   * waiting in Redis for new entries (BLOCK, up to a second) is not waited for: every stop took
   * that second and said so at WARN. Close the connection after: what that read may still bring
   * stays pending for this consumer, read again at its next start.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (!this.#waiting) await this.#running;
  }
}

/**
 * The entries of a one-stream XREAD/XREADGROUP reply sent with `call`: ioredis answers
 * `[key, entries]` there (and `[[key, entries]]` from its typed methods); nil when nothing came.
 */
export function streamEntries(reply: unknown): Entry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const first = typeof reply[0] === 'string' ? reply : reply[0];
  return Array.isArray(first?.[1]) ? (first[1] as Entry[]) : [];
}

/**
 * The entries per stream of a many-stream XREADGROUP reply sent with `call` (nil when nothing
 * came): ioredis gives RESP3's map flat, `[key, entries, key, entries]`, and RESP2's as pairs.
 */
export function streamsOf(reply: unknown): [stream: string, entries: Entry[]][] {
  if (!Array.isArray(reply)) return [];
  const pairs: unknown[][] = typeof reply[0] === 'string' ? [] : (reply as unknown[][]);
  if (typeof reply[0] === 'string') for (let i = 0; i < reply.length; i += 2) pairs.push([reply[i], reply[i + 1]]);
  return pairs.filter((r) => Array.isArray(r) && Array.isArray(r[1])).map((r) => [String(r[0]), r[1] as Entry[]]);
}
