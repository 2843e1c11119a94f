/**
 * The node's figures, taken once a second by one producer and shared by every dashboard stream:
 * 1 or 2 000 open dashboards cost the same (before, each stream read Redis itself: 2 000 streams
 * made 32 000 Redis commands a second). Almost everything comes from shared memory; Redis is
 * asked only for the writer's lag of a sale whose orders changed (an idle sale costs nothing).
 */
import { ALERTS, evaluate } from '../admin/alerts.ts';
import { FIGURES, History, HISTORY_MINUTES, minuteOf, type Row } from '../admin/history.ts';
import { quantile, type RequestStats } from '../http/request-stats.ts';
import { ANSWER_INDEX } from '../stock/answers.ts';
import { unwrittenEvents } from '../orders/audit.ts';
import type { RedisClient } from '../redis/client.ts';
import { ACTIONS_KEY, NAME_FIELD } from '../redis/keys.ts';
import type { RedisHealth } from '../redis/health.ts';
import type { JournalHealth } from '../orders/journal-health.ts';
import type { SaleBook, SaleEntry } from '../stock/sale-book.ts';
import type { EdgeCounts } from './edge-log.ts';

export interface TelemetryDeps {
  readonly node: string;
  readonly book: SaleBook;
  readonly redis: RedisClient;
  readonly health: RedisHealth;
  /** Whether the node can write its journal. */
  readonly journal: JournalHealth;
  readonly requests: RequestStats;
  readonly ports: readonly number[];
  readonly restarts: (worker: number) => number;
  readonly redisRestarts: () => number;
  /** What nginx answered (edge-log.ts), once nginx runs. */
  readonly edge: () => EdgeCounts | undefined;
  /** Most dashboard streams at once (SPIKE_DASHBOARD_STREAMS). */
  readonly maxStreams: number;
  /** nginx in front: whether it runs and since when (its config is read once, at its start); undefined when spike runs none. */
  readonly nginx?: () => { readonly up: boolean; readonly since: number } | undefined;
}

/** One operator action, as the admin API kept it (ACTIONS_KEY). */
export interface Action {
  readonly at: number;
  readonly operator: string;
  readonly action: string;
  readonly sale: string;
}

/** Actions shown on a dashboard. */
const ACTIONS_SHOWN = 20;
/** A sale's display name is read again after this (SPIKE_SALE_NAME may change it at a restart of any node). */
const NAME_MS = 30_000;

/** Counters the rows are the per-second differences of. */
interface Totals {
  sold: number;
  soldout: number;
  held: number;
  w4xx: number;
  w429: number;
  w503: number;
  n4xx: number;
  n429: number;
  n503: number;
  admitted: number;
  buckets: number[];
}

export class Telemetry {
  readonly #deps: TelemetryDeps;
  readonly history = new History();
  /** The same a minute at a time, for a day: the dashboard's "since start" range. */
  readonly minutes = new History(HISTORY_MINUTES);
  #minute: Row[] = [];
  /** Each open dashboard stream: how to send it a message, and how to end it. */
  readonly #streams = new Map<(message: string) => void, () => void>();
  #ended = false;
  readonly #lag = new Map<string, { key: string; lag: number | null }>();
  #actions: Action[] = [];
  readonly #names = new Map<string, { name: string | null; at: number }>();
  #previous: Totals | undefined;
  #latest = '';
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(deps: TelemetryDeps) {
    this.#deps = deps;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.tick(), 1000);
  }

  /** The workers' answers counted and timed, and what nginx answered: for the metrics too. */
  get requests(): RequestStats {
    return this.#deps.requests;
  }

  edge(): EdgeCounts | undefined {
    return this.#deps.edge();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * A new dashboard stream: the whole history first, then a tick a second; `end` ends it (a stop).
   * Its unsubscribe, or why not: 'full' when SPIKE_DASHBOARD_STREAMS are open already, 'stopping'.
   */
  subscribe(send: (message: string) => void, end: () => void): (() => void) | 'full' | 'stopping' {
    if (this.#ended) return 'stopping';
    if (this.#streams.size >= this.#deps.maxStreams) return 'full';
    this.#streams.set(send, end);
    send(
      JSON.stringify({
        type: 'hello',
        node: this.#deps.node,
        history: this.history.all(),
        minutes: this.minutes.all(),
        rules: rulesForPages(),
      }),
    );
    if (this.#latest) send(this.#latest);
    return () => this.#streams.delete(send);
  }

  get streams(): number {
    return this.#streams.size;
  }

  /** The node stops: every dashboard stream ends now, and no new one opens (a stop must never wait on a browser). */
  endStreams(): void {
    this.#ended = true;
    for (const end of [...this.#streams.values()]) end();
    this.#streams.clear();
  }

  /** Takes the figures of this second, keeps them, and sends them to every stream. */
  async tick(now = Date.now()): Promise<void> {
    const totals = this.#totals();
    const previous = this.#previous ?? totals;
    this.#previous = totals;
    // Nobody watching: only what the history row needs of each sale, without a figure object per
    // sale a second (with its snapshot, state and orders: ~10 objects a sale, 10 000 a second for
    // 1 000 idle sales).
    const watched = this.#streams.size > 0;
    if (watched) await this.#readNamesAndActions(now);
    const entries = this.#deps.book.all();
    const sales = watched ? await Promise.all(entries.map((entry) => this.#sale(entry, now))) : await this.#brief(entries);
    const row = this.#row(now, totals, previous, sales);
    this.history.push(row);
    const minute = this.#toMinute(row);
    const alerts = evaluate(this.history);
    // Nobody watching: no message. (Every sale's figures as JSON each second were most of an idle
    // node's work with 1 000 sales; a dashboard that opens gets its first tick within a second.)
    if (this.#streams.size === 0) {
      this.#latest = '';
      return;
    }
    this.#latest = JSON.stringify({
      type: 'tick',
      node: this.#deps.node,
      at: now,
      row,
      minute,
      alerts,
      sales,
      workers: this.#workers(),
      nginx: this.#deps.nginx?.() ?? null,
      actions: this.#actions,
    });
    for (const send of this.#streams.keys()) send(this.#latest);
  }

  /** Gathers second rows into minute rows; the minute row made by this tick, if one was. */
  #toMinute(row: Row): Row | undefined {
    const first = this.#minute[0];
    let made: Row | undefined;
    if (first && Math.floor(first.t / 60) !== Math.floor(row.t / 60)) {
      made = minuteOf(this.#minute);
      this.minutes.push(made);
      this.#minute = [];
    }
    this.#minute.push(row);
    return made;
  }

  /** Names not read lately, and the operators' last actions (every node's): read only while someone watches. */
  async #readNamesAndActions(now: number): Promise<void> {
    if (!this.#deps.health.isUp()) return;
    const stale = this.#deps.book.all().filter(({ id }) => now - (this.#names.get(id)?.at ?? 0) > NAME_MS);
    // One command each, not a pipeline: on a Redis Cluster the sales live in different slots.
    const [names, list] = await Promise.all([
      Promise.all(stale.map(({ keys }) => this.#deps.redis.hget(keys.sale, NAME_FIELD).catch(() => undefined))),
      this.#deps.redis.lrange(ACTIONS_KEY, 0, ACTIONS_SHOWN - 1).catch(() => undefined),
    ]);
    for (const [i, { id }] of stale.entries()) if (names[i] !== undefined) this.#names.set(id, { name: names[i] ?? null, at: now });
    if (list) this.#actions = list.flatMap((line) => actionOf(line));
  }

  #row(now: number, totals: Totals, previous: Totals, sales: { lag: number | null; waiting: number; state: string }[]): Row {
    const delta = (key: Exclude<keyof Totals, 'buckets'>) => Math.max(0, totals[key] - previous[key]);
    const buckets = totals.buckets.map((n, i) => Math.max(0, n - (previous.buckets[i] ?? 0)));
    const figures: Row = Object.fromEntries(FIGURES.map((f) => [f, 0])) as Row;
    for (const key of ['sold', 'soldout', 'held', 'w4xx', 'w429', 'w503', 'n4xx', 'n429', 'n503', 'admitted'] as const)
      figures[key] = delta(key);
    return {
      ...figures,
      t: Math.floor(now / 1000),
      p50: quantile(buckets, 0.5) * 1000,
      p99: quantile(buckets, 0.99) * 1000,
      waiting: sales.reduce((n, s) => n + s.waiting, 0),
      lag: sales.reduce((n, s) => n + (s.lag ?? 0), 0),
      redis: this.#deps.health.isUp() ? 1 : 0,
      journal: this.#deps.journal.failing() ? 0 : 1,
      recovering: sales.filter((s) => s.state === 'recovering').length,
      workerRestarts: this.#deps.ports.reduce((n, _, w) => n + this.#deps.restarts(w), 0),
      redisRestarts: this.#deps.redisRestarts(),
    };
  }

  #totals(): Totals {
    const totals: Totals = { sold: 0, soldout: 0, held: 0, w4xx: 0, w429: 0, w503: 0, n4xx: 0, n429: 0, n503: 0, admitted: 0, buckets: [] };
    for (const { stock, queue } of this.#deps.book.all()) {
      for (let w = 0; w < this.#deps.ports.length; w++) {
        const answers = stock.answers(w);
        totals.sold += answers[ANSWER_INDEX.sold]!;
        totals.soldout += answers[ANSWER_INDEX.soldout]!;
        totals.held += answers[ANSWER_INDEX.held]!;
      }
      if (queue.isQueued()) totals.admitted += queue.view().serving;
    }
    for (const f of this.#deps.requests.figures()) {
      const kind = f.status === '429' ? 'w429' : f.status === '503' ? 'w503' : f.status.startsWith('4') ? 'w4xx' : undefined;
      if (kind) totals[kind] += f.count;
      if (f.route === 'buy') for (const [i, n] of f.buckets.entries()) totals.buckets[i] = (totals.buckets[i] ?? 0) + n;
    }
    for (const [key, n] of this.#deps.edge() ?? []) {
      const [status, source] = key.split('|') as [string, string];
      if (source !== 'nginx') continue;
      const kind = status === '429' ? 'n429' : status === '503' ? 'n503' : status.startsWith('4') ? 'n4xx' : undefined;
      if (kind) totals[kind] += n;
    }
    return totals;
  }

  /** What the history row needs of each sale: its lag, waiting buyers, and whether it is recovering. */
  async #brief(entries: readonly SaleEntry[]): Promise<{ lag: number | null; waiting: number; state: string }[]> {
    const out: { lag: number | null; waiting: number; state: string }[] = [];
    const reads: Promise<void>[] = [];
    for (const entry of entries) {
      const { queue, stock } = entry;
      const room = queue.isQueued() ? queue.view() : undefined;
      const brief = {
        lag: 0 as number | null,
        waiting: room ? Math.max(0, room.tail - room.serving) : 0,
        state: stock.isRecovering() ? 'recovering' : '',
      };
      out.push(brief);
      const lag = this.#lagOf(entry);
      if (typeof lag === 'number' || lag === null) brief.lag = lag;
      else
        reads.push(
          lag.then((n) => {
            brief.lag = n;
          }),
        );
    }
    await Promise.all(reads);
    return out;
  }

  /** The writer's lag of a sale: read again only when its orders changed or it was not caught up. */
  #lagOf({ id, keys, stock }: SaleEntry): number | null | Promise<number | null> {
    const { reserved, paid, cancelled, expired } = stock.orders();
    const key = `${stock.seen()}|${reserved}|${paid}|${cancelled}|${expired}`;
    const cached = this.#lag.get(id);
    if (cached && cached.key === key && cached.lag === 0) return 0;
    if (!this.#deps.health.isUp()) return this.#remember(id, key, null);
    return unwrittenEvents(this.#deps.redis, keys).then(
      (lag) => this.#remember(id, key, lag),
      () => this.#remember(id, key, null),
    );
  }

  #remember(id: string, key: string, lag: number | null): number | null {
    this.#lag.set(id, { key, lag });
    return lag;
  }

  /** A sale's figures for the dashboard: shared memory, and the writer's lag when its orders changed. */
  async #sale(entry: SaleEntry, now: number) {
    const { id, stock, queue } = entry;
    const { total, sold, remaining } = stock.snapshot();
    const { state, final } = stock.state(now);
    const orders = stock.orders();
    const lag = await this.#lagOf(entry);
    const room = queue.isQueued() ? queue.view() : undefined;
    const waiting = room ? Math.max(0, room.tail - room.serving) : 0;
    return {
      id,
      name: this.#names.get(id)?.name ?? null,
      state,
      final,
      total,
      sold,
      remaining,
      ...orders,
      lag,
      waiting,
      queue: room ? { joined: room.tail, admitted: room.serving } : null,
      // What each worker holds of this sale now (a worker's card sums every sale).
      workers: this.#deps.ports.map((_, w) => stock.level(w)),
    };
  }

  #workers() {
    return this.#deps.ports.map((port, w) => {
      let localStock = 0;
      let sales = 0;
      for (const { stock } of this.#deps.book.all()) {
        localStock += stock.level(w);
        sales += stock.sales(w);
      }
      return { port, localStock, sales, restarts: this.#deps.restarts(w) };
    });
  }
}

/** What a dashboard needs of the rules: names, figures and thresholds (the rules themselves stay here). */
function rulesForPages() {
  return ALERTS.map(({ name, figure, above, warnAt, summary, forSeconds }) => ({ name, figure, above, warnAt, summary, forSeconds }));
}

/** An action kept in Redis, or none if the line is not one (written by hand, or by a later version). */
function actionOf(line: string): Action[] {
  try {
    const a = JSON.parse(line) as Action;
    return typeof a.at === 'number' && typeof a.operator === 'string' && typeof a.action === 'string' && typeof a.sale === 'string'
      ? [a]
      : [];
  } catch {
    return [];
  }
}
