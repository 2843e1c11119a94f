/**
 * The places the opening draw gave: a pre-queue ticket polled after the draw needs its user's
 * place, which only Redis knows. A drawn place never changes, so each worker asks Redis once per
 * user and keeps the answer (a client that keeps polling with its old ticket costs nothing more;
 * 54 000 such polls made 60 900 Redis commands before). Lookups of one user at once share one call.
 */

/** Most places kept per worker: far more than one worker's pre-queue pollers at any moment. */
const MAX_KEPT = 200_000;

export class DrawnPlaces {
  readonly #read: (user: string) => Promise<number | null>;
  readonly #max: number;
  readonly #kept = new Map<string, number>();
  readonly #asking = new Map<string, Promise<number | null>>();

  constructor(read: (user: string) => Promise<number | null>, max = MAX_KEPT) {
    this.#read = read;
    this.#max = max;
  }

  /** The user's drawn place (0: not placed yet; null: never joined). */
  placeOf(user: string): Promise<number | null> {
    const kept = this.#kept.get(user);
    if (kept !== undefined) return Promise.resolve(kept);
    const asking = this.#asking.get(user);
    if (asking) return asking;
    const call = this.#read(user)
      .then((place) => {
        // Only a real place is final: "not drawn yet" and "never joined" can still change.
        if (place !== null && place > 0) this.#keep(user, place);
        return place;
      })
      .finally(() => this.#asking.delete(user));
    this.#asking.set(user, call);
    return call;
  }

  #keep(user: string, place: number): void {
    // A Map iterates in insertion order: the first key is the oldest kept.
    if (this.#kept.size >= this.#max) this.#kept.delete(this.#kept.keys().next().value!);
    this.#kept.set(user, place);
  }
}
