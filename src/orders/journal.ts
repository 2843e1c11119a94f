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
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { DbOrder } from './db.ts';
import { log } from '../log.ts';
import { compareOrderIds, idTime } from './model.ts';
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

/** A worker's journal: appends, in segments of its own. */
export class Journal {
  readonly #dir: string;
  readonly #name: string;
  #fd = -1;
  #segmentStart = 0;

  constructor(dir: string, name: string | number) {
    this.#dir = dir;
    this.#name = String(name);
    mkdirSync(dir, { recursive: true });
  }

  /**
   * Appends `entries` in one write; returns once the kernel has them. A write that fails (a full
   * disk) is said once and the sale goes on without the journal until a write succeeds again:
   * Redis still holds every sale; refusing buyers here would only turn sales into 503s.
   */
  append(entries: readonly Omit<JournalEntry, 'at'>[]): void {
    if (entries.length === 0) return;
    const at = Date.now();
    let text = '';
    for (const e of entries) text += line(e, at);
    try {
      if (this.#fd < 0 || at - this.#segmentStart >= SEGMENT_MS) this.#open(at);
      writeSync(this.#fd, text);
      if (this.#failing) log.info(`[journal] writing to ${this.#dir} again`);
      this.#failing = false;
    } catch (error) {
      if (!this.#failing)
        log.error(`[journal] cannot write to ${this.#dir} (${error instanceof Error ? error.message : error}); sales go on without it`);
      this.#failing = true;
    }
  }

  #failing = false;

  #open(at: number): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#segmentStart = at;
    this.#fd = openSync(join(this.#dir, `${this.#name}-${at}.jsonl`), 'a');
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
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
