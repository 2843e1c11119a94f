/** The supervisor's background tasks: the sales it serves with their sync and reconciler, the order writer, the reaper. */
import { log } from '../log.ts';
import { ConfigError, type Config } from '../config.ts';
import { startBackgroundWriter, type BackgroundWriter } from '../orders/background-writer.ts';
import { join, resolve } from 'node:path';
import type { OrderDb } from '../orders/db.ts';
import { checkWritable, Journal, newestJournaled, pruneJournal, readJournal } from '../orders/journal.ts';
import { JournalHealth } from '../orders/journal-health.ts';
import { ArchivedOrders } from '../orders/archived.ts';
import { Reaper } from '../orders/reaper.ts';
import { Reconciler } from '../orders/reconciler.ts';
import { SaleRecords } from '../orders/sale-record.ts';
import { DEFAULT_SHAVING } from '../orders/writer.ts';
import { Admission } from '../queue/admission.ts';
import type { RedisClient } from '../redis/client.ts';
import type { SaleGuard } from '../redis/guard.ts';
import { RedisHealth } from '../redis/health.ts';
import { RedisWatch } from './redis-watch.ts';
import { DEFAULT_SALE } from '../redis/keys.ts';
import type { RefillPolicy } from '../stock/refill.ts';
import { SaleBook, type SaleEntry } from '../stock/sale-book.ts';
import { SaleChanges } from '../redis/changes.ts';
import { StockSync } from '../stock/sync.ts';
import type { RedisStep } from './redis-step.ts';
import type { Stack } from './stack.ts';

/** How often each sale's Redis stream is compared with the order database's mark. */
const RECONCILE_MS = 2000;
/** How often journal segments the database holds in full are deleted. */
const PRUNE_MS = 5 * 60_000;

/** Where this node's workers journal what they told buyers (orders/journal.ts). */
export const journalDir = (config: Config): string => resolve(join(config.dataDir, 'journal'));

export interface Sales {
  readonly book: SaleBook;
  readonly sync: StockSync;
  readonly reconciler: Reconciler;
  /** The waiting rooms' admissions (queue/admission.ts). */
  readonly admission: Admission;
  /** The node's view of its Redis (shared with the workers), and the watch that keeps it. */
  readonly health: RedisHealth;
  readonly watch: RedisWatch;
  /** What the node tells the scripts that change sale `id` (redis/guard.ts). */
  readonly guard: (id: string) => SaleGuard;
  /** The orders of archived sales, from the database. */
  readonly archivedOrders: ArchivedOrders;
  /** Whether each worker (and the reaper, last) can write its journal. */
  readonly journalHealth: JournalHealth;
  readonly db: OrderDb | undefined;
  /** What the operator last set of each sale through this node, for a recovery (orders/sale-record.ts). */
  readonly records: SaleRecords;
}

/** The refill policy `config` asks for. */
export const refillPolicy = (config: Config): RefillPolicy => ({
  workers: config.ports.length,
  buffer: config.buffer,
  localStock: config.localStock,
});

/**
 * The sales this node serves (the default one and those registered in Redis), checked for lost
 * writes before any worker sells, then kept in step with Redis by the sync. `onAdded` hears of
 * every sale added later (admin API, another node), `onRemoved` of every sale archived.
 */
export async function startSales(
  config: Config,
  { redis, described }: RedisStep,
  db: OrderDb | undefined,
  stack: Stack,
  say: (line: string) => void,
  listeners: { onAdded: (entry: SaleEntry) => void; onRemoved: (id: string) => void },
): Promise<Sales> {
  const book = new SaleBook({ workers: config.ports.length, ...listeners });
  book.add(DEFAULT_SALE);
  // A failure here (a cluster mid-failover) only delays a sale to the sync's next round.
  await book.loadArchived(redis).catch(() => {});
  await book.discover(redis).catch(() => {});
  const journal = journalDir(config);
  // A node that cannot journal must not sell (journal.ts): say so at the start, naming the folder.
  try {
    checkWritable(journal);
  } catch (error) {
    throw new ConfigError(`${error instanceof Error ? error.message : error}; free the disk or set SPIKE_DATA_DIR to a writable folder`);
  }
  const journalHealth = JournalHealth.create(config.ports.length + 1);
  const records = new SaleRecords(join(config.dataDir, 'sale-records.json'));
  // A reset starts the default sale afresh: its old total must not come back in a recovery.
  if (config.reset) records.forget(DEFAULT_SALE);
  // After a restart of the node its memory of the newest orders is the journal's: a Redis older
  // than that lost acknowledged sales (the checks below and every script's guard see it).
  for (const [id, newest] of newestJournaled(journal)) book.get(id)?.stock.noteSeen(newest);
  const health = RedisHealth.create();
  const guard = (id: string): SaleGuard => ({
    seen: () => book.get(id)?.stock.seen() ?? '0-0',
    outage: () => health.outageArgument(),
    asked: () => health.redisNow(),
  });
  let sync: StockSync | undefined;
  const watched = (entry: SaleEntry) => ({ id: entry.id, keys: entry.keys, seen: () => entry.stock.seen() });
  const reconciler = new Reconciler(redis, db, {
    node: config.nodeId,
    sales: () => book.all().map(watched),
    sale: (id) => {
      const entry = book.get(id);
      return entry && watched(entry);
    },
    payWindowMs: config.payWindowMs,
    intervalMs: RECONCILE_MS,
    say,
    onResumed: () => void sync?.kick(),
    journaled: (sale) => readJournal(journal, sale),
    recorded: (sale) => records.get(sale),
  });
  await reconciler.checkAll();
  reconciler.start();
  stack.defer(() => reconciler.stop(), 'reconciler', { quiet: true });
  sync = await startSync(config, redis, book, { reconciler, records }, stack);
  const watch = startWatch(redis, health, described, { book, reconciler, sync }, stack);
  // Only the sales with a waiting room: a round over the others would cost for nothing.
  const queueSales = () =>
    book
      .all()
      .filter((entry) => entry.queue.isQueued())
      .map((entry) => ({ id: entry.id, board: entry.queue, seen: () => entry.stock.seen(), finished: () => entry.stock.state().final }));
  const admission = new Admission(redis, queueSales, config.syncMs, () => watch.ready());
  await admission.tick();
  admission.start();
  stack.defer(() => admission.stop(), 'admissions', { quiet: true });
  if (db) prune(journal, db, stack);
  return { book, sync, reconciler, admission, health, watch, guard, archivedOrders: new ArchivedOrders(db), db, journalHealth, records };
}

/** The sync, told of the other nodes' changes (redis/changes.ts) and telling them of this node's. */
async function startSync(
  config: Config,
  redis: RedisClient,
  book: SaleBook,
  { reconciler, records }: { reconciler: Reconciler; records: SaleRecords },
  stack: Stack,
): Promise<StockSync> {
  const changes = new SaleChanges(redis, config.nodeId);
  const sync = new StockSync(redis, book, {
    policy: refillPolicy(config),
    intervalMs: config.syncMs,
    onBehind: (id) => void reconciler.check(id),
    onAdvanced: (id) => reconciler.watchClosely(id),
    onReset: (id) => records.forget(id),
    recordedTotal: (id) => records.get(id)?.total,
    publish: (ids) => changes.publish(ids),
  });
  // Messages published while this node's subscription was down are lost: read every sale then.
  changes.start(
    (id) => sync.heard(id),
    () => void sync.kick(),
  );
  stack.defer(() => changes.stop(), 'the change subscriber', { quiet: true });
  await sync.syncOnce();
  sync.start();
  stack.defer(() => sync.stop(), 'stock sync', { quiet: true });
  return sync;
}

/**
 * Deletes, every few minutes, the journal segments the database holds in full. A failed round
 * deletes nothing (the journal only grows) and is said once until a round succeeds again.
 */
function prune(dir: string, db: OrderDb, stack: Stack): void {
  const held = async (sale: string) => new Map((await db.orders(sale)).map((row) => [row.orderId, row.state]));
  let failing = false;
  const round = () =>
    pruneJournal(dir, held).then(
      () => {
        if (failing) log.info(`journal pruning: works again in ${dir}`);
        failing = false;
      },
      (error: Error) => {
        if (!failing) log.warn(`journal pruning: cannot prune ${dir} (${error.message}); nothing is deleted until it can`);
        failing = true;
      },
    );
  const timer = setInterval(() => void round(), PRUNE_MS);
  stack.defer(async () => clearInterval(timer), 'journal pruning', { quiet: true });
}

/**
 * The watch over Redis (redis-watch.ts). When Redis answers after an outage, before any task
 * writes again: the outage goes into every sale (deadlines move by it), then every sale is checked
 * for lost writes and restored, then the stock is synced.
 */
function startWatch(
  redis: RedisClient,
  health: RedisHealth,
  described: string,
  { book, reconciler, sync }: { book: SaleBook; reconciler: Reconciler; sync: StockSync },
  stack: Stack,
): RedisWatch {
  const watch = new RedisWatch(redis, health, {
    described,
    onBack: async (outage) => {
      if (outage) await Promise.all(book.all().map((entry) => redis.outage(entry.keys.sale, outage)));
      await reconciler.checkAll();
      await sync.kick();
    },
  });
  watch.start();
  stack.defer(() => watch.stop(), 'Redis watch', { quiet: true });
  return watch;
}

/** The order writer on its own thread (stream → database); undefined when SPIKE_WRITER=0. */
export async function startWriter(
  config: Config,
  { target, described }: RedisStep,
  book: SaleBook,
  stack: Stack,
  say: (line: string) => void,
): Promise<BackgroundWriter | undefined> {
  if (!config.writer) return undefined;
  const writer = await startBackgroundWriter(
    {
      redis: target,
      described,
      redisTimeoutMs: config.redisTimeoutMs + 2000,
      databaseUrl: config.databaseUrl,
      dbPath: config.dbPath,
      consumer: `writer-${config.nodeId}`,
      niceness: config.writerNice,
      shaving: { ...DEFAULT_SHAVING, maxLagMs: config.writerMaxLagMs },
      sales: book.all().map((entry) => entry.id),
    },
    say,
  );
  stack.defer(() => writer.stop(), 'order writer');
  const shaving = config.writerMaxLagMs
    ? `, shaving peaks above ${DEFAULT_SHAVING.hotRate} orders/s to ${DEFAULT_SHAVING.maxRate}/s, at most ${config.writerMaxLagMs / 1000} s behind`
    : '';
  say(
    `order writer: order streams → ${config.databaseUrl ? 'PostgreSQL' : config.dbPath} (own thread, nice +${config.writerNice}${shaving})`,
  );
  return writer;
}

/** Told of every reaper pass that released orders (the history test records them; nothing else needs it). */
export type OnExpired = (sale: string, released: readonly { orderId: string; user: string }[], startedAt: number, endedAt: number) => void;

/**
 * The reaper; released orders put tickets back at once (the sold-out flag, then a sync so the
 * workers refill), and go into the node's journal like every other change to an order.
 */
export function startReaper(
  config: Config,
  redis: RedisClient,
  { book, sync, guard, watch, journalHealth, health }: Sales,
  stack: Stack,
  onExpired?: OnExpired,
): Reaper {
  const journal = new Journal(journalDir(config), 'reaper', { health: journalHealth, cell: config.ports.length });
  stack.defer(async () => journal.close(), "the reaper's journal", { quiet: true });
  const reaper = new Reaper(redis, {
    // Only the sales holding reserved orders (as of the last sync): the others have nothing to expire.
    sales: () =>
      book
        .all()
        .filter((entry) => entry.stock.reserved() > 0)
        .map((entry) => ({ keys: entry.keys, guard: guard(entry.id), reserved: () => entry.stock.reserved() })),
    ready: () => watch.ready(),
    outages: () => health.outages(),
    intervalMs: config.reapMs,
    // Well inside the command's own timeout, so a call either acts and is answered, or does nothing.
    lateMs: Math.max(1, Math.floor(config.redisTimeoutMs / 2)),
    onReleased: (keys, released, startedAt) => {
      book.get(keys.sale)?.stock.noteRelease();
      journal.append(released.map(({ orderId, user }) => ({ sale: keys.sale, kind: 'expired', orderId, user, port: 0, window: 0 })));
      void sync.changed(keys.sale);
      onExpired?.(keys.sale, released, startedAt, Date.now());
    },
  });
  reaper.start();
  stack.defer(() => reaper.stop(), 'reaper', { quiet: true });
  return reaper;
}
