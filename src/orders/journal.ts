/**
 * The node's journal of what it told buyers: every sale and every payment or cancel, appended by
 * the worker that answered, before the answer goes out. Redis can come back older than what it
 * acknowledged (a restored backup, a failover to a replica that lagged); the order writer copies
 * orders to the database about every 100 ms, so the last moments before such a loss were in
 * neither, and their seats were sold again. With the journal, the reconciler restores them too.
 *
 * One file per worker and segment (`<worker>-<start ms>.jsonl` in the journal folder), one JSON
 * line per entry, written with one write() per batch of buyers: it survives a Redis fault and a
 * crash of spike's process, not a power loss of the node's machine (no fsync per batch; Redis'
 * own `appendfsync always` covers that, see the README's Durability). A segment is deleted once
 * the database holds everything in it.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { DbOrder } from './db.ts';
import { log } from '../log.ts';
import { compareOrderIds, idTime } from './model.ts';
import type { JournalHealth } from './journal-health.ts';
import { SettleCode, type OrderStore } from './store.ts';

export interface JournalEntry {
  readonly sale: string;
  /** What the buyer was told: sold (the order is reserved), paid or cancelled; or what the reaper did: expired. */
  readonly kind: 'created' | 'paid' | 'cancelled' | 'expired';
  readonly orderId: string;
  readonly user: string;
  readonly port: number;
  /** created: the time to pay in ms (0: none). */
  readonly window: number;
  /** When it was written, ms (this node's clock). */
  readonly at: number;
}

/** A new segment this often, so old ones can be deleted whole. */
const SEGMENT_MS = 10 * 60_000;
/** While the journal cannot be written, a write of what waits is tried this often. */
const RETRY_MS = 1000;

/** Checks that `dir` can be written (made if missing): a start with a journal it cannot write stops with the folder named. */
export function checkWritable(dir: string): void {
  const probe = join(dir, `.probe-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(probe, 'probe\n');
    rmSync(probe, { force: true });
  } catch (error) {
    throw new Error(`cannot write the journal folder ${dir} (${error instanceof Error ? error.message : error})`);
  }
}

/**
 * A call's sales could not be journaled: its buyers are told 503 (outcome unknown; a named buyer's
 * retry finds the order once the node sells again), an anonymous one's sale is undone.
 */
export class JournalFailedError extends Error {
  override name = 'JournalFailedError';
}

/** What a journal tells of its health: a cell of the node's JournalHealth (journal-health.ts). */
export interface JournalWatch {
  readonly health: JournalHealth;
  readonly cell: number;
}

/** A worker's journal: appends, in segments of its own. */
export class Journal {
  readonly #dir: string;
  readonly #name: string;
  readonly #watch: JournalWatch | undefined;
  #fd = -1;
  #segmentStart = 0;
  /** Lines not yet written (the journal could not be written), in order. */
  #waiting = '';
  #lines = 0;
  /** While writes fail: the next try. */
  #retry: ReturnType<typeof setTimeout> | undefined;
  #down = false;

  constructor(dir: string, name: string | number, watch?: JournalWatch) {
    this.#dir = dir;
    this.#name = String(name);
    this.#watch = watch;
    mkdirSync(dir, { recursive: true });
  }

  /** Whether the last write failed: what waits is written as soon as one succeeds (tried every second). */
  get failing(): boolean {
    return this.#waiting !== '';
  }

  /**
   * Appends `entries` in one write; true once the kernel has them. A write that fails (a full or
   * read-only disk) keeps them, in order, for the next write, which is tried every second, and
   * marks the node's journal failing: the workers sell nothing until it succeeds (an acknowledged
   * sale in neither the journal nor the database could be lost with Redis), then all is written.
   */
  append(entries: readonly Omit<JournalEntry, 'at'>[]): boolean {
    if (entries.length === 0) return true;
    const at = Date.now();
    for (const e of entries) this.#waiting += line(e, at);
    this.#lines += entries.length;
    return this.#write(at);
  }

  #write(at = Date.now()): boolean {
    try {
      if (this.#fd < 0 || at - this.#segmentStart >= SEGMENT_MS) this.#open(at);
      writeSync(this.#fd, this.#waiting);
      if (this.#down) log.info(`[journal] writing to ${this.#dir} again; the ${this.#lines} lines that waited are written`);
      this.#waiting = '';
      this.#lines = 0;
      this.#healthy(true);
      return true;
    } catch (error) {
      // A write cut short may have left part of a line: the next one starts a new segment.
      this.#close();
      if (!this.#down)
        log.error(
          `[journal] cannot write to ${this.#dir} (${error instanceof Error ? error.message : error}); this node sells nothing until it can (tried every ${RETRY_MS / 1000} s)`,
        );
      this.#healthy(false);
      return false;
    }
  }

  #healthy(ok: boolean): void {
    this.#down = !ok;
    if (this.#watch) this.#watch.health.set(this.#watch.cell, !ok);
    clearTimeout(this.#retry);
    this.#retry = ok ? undefined : setTimeout(() => this.#write(), RETRY_MS);
  }

  #open(at: number): void {
    this.#close();
    this.#segmentStart = at;
    this.#fd = openSync(join(this.#dir, `${this.#name}-${at}.jsonl`), 'a');
  }

  #close(): void {
    try {
      if (this.#fd >= 0) closeSync(this.#fd);
    } catch {
      // A descriptor a failed disk will not close is gone anyway.
    }
    this.#fd = -1;
  }

  /** Writes what waits (one last try), then closes. */
  close(): void {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    if (this.#waiting) this.#write();
    clearTimeout(this.#retry);
    this.#close();
  }
}

/** An entry's JSON line, written by hand: one object and one JSON.stringify per sale cost a journaled purchase ~1.5 µs. */
function line(e: Omit<JournalEntry, 'at'>, at: number): string {
  return `{"sale":${JSON.stringify(e.sale)},"kind":"${e.kind}","orderId":"${e.orderId}","user":${JSON.stringify(e.user)},"port":${e.port},"window":${e.window},"at":${at}}\n`;
}

const SEGMENT = /^(.+)-(\d+)\.jsonl$/;

function segments(dir: string): { file: string; name: string; start: number }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((file) => ({ file, match: SEGMENT.exec(file) }))
    .filter((s) => s.match)
    .map(({ file, match }) => ({ file, name: match![1]!, start: Number(match![2]) }));
}

/** The entries of one segment; a torn last line (a crash mid-write: nothing was answered for it) is skipped. */
function entriesOf(path: string): JournalEntry[] {
  const entries: JournalEntry[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      entries.push(JSON.parse(line) as JournalEntry);
    } catch {
      // cut short
    }
  }
  return entries;
}

/** Every entry in the journal folder, of `sale` only when given. */
export function readJournal(dir: string, sale?: string): JournalEntry[] {
  return segments(dir).flatMap(({ file }) => entriesOf(join(dir, file)).filter((e) => sale === undefined || e.sale === sale));
}

/** The newest order id the journal holds per sale. */
export function newestJournaled(dir: string): Map<string, string> {
  const newest = new Map<string, string>();
  for (const e of readJournal(dir)) {
    const known = newest.get(e.sale);
    if (!known || compareOrderIds(e.orderId, known) > 0) newest.set(e.sale, e.orderId);
  }
  return newest;
}

/** What the database holds of a sale: order id → state. */
export type Held = (sale: string) => Promise<ReadonlyMap<string, string>>;

/**
 * Deletes the segments no longer written (a newer one of the same worker exists, or it is older
 * than a segment's span) whose every entry the database holds: the order, and for a payment or a
 * cancel, in that state. Returns how many were deleted.
 */
export async function pruneJournal(dir: string, held: Held, now = Date.now()): Promise<number> {
  const all = segments(dir);
  const cache = new Map<string, ReadonlyMap<string, string>>();
  const rows = async (sale: string) => cache.get(sale) ?? cache.set(sale, await held(sale)).get(sale)!;
  let removed = 0;
  for (const segment of all) {
    const newer = all.some((s) => s.name === segment.name && s.start > segment.start);
    if (!newer && now - segment.start < SEGMENT_MS * 2) continue;
    let covered = true;
    for (const e of entriesOf(join(dir, segment.file))) {
      const state = (await rows(e.sale)).get(e.orderId);
      if (!state || (e.kind !== 'created' && state !== e.kind)) covered = false;
      if (!covered) break;
    }
    if (covered) {
      rmSync(join(dir, segment.file), { force: true });
      removed += 1;
    }
  }
  return removed;
}

/**
 * The journal's orders of a sale as database rows, merged into `rows` (the database's): an order
 * only the journal knows is added; a payment or cancel only the journal knows moves a reserved
 * row on. The database wins otherwise (it may know an expiry the journal never saw).
 */
export function withJournal(rows: readonly DbOrder[], entries: readonly JournalEntry[]): DbOrder[] {
  const merged = new Map(rows.map((row) => [row.orderId, row]));
  for (const e of [...entries].sort((a, b) => (a.kind === 'created' ? 0 : 1) - (b.kind === 'created' ? 0 : 1))) {
    const row = merged.get(e.orderId);
    const createdAt = idTime(e.orderId);
    if (e.kind === 'created') {
      if (!row)
        merged.set(e.orderId, {
          sale: e.sale,
          orderId: e.orderId,
          user: e.user,
          port: e.port,
          state: 'reserved',
          createdAt,
          updatedAt: createdAt,
          payBy: e.window > 0 ? createdAt + e.window : null,
        });
    } else if (!row || row.state === 'reserved') {
      merged.set(e.orderId, {
        sale: e.sale,
        orderId: e.orderId,
        user: e.user,
        port: row?.port ?? e.port,
        state: e.kind,
        createdAt,
        updatedAt: e.at,
        payBy: row?.payBy ?? null,
      });
    }
  }
  return [...merged.values()].sort((a, b) => compareOrderIds(a.orderId, b.orderId));
}

/** `store`, journaling every payment and cancel it answered (see Journal) before the answer goes out. */
export function journaling(store: OrderStore, journal: Journal, port: number): OrderStore {
  return {
    ...store,
    settle: async (action, orderId, user) => {
      const settled = await store.settle(action, orderId, user);
      if (settled.code === SettleCode.Done) {
        const order = settled.state === 'paid' || settled.state === 'cancelled' ? settled.state : undefined;
        if (order) journal.append([{ sale: store.sale, kind: order, orderId, user: user === '*' ? '' : user, port, window: 0 }]);
      }
      return settled;
    },
  };
}
