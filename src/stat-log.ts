/** The per-request stat log (the original's stat.log), buffered so the hot path never waits on the disk. */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** What a purchase request ended as; one word per outcome so the log can be tallied. */
export type StatResult = 'sold' | 'soldout' | 'held' | 'unavailable' | 'nosale' | 'closed';

export interface StatEntry {
  readonly port: number;
  readonly result: StatResult;
  readonly code: number;
  readonly localSales: number;
  readonly user: string;
  readonly orderId?: string;
  /** Only for a sale other than the default one. */
  readonly sale?: string;
}

/** The file a worker on `port` appends to. One file per worker, so lines of two threads never interleave. */
export function statLogPath(dir: string, port: number): string {
  return join(dir, `stat-${port}.log`);
}

// At 100k lines a second, formatting a Date per line costs more than the rest of the line:
// lines of the same millisecond share one ISO string.
let isoMs = -1;
let iso = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    iso = new Date(ms).toISOString();
  }
  return iso;
}

/** One line: `<ISO time> port=3001 result=sold code=1 localSales=17 user=u1 order=1764-0`. */
export function formatStat(entry: StatEntry, at?: Date): string {
  let line = `${at ? at.toISOString() : isoNow()} port=${entry.port} result=${entry.result} code=${entry.code} localSales=${entry.localSales}`;
  if (entry.user) line += ` user=${entry.user}`;
  if (entry.orderId) line += ` order=${entry.orderId}`;
  if (entry.sale) line += ` sale=${entry.sale}`;
  return line + '\n';
}

/**
 * Appends lines in batches: every `flushMs`, or at once when `maxBytes` are waiting. Each batch is
 * one write to a file opened for append. {@link close} writes what is left.
 */
export class StatLog {
  readonly path: string;
  #fd: number;
  #pending = '';
  readonly #maxBytes: number;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(path: string, { flushMs = 250, maxBytes = 64 * 1024 } = {}) {
    mkdirSync(join(path, '..'), { recursive: true });
    this.path = path;
    this.#fd = openSync(path, 'a');
    this.#maxBytes = maxBytes;
    this.#timer = setInterval(() => this.flush(), flushMs);
    this.#timer.unref?.();
  }

  append(entry: StatEntry): void {
    this.#pending += formatStat(entry);
    if (this.#pending.length >= this.#maxBytes) this.flush();
  }

  flush(): void {
    if (this.#pending.length === 0 || this.#fd < 0) return;
    const text = this.#pending;
    this.#pending = '';
    writeSync(this.#fd, text);
  }

  close(): void {
    clearInterval(this.#timer);
    this.flush();
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}
