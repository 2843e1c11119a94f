/**
 * A linearizability checker for histories of concurrent operations, written from the published
 * algorithm: Wing & Gong's search as improved by Lowe ("Testing for linearizability", 2017) and
 * implemented by Porcupine (anishathalye/porcupine): walk the history's calls and returns in time
 * order, linearize a pending call whenever the model allows it, backtrack at a return whose call
 * was never linearized, and remember every (linearized set, model state) pair already tried, so no
 * configuration is explored twice. No such checker is published on npm.
 *
 * The model may be nondeterministic: `step` answers every state the operation can lead to (none:
 * the operation cannot have happened there). An operation whose outcome the client never learned
 * (a timeout, a 503) has `end: Infinity` and a step that also allows "it had no effect".
 */

export interface Operation<I, O> {
  readonly input: I;
  readonly output: O;
  /** When the client sent it and when it got the answer (ms); Infinity when no answer came. */
  readonly start: number;
  readonly end: number;
}

export interface Model<S, I, O> {
  readonly init: S;
  /** Every state `input` answered with `output` can lead to from `state`; empty when it cannot happen there. */
  step(state: S, input: I, output: O, op: Operation<I, O>): S[];
  /** A string that is equal for equal states (memoization). */
  key(state: S): string;
}

export type Verdict<I, O> =
  | { readonly ok: true; readonly explored: number }
  | {
      readonly ok: false;
      readonly explored: number;
      /** The longest prefix the search could linearize, and the operations it could not place after it. */
      readonly linearized: readonly Operation<I, O>[];
      readonly stuck: readonly Operation<I, O>[];
    };

interface Entry {
  readonly op: number;
  readonly call: boolean;
  readonly time: number;
  prev: Entry | undefined;
  next: Entry | undefined;
  /** The call's return, or the return's call. */
  match: Entry | undefined;
}

/** The events in time order, as a doubly linked list behind a sentinel head; calls before returns at equal times. */
function eventList<I, O>(history: readonly Operation<I, O>[]): Entry {
  const events: Entry[] = [];
  history.forEach((op, i) => {
    const call: Entry = { op: i, call: true, time: op.start, prev: undefined, next: undefined, match: undefined };
    const ret: Entry = { op: i, call: false, time: op.end, prev: undefined, next: undefined, match: call };
    call.match = ret;
    events.push(call, ret);
  });
  events.sort((a, b) => a.time - b.time || (a.call === b.call ? a.op - b.op : a.call ? -1 : 1));
  const head: Entry = { op: -1, call: false, time: -Infinity, prev: undefined, next: undefined, match: undefined };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  return head;
}

/** Takes a call and its return out of the list. */
function lift(call: Entry): void {
  call.prev!.next = call.next;
  if (call.next) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

/** Puts them back (in reverse order of lift). */
function unlift(call: Entry): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next) call.next.prev = call;
}

interface Frame<S> {
  readonly entry: Entry;
  /** The state before this call was linearized, and the states it may lead to, tried in turn. */
  readonly before: S;
  readonly options: S[];
  next: number;
}

/**
 * Whether `history` is linearizable for `model`. `budget` bounds the configurations explored:
 * past it the search throws rather than run for hours on a pathological history.
 */
export function checkLinearizable<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[], budget = 5_000_000): Verdict<I, O> {
  const head = eventList(history);
  const linearized = new Uint8Array(history.length);
  // Configurations are remembered by a 64-bit hash: the full strings of a long history take gigabytes.
  const seen = new Set<bigint>();
  const stack: Frame<S>[] = [];
  let best: number[] = [];
  let explored = 0;
  let state = model.init;
  let entry = head.next;
  const configuration = (s: S) => Bun.hash.wyhash(`${Buffer.from(linearized).toString('base64')}|${model.key(s)}`);

  /** Linearizes `call` into the next unseen state among `options` from `from`; false when none is new. */
  const tryOptions = (frame: Frame<S>): boolean => {
    while (frame.next < frame.options.length) {
      const next = frame.options[frame.next++]!;
      linearized[frame.entry.op] = 1;
      const key = configuration(next);
      if (seen.has(key)) {
        linearized[frame.entry.op] = 0;
        continue;
      }
      seen.add(key);
      if (++explored > budget) throw new Error(`linearizability search gave up after ${budget} configurations`);
      state = next;
      lift(frame.entry);
      return true;
    }
    return false;
  };

  while (head.next) {
    if (!entry) throw new Error('linearizability search ran past the end of the history');
    if (entry.call) {
      const op = history[entry.op]!;
      const frame: Frame<S> = { entry, before: state, options: model.step(state, op.input, op.output, op), next: 0 };
      if (tryOptions(frame)) {
        stack.push(frame);
        if (stack.length > best.length) best = stack.map((f) => f.entry.op);
        entry = head.next;
      } else {
        entry = entry.next;
      }
      continue;
    }
    // A return whose call is not linearized: undo the latest choice and try its next option, or go on past it.
    let resumed = false;
    while (stack.length > 0 && !resumed) {
      const frame = stack.pop()!;
      unlift(frame.entry);
      linearized[frame.entry.op] = 0;
      state = frame.before;
      if (tryOptions(frame)) {
        stack.push(frame);
        entry = head.next;
        resumed = true;
      } else {
        entry = frame.entry.next;
        resumed = true;
      }
    }
    if (!resumed) {
      const placed = new Set(best);
      return {
        ok: false,
        explored,
        linearized: best.map((i) => history[i]!),
        stuck: history.filter((_, i) => !placed.has(i)).slice(0, 20),
      };
    }
  }
  return { ok: true, explored };
}
