/**
 * Restores a sale's orders that Redis lost, from the database: the second record of every sale.
 * Redis can lose acknowledged writes (a crash under appendfsync everysec, a failover to a replica
 * that lagged, a restore from a backup); without this, the lost seats were sold a second time
 * and the first buyers got 404 when they paid.
 */
import type { RedisClient as Redis } from '../redis/client.ts';
import { compareOrderIds, newerId } from './model.ts';
import { readSale } from '../redis/sale.ts';
import { keyList, NODES_KEY, RECOVERING_FIELD, restoredField, type SaleKeys } from '../redis/keys.ts';
import type { DbOrder, OrderDb } from './db.ts';
import { withJournal, type JournalEntry } from './journal.ts';
import type { SaleSettings } from './sale-record.ts';

export interface ReconcileReport {
  readonly sale: string;
  readonly reason: string;
  /** Orders Redis did not know, put back. */
  readonly restored: number;
  /** Orders Redis held as reserved that the database knew paid, cancelled or expired. */
  readonly advanced: number;
  /** Named users who also held another live order (left for the audit to show). */
  readonly conflicts: number;
  readonly total: number;
  readonly sold: number;
  /** Where the orders were restored from: "the database", "the database and journal", "the journal". */
  readonly from: string;
}

/** How far a sale's stream got (its last-generated id, which trimming never lowers); `0-0` without a stream. */
export async function streamReached(redis: Redis, keys: SaleKeys): Promise<string> {
  try {
    const info = (await redis.xinfo('STREAM', keys.orders)) as unknown[];
    return String(info[info.indexOf('last-generated-id') + 1] ?? '0-0');
  } catch (error) {
    if (String(error).includes('no such key')) return '0-0';
    throw error;
  }
}

/**
 * Why the sale must be reconciled now, or undefined: it is marked recovering (a worker saw Redis
 * behind, see purchase-N.lua), its stream ends before the newest event the database holds, or its
 * newest order is older than `seen`, the newest this node saw Redis make.
 */
export async function behindReason(redis: Redis, keys: SaleKeys, db: OrderDb, seen = '0-0'): Promise<string | undefined> {
  const count = await readSale(redis, keys);
  if (!count) return undefined;
  if (count.recovering) return count.recovering;
  const mark = await db.mark(keys.sale);
  // The newest id Redis made for the sale: its stream's, or last_id, which a reset keeps.
  const reached = newerId(await streamReached(redis, keys), count.lastId);
  if (mark && compareOrderIds(reached, mark) < 0)
    return `Redis lost writes: its stream ends at ${reached}, the database holds events up to ${mark}`;
  if (compareOrderIds(count.lastId, seen) < 0) return `Redis lost writes: its newest order is ${count.lastId}, this node saw ${seen}`;
  return undefined;
}

export interface ReconcileOptions {
  readonly reason: string;
  /** This node's id: its journal's part of the recovery is recorded under it (restoredField). */
  readonly node: string;
  /** How long to wait for the other live nodes to add their journals before the sale sells again. Default 10 s. */
  readonly othersMs?: number;
  /** The newest order id this node saw Redis make; the sale resumes only past it. */
  readonly seen?: string;
  /** For reserved orders the database holds without a deadline (rows from before it was kept). */
  readonly payWindowMs: number;
  /** Orders per script call, so Redis is never busy with one long call. */
  readonly chunk?: number;
  /** What this node's journal holds of the sale (orders/journal.ts): acknowledged sales the database may not have yet. */
  readonly journaled?: readonly JournalEntry[];
  /** What the operator last set of the sale through this node (orders/sale-record.ts), put back too. */
  readonly recorded?: SaleSettings;
  /** How often the live nodes write their sign of life (NODES_KEY). Default 2 s. */
  readonly beatMs?: number;
}

/** restore-4.lua's six values for one order. */
function restoreArgs(row: DbOrder, payWindowMs: number): string[] {
  const payBy = row.payBy ?? (row.state === 'reserved' && payWindowMs > 0 ? row.createdAt + payWindowMs : 0);
  return [row.orderId, row.state, row.user, row.port === null ? '' : String(row.port), String(payBy), String(row.updatedAt)];
}

/** How long a node counts as live after its last sign of life (it writes one every reconcile interval). */
const LIVE_MS = 6000;

/**
 * Waits until every other live node has added its journal to `recovery` (the sale's recovering
 * mark), at most `ms`. Each node's journal holds the sales only it acknowledged in the last moments
 * before Redis lost them: a sale resumed without them sold their seats again (issue 30's history).
 * Returns the nodes it stopped waiting for, or undefined when the recovery is no longer this one.
 */
async function othersRestored(
  redis: Redis,
  keys: SaleKeys,
  recovery: string,
  self: string,
  { ms, beatMs }: { ms: number; beatMs: number },
): Promise<string[] | undefined> {
  const deadline = Date.now() + ms;
  // A Redis restored from an older copy holds the nodes' old signs of life: every node looked dead,
  // and a recovery resumed at once without their journals (orders only they sold were lost). Live
  // nodes write theirs again within a beat, so none is taken for dead before one and a half beats.
  const heard = Date.now() + beatMs * 1.5;
  for (;;) {
    const beats = await redis.hgetall(NODES_KEY);
    const now = Date.now();
    const nodes = Object.entries(beats)
      .filter(([node, at]) => node !== self && now - Number(at) < LIVE_MS)
      .map(([node]) => node);
    const [current, ...marks] = await redis.hmget(keys.sale, RECOVERING_FIELD, ...nodes.map(restoredField));
    if (current !== recovery) return undefined;
    const waiting = nodes.filter((_, i) => marks[i] !== recovery);
    if ((waiting.length === 0 && Date.now() > heard) || Date.now() > deadline) return waiting;
    await Bun.sleep(100);
  }
}

/**
 * Stops the sale on every node (recovering: purchases answer code -3), puts back every order the
 * database or this node's journal holds and Redis lacks (restore-4.lua, idempotent), and the
 * total and pause this node recorded (reapply-1.lua), records that
 * this node's journal is in, waits for every other live node to have added its own (each runs
 * this when it sees the sale recovering), then lets it sell again (resume-1.lua) past the newest id
 * known. A node without a database adds its journal and leaves the resume to one with one. Safe
 * to run again, and on several nodes at once: they join the same recovery.
 */
export async function reconcileSale(
  redis: Redis,
  keys: SaleKeys,
  db: OrderDb | undefined,
  options: ReconcileOptions,
): Promise<ReconcileReport & { waitedFor?: string[] }> {
  // Marked only if it exists (recover-1.lua): an archived sale must not come back as a hash of `recovering`.
  const marked = await redis.recover(keys.sale, options.reason);
  const from = db ? (options.journaled ? 'the database and journal' : 'the database') : 'the journal';
  if (marked === -2 || marked === '-2')
    return { sale: keys.sale, reason: options.reason, restored: 0, advanced: 0, conflicts: 0, total: 0, sold: 0, from };
  const recovery = String(marked);
  // Orders from before the sale's last reset are not its own (a live reset keeps no database rows).
  const epoch = (await readSale(redis, keys))?.epoch ?? '0-0';
  const rows = withJournal((await db?.orders(keys.sale)) ?? [], options.journaled ?? []).filter(
    (row) => compareOrderIds(row.orderId, epoch) > 0,
  );
  const chunk = options.chunk ?? 200;
  let restored = 0;
  let advanced = 0;
  let conflicts = 0;
  for (let i = 0; i < rows.length; i += chunk) {
    const args = rows.slice(i, i + chunk).flatMap((row) => restoreArgs(row, options.payWindowMs));
    const [r, a, c] = await redis.restore(...keyList(keys), ...args);
    // The sale was archived meanwhile: nothing was written, nothing is left to restore.
    if (Number(r) === -2) break;
    restored += Number(r);
    advanced += Number(a);
    conflicts += Number(c);
  }
  const { recorded } = options;
  if (recorded) {
    const paused = recorded.paused === undefined ? '' : recorded.paused ? '1' : '0';
    await redis.reapply(keys.sale, String(recorded.total ?? ''), paused, String(recorded.at));
  }
  await redis.hset(keys.sale, restoredField(options.node), recovery);
  const report = { sale: keys.sale, reason: recovery, restored, advanced, conflicts, from };
  const waitedFor = db
    ? await othersRestored(redis, keys, recovery, options.node, { ms: options.othersMs ?? 10_000, beatMs: options.beatMs ?? 2000 })
    : undefined;
  // Without a database, or another node resumed it (or a newer recovery began): this node's part is done.
  if (!db || waitedFor === undefined) {
    const count = await readSale(redis, keys);
    return { ...report, total: count?.total ?? 0, sold: count?.sold ?? 0 };
  }
  const known = [options.seen ?? '0-0', (await db.mark(keys.sale)) ?? '0-0', await streamReached(redis, keys)];
  const newest = known.reduce(newerId);
  await redis.resume(keys.sale, newest);
  const count = await readSale(redis, keys);
  return { ...report, total: count?.total ?? 0, sold: count?.sold ?? 0, waitedFor };
}

/** One line for the operator's log. */
export function describeReconcile(report: ReconcileReport & { waitedFor?: string[] }): string {
  // Only the node that resumes the sale has every journal and record in: its count is the sale's.
  const final = report.waitedFor !== undefined;
  const over =
    final && report.sold > report.total ? `; OVERSOLD by ${report.sold - report.total}: tickets sold before the loss was noticed` : '';
  const restored = `restored ${report.restored} orders from ${report.from}, moved ${report.advanced} on, ${report.conflicts} users with two live orders`;
  const missing = report.waitedFor?.length ? `; WITHOUT the journals of ${report.waitedFor.join(', ')} (no answer in time)` : '';
  if (!final)
    return `sale ${report.sale}: ${report.reason}; ${restored}; this node added its journal (a node with the database resumes the sale)`;
  return `sale ${report.sale}: ${report.reason}; ${restored}; now ${report.sold} of ${report.total} sold${over}${missing}; selling again`;
}
