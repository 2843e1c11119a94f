/**
 * What a caller tells every script that changes a sale (includes/guard.lua, includes/deadlines.lua):
 * the newest order id of the sale it saw Redis make, so a Redis that came back older refuses the
 * change instead of hiding its loss, and the last Redis outage it saw, so no payment deadline
 * runs out while buyers could not pay.
 */
export interface SaleGuard {
  /** The newest order id of this sale the caller saw; `0-0` when none. */
  readonly seen: () => string;
  /** The caller's last Redis outage as `id:msAgoStart:msAgoEnd`, or `''` (health.ts). */
  readonly outage: () => string;
  /** Now on Redis' clock as the caller reckons it (0: unknown): when it asked, for a call Redis may run late. */
  readonly asked: () => number;
}

/** For callers that know nothing (tools, tests): no mark, no outage, no clock. */
export const NO_GUARD: SaleGuard = { seen: () => '0-0', outage: () => '', asked: () => 0 };
