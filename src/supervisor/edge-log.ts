/**
 * What nginx answered, counted: nginx writes a short line per answer to a buffered log (one write
 * per 32 KiB, flushed every 250 ms: nothing on the hot path), and the supervisor reads the new
 * lines every 250 ms. A Redis freeze once made nginx answer 331 859 requests with 503
 * itself while the dashboard, which counted only the workers' answers, said "1 a second".
 *
 * A line is `$msec $status $upstream_status`. The answer is the worker's when the last upstream
 * status is the status; otherwise nginx gave it (its 503 when no worker could answer, its 429s,
 * the 4xx it refuses itself).
 */
import { closeSync, existsSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs';

export type Source = 'worker' | 'nginx';

/** Answers counted so far: `${status}|${source}` → count. */
export type EdgeCounts = ReadonlyMap<string, number>;

/** The source and status of one log line; undefined for a line that is not one. */
export function parseEdgeLine(line: string): { status: number; source: Source } | undefined {
  const match = /^\d+\.\d+ (\d{3}) (.*)$/.exec(line);
  if (!match) return undefined;
  const last = match[2]!
    .trim()
    .split(/[,:]\s*/)
    .filter(Boolean)
    .at(-1);
  return { status: Number(match[1]), source: last === match[1] ? 'worker' : 'nginx' };
}

/** Past this size the log is rotated (renamed, nginx told to reopen it). */
const ROTATE_BYTES = 64 * 1024 * 1024;

/** A file read from where the last read stopped; a line cut at the end waits for the next read. */
class Tail {
  offset = 0;
  partial = '';
  constructor(readonly path: string) {}

  /** The whole new lines, or undefined when the file is gone. */
  lines(): string[] | undefined {
    if (!existsSync(this.path)) return undefined;
    const size = statSync(this.path).size;
    if (size < this.offset) this.offset = 0;
    if (size === this.offset) return [];
    const fd = openSync(this.path, 'r');
    try {
      const buffer = Buffer.alloc(Math.min(size - this.offset, 8 * 1024 * 1024));
      const read = readSync(fd, buffer, 0, buffer.length, this.offset);
      this.offset += read;
      const lines = (this.partial + buffer.toString('utf8', 0, read)).split('\n');
      this.partial = lines.pop() ?? '';
      return lines;
    } finally {
      closeSync(fd);
    }
  }
}

export class EdgeLog {
  readonly #path: string;
  readonly #reopen: () => void;
  #tail: Tail;
  /** The rotated file, read to its end while nginx may still write to it (until it reopened). */
  #draining: Tail | undefined;
  readonly #totals = new Map<string, number>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** `reopen` tells nginx to reopen its log (SIGUSR1) after a rotation. */
  constructor(path: string, reopen: () => void) {
    this.#path = path;
    this.#reopen = reopen;
    this.#tail = new Tail(path);
  }

  start(intervalMs = 250): void {
    this.#timer ??= setInterval(() => this.read(), intervalMs);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.read();
  }

  counts(): EdgeCounts {
    return this.#totals;
  }

  /** Reads what nginx wrote since the last read. */
  read(): void {
    if (this.#draining) {
      const rest = this.#draining.lines();
      for (const line of rest ?? []) this.#count(line);
      if (!rest || rest.length === 0) {
        rmSync(this.#draining.path, { force: true });
        this.#draining = undefined;
      }
    }
    for (const line of this.#tail.lines() ?? []) this.#count(line);
    if (!this.#draining && this.#tail.offset > ROTATE_BYTES) this.#rotate();
  }

  #count(line: string): void {
    const answer = parseEdgeLine(line);
    if (!answer) return;
    const key = `${answer.status}|${answer.source}`;
    this.#totals.set(key, (this.#totals.get(key) ?? 0) + 1);
  }

  #rotate(): void {
    const old = `${this.#path}.1`;
    renameSync(this.#path, old);
    this.#draining = Object.assign(new Tail(old), { offset: this.#tail.offset, partial: this.#tail.partial });
    this.#tail = new Tail(this.#path);
    this.#reopen();
  }
}
