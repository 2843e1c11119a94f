/**
 * Whether the node can write its journal (journal.ts), in shared memory: each writer (a worker,
 * the reaper) marks its own cell when a write fails and clears it once one succeeds. While any
 * cell is marked the node sells nothing (a sale it could not journal could be lost with a Redis
 * rollback), /readyz answers 503 and the alert fires; it heals by itself when a write succeeds.
 */
export class JournalHealth {
  readonly #cells: Int32Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.#cells = new Int32Array(buffer);
  }

  /** A new buffer with a cell for each of `writers` writers. */
  static create(writers: number): JournalHealth {
    return new JournalHealth(new SharedArrayBuffer(Math.max(1, writers) * Int32Array.BYTES_PER_ELEMENT));
  }

  static attach(buffer: SharedArrayBuffer): JournalHealth {
    return new JournalHealth(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.#cells.buffer as SharedArrayBuffer;
  }

  /** Writer `i`'s last write failed (`true`) or succeeded. */
  set(i: number, failing: boolean): void {
    if (!(i >= 0 && i < this.#cells.length)) throw new RangeError(`no journal writer ${i} (0 to ${this.#cells.length - 1})`);
    Atomics.store(this.#cells, i, failing ? 1 : 0);
  }

  /** Whether any writer's journal is failing now. */
  failing(): boolean {
    for (let i = 0; i < this.#cells.length; i++) if (Atomics.load(this.#cells, i) !== 0) return true;
    return false;
  }
}
