/**
 * The refill policy: how much local stock each worker holds for a sale, when it asks for more, and
 * how much it gets. Pure functions of a sale's own figures, so a 5-ticket sale and a 10 000-ticket
 * sale each get a share that fits them. Redis refuses every sale past the total whatever a worker
 * holds: local stock only decides how many buyers reach Redis (about total + buffer).
 */

export interface RefillPolicy {
  readonly workers: number;
  /** Extra local stock over the fair share, as a ratio (SPIKE_BUFFER: 0.2 = 20 % more). */
  readonly buffer: number;
  /** A fixed local stock per worker for every sale (SPIKE_LOCAL_STOCK); undefined: from each sale's total. */
  readonly localStock?: number;
}

/** The most a worker holds of a sale of `total` tickets: its fair share plus the buffer (at least 1), or the fixed amount. */
export function localStockFor(policy: RefillPolicy, total: number): number {
  if (policy.localStock !== undefined) return policy.localStock;
  return Math.max(1, Math.ceil((total * (1 + policy.buffer)) / policy.workers));
}

/** A worker at or below this asks for a top-up before it runs dry: a quarter of its local stock. */
export function lowWater(localStock: number): number {
  return Math.floor(localStock / 4);
}

/**
 * What a worker running low is topped up to: everything that remains plus the buffer, at most
 * its local stock. A worker may try to sell all that remains: when traffic reaches only some
 * workers (one died, or nginx skips it), they must not run dry every few tickets. Nothing when
 * nothing remains.
 */
export function topUpTo(policy: RefillPolicy, total: number, remaining: number): number {
  if (remaining <= 0) return 0;
  return Math.min(localStockFor(policy, total), Math.max(1, Math.ceil(remaining * (1 + policy.buffer))));
}
