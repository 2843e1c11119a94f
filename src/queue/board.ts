/**
 * One sale's waiting room as this node's workers see it: a SharedArrayBuffer the supervisor
 * fills from Redis each sync (the serving counter, the admission steps, sold out for good), so a
 * status poll or a ticket check is answered from memory, with no Redis call.
 *
 * The supervisor is the only writer. It writes a consistent set of values under a sequence lock
 * (an odd version while writing); a reader that saw the version change retries.
 */
import type { QueueState } from '../redis/queue.ts';

/** Admission steps kept: the last admission window's; the supervisor spaces steps so they fit. */
export const STEP_RING = 1024;

enum Flag {
  Version = 0,
  /** 1: buyers of this sale need an admission (set by the stock sync from the sale's hash). */
  Queued,
  /** 1 once the pre-queue was drawn (or there is none). */
  Drawn,
  /** 1: sold out, and no reserved order can come back. */
  Final,
  /** How many states were published; 0: none yet. */
  Publishes,
  Size,
}
const FLAG_BYTES = 8 * Math.ceil((Flag.Size * 4) / 8);

enum Value {
  Serving = 0,
  Tail,
  Pre,
  AdmissionMs,
  Rate,
  /** Redis' clock minus this node's when the state was read, so workers compare like with like. */
  ClockOffset,
  Steps,
  /** Then STEP_RING pairs (ms, serving), oldest first. */
  Ring,
}

/** What a worker reads: one consistent view of the waiting room. */
export interface QueueView {
  readonly queued: boolean;
  readonly published: boolean;
  readonly drawn: boolean;
  readonly final: boolean;
  readonly serving: number;
  readonly tail: number;
  readonly pre: number;
  readonly admissionMs: number;
  readonly rate: number;
  /** Now on Redis' clock (this node's clock plus the offset measured at the last sync). */
  readonly now: number;
  /** When position `p` was admitted (Redis' clock), or undefined when it is not (yet) or its step is forgotten. */
  admittedAt(position: number): number | undefined;
}

export class QueueBoard {
  readonly #flags: Int32Array;
  readonly #values: Float64Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.#flags = new Int32Array(buffer, 0, Flag.Size);
    this.#values = new Float64Array(buffer, FLAG_BYTES, Value.Ring + 2 * STEP_RING);
  }

  static bytes(): number {
    return FLAG_BYTES + (Value.Ring + 2 * STEP_RING) * Float64Array.BYTES_PER_ELEMENT;
  }

  static create(): QueueBoard {
    return new QueueBoard(new SharedArrayBuffer(QueueBoard.bytes()));
  }

  static attach(buffer: SharedArrayBuffer): QueueBoard {
    if (buffer.byteLength !== QueueBoard.bytes())
      throw new Error(`queue board buffer holds ${buffer.byteLength} bytes, expected ${QueueBoard.bytes()}`);
    return new QueueBoard(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.#flags.buffer as SharedArrayBuffer;
  }

  /** Cheap check on every purchase: does this sale need an admission? */
  isQueued(): boolean {
    return Atomics.load(this.#flags, Flag.Queued) === 1;
  }

  /** From the sale's hash (the stock sync): queued or not, and the settings. */
  setSettings(settings: { admissionMs: number; rate: number } | undefined): void {
    this.#write(() => {
      this.#values[Value.AdmissionMs] = settings?.admissionMs ?? 0;
      this.#values[Value.Rate] = settings?.rate ?? 0;
    });
    Atomics.store(this.#flags, Flag.Queued, settings ? 1 : 0);
  }

  /** Publishes what admit-3.lua answered; `localNow` is this node's clock when the answer came. */
  publish(state: QueueState, localNow = Date.now()): void {
    const steps = state.steps.slice(-STEP_RING);
    this.#write(() => {
      const v = this.#values;
      v[Value.Serving] = state.serving;
      v[Value.Tail] = state.tail;
      v[Value.Pre] = state.pre;
      v[Value.ClockOffset] = state.now - localNow;
      v[Value.Steps] = steps.length;
      steps.forEach((step, i) => {
        v[Value.Ring + 2 * i] = step.at;
        v[Value.Ring + 2 * i + 1] = step.serving;
      });
      Atomics.store(this.#flags, Flag.Drawn, state.drawn ? 1 : 0);
      Atomics.store(this.#flags, Flag.Final, state.final ? 1 : 0);
    });
    Atomics.add(this.#flags, Flag.Publishes, 1);
  }

  #write(change: () => void): void {
    Atomics.add(this.#flags, Flag.Version, 1);
    change();
    Atomics.add(this.#flags, Flag.Version, 1);
  }

  /** One consistent view (retries while the supervisor writes). */
  view(): QueueView {
    for (;;) {
      const before = Atomics.load(this.#flags, Flag.Version);
      if (before % 2 === 1) continue;
      const view = this.#read();
      if (Atomics.load(this.#flags, Flag.Version) === before) return view;
    }
  }

  #read(): QueueView {
    const v = this.#values;
    const serving = v[Value.Serving]!;
    return {
      queued: Atomics.load(this.#flags, Flag.Queued) === 1,
      published: Atomics.load(this.#flags, Flag.Publishes) > 0,
      drawn: Atomics.load(this.#flags, Flag.Drawn) === 1,
      final: Atomics.load(this.#flags, Flag.Final) === 1,
      serving,
      tail: v[Value.Tail]!,
      pre: v[Value.Pre]!,
      admissionMs: v[Value.AdmissionMs]!,
      rate: v[Value.Rate]!,
      now: Date.now() + v[Value.ClockOffset]!,
      admittedAt: (position) => (position >= 1 && position <= serving ? this.#admittedAt(position) : undefined),
    };
  }

  /**
   * The time of the first step that reached `position` (a binary search over the ring, under the
   * lock). The oldest step kept is the one just before the admission window: a position it
   * already covered was admitted at or before it, so its admission has ended (answered as that
   * step's time, which is old enough to say so).
   */
  #admittedAt(position: number): number | undefined {
    const v = this.#values;
    for (;;) {
      const before = Atomics.load(this.#flags, Flag.Version);
      if (before % 2 === 1) continue;
      let at: number | undefined;
      let low = 0;
      let high = v[Value.Steps]! - 1;
      if (high >= 0 && v[Value.Ring + 2 * high + 1]! >= position) {
        while (low < high) {
          const mid = (low + high) >> 1;
          if (v[Value.Ring + 2 * mid + 1]! >= position) high = mid;
          else low = mid + 1;
        }
        at = v[Value.Ring + 2 * low];
      }
      if (Atomics.load(this.#flags, Flag.Version) === before) return at;
    }
  }
}
