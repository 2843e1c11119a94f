/**
 * The app's own per-user limit, for what nginx cannot see (several nodes behind another balancer,
 * or no nginx at all): at most `limit` attempts per user per sale in each window, counted in one
 * SharedArrayBuffer by every worker of the node, so there is no Redis call and a user cannot
 * spread attempts over the workers.
 *
 * An open-addressing table of (fingerprint, count) pairs, placed by a keyed hash (see #hasher): each user and sale has a slot of its
 * own, so one heavy user never holds an innocent one back (a sketch that shares counters did, in
 * a test of 100 000 users). Each count carries the window it counts, so a slot of an older window
 * is free again without a sweep. When a window holds more users than the table (a million on one
 * node), the newcomers are let through: the limit fails open, never shut.
 */
import { randomBytes } from 'node:crypto';

const SLOT_BITS = 20;
const SLOTS = 1 << SLOT_BITS;
/** How many slots a user's key may try before it is let through uncounted. */
const PROBES = 32;
/** A count cell: the window's low 8 bits above a 23-bit count. */
const COUNT_BITS = 23;
const COUNT_MAX = (1 << COUNT_BITS) - 1;

export interface AttemptLimit {
  readonly buffer: SharedArrayBuffer;
  /** The node's key of the table's hash (Attempts.secret()), the same in every worker. */
  readonly secret: string;
  /** Attempts allowed per user per sale in each window; 0: no limit. */
  readonly limit: number;
  readonly windowMs: number;
}

export class Attempts {
  /** Slot i: cells[2i] the key's fingerprint (0: never used), cells[2i + 1] its count. */
  readonly #cells: Int32Array;
  readonly #limit: number;
  readonly #windowMs: number;
  /**
   * Slots are placed by an HMAC-SHA256 under a secret drawn per node at start: with a public hash,
   * 32 names found offline filled a chosen name's probe sequence and lifted its cap; nobody can find
   * such names without the secret. Keyed once, copied per attempt (keying costs twice the hash).
   */
  readonly #hasher: Bun.CryptoHasher;
  // Bun writes a digest only into an array of at least 64 bytes (its largest hash).
  readonly #mac = new Uint8Array(64);
  readonly #words = new Uint32Array(this.#mac.buffer, 0, 2);

  constructor({ buffer, limit, windowMs, secret }: AttemptLimit) {
    this.#cells = new Int32Array(buffer);
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#hasher = new Bun.CryptoHasher('sha256', secret);
  }

  /** A new key for one node's table. */
  static secret(): string {
    return randomBytes(32).toString('hex');
  }

  /** A new buffer for one node (8 MiB). */
  static buffer(): SharedArrayBuffer {
    return new SharedArrayBuffer(2 * SLOTS * Int32Array.BYTES_PER_ELEMENT);
  }

  /** Counts one attempt of `user` on `sale`; 0 when it is allowed, else the ms until the window ends. */
  hit(sale: string, user: string, now = Date.now()): number {
    if (this.#limit === 0) return 0;
    const window = Math.floor(now / this.#windowMs);
    const tag = window & 0xff;
    this.#hasher.copy().update(`${sale}\n${user}`).digest(this.#mac);
    const start = this.#words[0]!;
    const print = this.#words[1]! | 1;
    for (let probe = 0; probe < PROBES; probe++) {
      const slot = ((start + probe) & (SLOTS - 1)) * 2;
      if (!this.#claim(slot, print, tag)) continue;
      return this.#bump(slot + 1, tag) <= this.#limit ? 0 : (window + 1) * this.#windowMs - now;
    }
    return 0;
  }

  /** Whether `slot` is the key's: it holds its fingerprint, or it was free (unused, or of an older window) and is now. */
  #claim(slot: number, print: number, tag: number): boolean {
    const held = Atomics.load(this.#cells, slot);
    if (held === print) return true;
    const current = Atomics.load(this.#cells, slot + 1) >>> COUNT_BITS === tag && held !== 0;
    return !current && Atomics.compareExchange(this.#cells, slot, held, print) === held;
  }

  /** Adds one to count cell `at` for window `tag` (restarting it when it counted an older window); returns the new count. */
  #bump(at: number, tag: number): number {
    for (;;) {
      const old = Atomics.load(this.#cells, at);
      const same = old >>> COUNT_BITS === tag;
      const count = same ? Math.min((old & COUNT_MAX) + 1, COUNT_MAX) : 1;
      if (Atomics.compareExchange(this.#cells, at, old, (tag << COUNT_BITS) | count) === old) return count;
    }
  }
}
