/**
 * The node's view of its Redis: up or down, and the last outage (when it began and ended), in a
 * SharedArrayBuffer the supervisor's probe writes and every worker reads. An outage is told to
 * the scripts that pay and expire orders (settle-4.lua, outage-1.lua) so that payment deadlines
 * move by the time buyers could not pay. Times are this node's clock; the scripts get durations
 * ("how long ago"), so no clock has to agree with Redis'.
 */
import { randomInt } from 'node:crypto';

enum Cell {
  /** 1 while Redis answers, 0 while it does not. */
  Up = 0,
  /** Outages seen since start. */
  Outages,
  /** A random number naming the last outage among every node's (with its start). */
  Tag,
  Size,
}
enum Time {
  /** The last outage's start and end (ms since the epoch); end 0 while it lasts. */
  Start = 0,
  End,
  /** Redis' clock minus this node's, as the last probe measured it; NaN before the first. */
  Offset,
  Size,
}

/** How long after an outage ended a caller still passes it on (the supervisor records it at once). */
export const OUTAGE_FRESH_MS = 10_000;

export class RedisHealth {
  readonly #cells: Int32Array;
  readonly #times: Float64Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.#cells = new Int32Array(buffer, 0, Cell.Size);
    this.#times = new Float64Array(buffer, 16, Time.Size);
  }

  static create(): RedisHealth {
    const health = new RedisHealth(new SharedArrayBuffer(16 + Time.Size * 8));
    Atomics.store(health.#cells, Cell.Up, 1);
    health.#times[Time.Offset] = Number.NaN;
    return health;
  }

  /** Redis' clock minus this node's (ms), from a probe's TIME answer. */
  setOffset(ms: number): void {
    this.#times[Time.Offset] = ms;
  }

  /**
   * Now on Redis' clock, as far as this node can tell; 0 when it cannot yet. A script told when
   * it was asked decides by that time, not by when a stalled Redis finally ran it (settle-4.lua).
   */
  redisNow(now = Date.now()): number {
    const offset = this.#times[Time.Offset]!;
    return Number.isNaN(offset) ? 0 : Math.round(now + offset);
  }

  static attach(buffer: SharedArrayBuffer): RedisHealth {
    return new RedisHealth(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.#cells.buffer as SharedArrayBuffer;
  }

  isUp(): boolean {
    return Atomics.load(this.#cells, Cell.Up) === 1;
  }

  outages(): number {
    return Atomics.load(this.#cells, Cell.Outages);
  }

  /** Redis stopped answering; `since` is the last moment it was known to answer. Returns false when it was down already. */
  markDown(since: number): boolean {
    if (Atomics.compareExchange(this.#cells, Cell.Up, 1, 0) !== 1) return false;
    this.#times[Time.Start] = since;
    this.#times[Time.End] = 0;
    Atomics.store(this.#cells, Cell.Tag, randomInt(1, 2 ** 31 - 1));
    Atomics.add(this.#cells, Cell.Outages, 1);
    return true;
  }

  /** Redis answers again; returns the outage that ended, or undefined when it was up. */
  markUp(now = Date.now()): { start: number; end: number } | undefined {
    if (this.isUp()) return undefined;
    this.#times[Time.End] = now;
    Atomics.store(this.#cells, Cell.Up, 1);
    return { start: this.#times[Time.Start]!, end: now };
  }

  /**
   * The last outage as the scripts take it, `id:msAgoStart:msAgoEnd:asked` (msAgoEnd 0 while it
   * lasts; `asked`: now on Redis' clock as this node reckons it, 0 when it cannot yet), or '' when
   * none is recent. The script places the outage before `asked`, not before the moment it runs:
   * a call queued behind a frozen Redis recorded outages ending up to 2 s late.
   */
  outageArgument(now = Date.now()): string {
    const tag = Atomics.load(this.#cells, Cell.Tag);
    if (tag === 0) return '';
    const start = this.#times[Time.Start]!;
    const end = this.#times[Time.End]! || now;
    if (now - end > OUTAGE_FRESH_MS || end <= start) return '';
    const ago = `${Math.max(0, Math.round(now - start))}:${Math.max(0, Math.round(now - end))}`;
    return `${Math.round(start).toString(36)}-${tag.toString(36)}:${ago}:${this.redisNow(now)}`;
  }
}
