/** The per-request stat log (the original's stat.log): written buffered so the hot path never waits on the disk, and tallied. */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { DEFAULT_SALE } from '../redis/keys.ts';
import { ANSWER_RESULTS, type AnswerResult } from '../stock/answers.ts';

/** What a purchase request ended as (stock/answers.ts): one word per outcome so the log can be tallied. */
export const STAT_RESULTS = ANSWER_RESULTS;
export type StatResult = AnswerResult;

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

const PLAIN = /^[A-Za-z0-9_.:@-]+$/;

/** One line: `<ISO time> port=3001 result=sold code=1 localSales=17 user=u1 order=1764-0`. */
export function formatStat(entry: StatEntry, at?: Date): string {
  let line = `${at ? at.toISOString() : isoNow()} port=${entry.port} result=${entry.result} code=${entry.code} localSales=${entry.localSales}`;
  // A name may hold spaces and any script: written URL-encoded, so a line stays key=value words.
  if (entry.user) line += ` user=${PLAIN.test(entry.user) ? entry.user : encodeURIComponent(entry.user)}`;
  if (entry.orderId) line += ` order=${entry.orderId}`;
  if (entry.sale) line += ` sale=${entry.sale}`;
  return line + '\n';
}

/** When a stat log is rotated: at `maxBytes`, keeping `keep` older files (`.1` newest); keep 0 deletes them. */
export interface Rotation {
  readonly maxBytes: number;
  readonly keep: number;
}

/** 64 MiB a file, 4 old files: at most ~320 MiB per worker, ~4 million lines. */
export const DEFAULT_ROTATION: Rotation = { maxBytes: 64 * 1024 * 1024, keep: 4 };

/**
 * Appends lines in batches: `flushMs` after the first line of a batch, or at once when `maxBytes`
 * are waiting. Each batch is one write to a file opened for append. No line, no timer: four idle
 * workers flushing nothing every 250 ms woke the node 16 times a second. {@link close} writes what is left. A file that would
 * grow past the rotation size is renamed `<file>.1` (older ones shift up, the oldest is
 * deleted) and a new one started, so a long spike cannot fill the disk.
 */
export class StatLog {
  readonly path: string;
  #fd: number;
  #size: number;
  #pending = '';
  readonly #maxBytes: number;
  readonly #rotation: Rotation;
  readonly #flushMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(path: string, { flushMs = 250, maxBytes = 64 * 1024, rotation = DEFAULT_ROTATION } = {}) {
    mkdirSync(join(path, '..'), { recursive: true });
    this.path = path;
    this.#fd = openSync(path, 'a');
    this.#size = fstatSync(this.#fd).size;
    this.#maxBytes = maxBytes;
    this.#rotation = rotation;
    this.#flushMs = flushMs;
  }

  append(entry: StatEntry): void {
    this.#pending += formatStat(entry);
    if (this.#pending.length >= this.#maxBytes) this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), this.#flushMs);
      this.#timer.unref?.();
    }
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0 || this.#fd < 0) return;
    const text = this.#pending;
    this.#pending = '';
    if (this.#size > 0 && this.#size + text.length > this.#rotation.maxBytes) this.#rotate();
    this.#size += writeSync(this.#fd, text);
  }

  #rotate(): void {
    closeSync(this.#fd);
    const { keep } = this.#rotation;
    rmSync(`${this.path}.${keep}`, { force: true });
    for (let k = keep - 1; k >= 1; k--) if (existsSync(`${this.path}.${k}`)) renameSync(`${this.path}.${k}`, `${this.path}.${k + 1}`);
    if (keep > 0) renameSync(this.path, `${this.path}.1`);
    else rmSync(this.path, { force: true });
    this.#fd = openSync(this.path, 'a');
    this.#size = 0;
  }

  close(): void {
    this.flush();
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}

export interface PortTally {
  port: number;
  requests: number;
  results: Record<string, number>;
  /** Highest localSales seen: what this port's worker sold. */
  localSales: number;
}

/**
 * Reads every `stat-*.log` in `dir`, and the rotated `stat-*.log.N` beside them, for sale `sale`
 * (undefined: every sale together); `sales` names every sale the logs hold (the default one is
 * the line without `sale=`). Lines it cannot parse are counted, not silently dropped.
 */
export function tallyStats(dir: string, sale?: string): { ports: PortTally[]; unparsed: number; sales: string[] } {
  const byPort = new Map<number, PortTally>();
  const sales = new Set<string>();
  let unparsed = 0;
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => /^stat-\d+\.log(\.\d+)?$/.test(f));
  } catch {
    files = [];
  }
  for (const file of files) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (!line) continue;
      const match = /port=(\d+) result=(\w+) code=(-?\d+) localSales=(\d+)/.exec(line);
      if (!match) {
        unparsed++;
        continue;
      }
      const of = / sale=(\S+)/.exec(line)?.[1] ?? DEFAULT_SALE;
      sales.add(of);
      if (sale !== undefined && of !== sale) continue;
      const port = Number(match[1]);
      const tally = byPort.get(port) ?? { port, requests: 0, results: {}, localSales: 0 };
      tally.requests++;
      tally.results[match[2]!] = (tally.results[match[2]!] ?? 0) + 1;
      tally.localSales = Math.max(tally.localSales, Number(match[4]));
      byPort.set(port, tally);
    }
  }
  return { ports: [...byPort.values()].sort((a, b) => a.port - b.port), unparsed, sales: [...sales].sort() };
}
