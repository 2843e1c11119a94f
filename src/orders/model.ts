/**
 * The order model: its states, which are live and which final, and the order id's helpers.
 * An order id is its `created` entry's id on the sale's stream, `<ms>-<seq>`. Adding a state is a
 * change here, in the Lua scripts that move orders (settle-4.lua, restore-4.lua) and the tests.
 */

/** Every state, in lifecycle order: reserved → paid | cancelled | expired. */
export const ORDER_STATES = ['reserved', 'paid', 'cancelled', 'expired'] as const;
export type OrderState = (typeof ORDER_STATES)[number];

/** States that hold a ticket: counted in `ticket_sold_nums`, the user's one live order. */
export const LIVE_STATES: ReadonlySet<OrderState> = new Set(['reserved', 'paid']);
/** States an order never leaves. */
export const FINAL_STATES = ['paid', 'cancelled', 'expired'] as const satisfies readonly OrderState[];

export const isLive = (state: string): boolean => LIVE_STATES.has(state as OrderState);

export interface Order {
  readonly orderId: string;
  readonly sale: string;
  readonly state: OrderState;
  /** `''` for an anonymous order. */
  readonly user: string;
  /** Port of the worker that sold it. */
  readonly port: number;
  /** Milliseconds since the epoch, Redis' clock (the order id's first part). */
  readonly createdAt: number;
  /** Payment deadline; `null` when the sale has none. */
  readonly payBy: number | null;
  /** When the state last changed. */
  readonly updatedAt: number;
}

/** Milliseconds of an order or stream entry id. */
export function idTime(id: string): number {
  return Number(id.split('-')[0]);
}

/** Orders two order (stream) ids by time, then sequence. */
export function compareOrderIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am !== bm ? am - bm : (as ?? 0) - (bs ?? 0);
}

/** The newer of two ids. */
export const newerId = (a: string, b: string): string => (compareOrderIds(a, b) >= 0 ? a : b);

/** The largest part of a stream id Redis accepts: each of `<ms>-<seq>` is an unsigned 64-bit number. */
const ID_PART_MAX = 18_446_744_073_709_551_615n;

/**
 * Whether `id` is an order (stream entry) id Redis would accept: `<ms>-<seq>`, each part at most
 * 2^64 - 1. Checked before Redis sees it: Redis refuses a larger part with an error, and a
 * client's typo must be a 400, never a failure of the worker.
 */
export function isOrderId(id: string): boolean {
  const match = /^(\d{1,20})-(\d{1,20})$/.exec(id);
  return match !== null && BigInt(match[1]!) <= ID_PART_MAX && BigInt(match[2]!) <= ID_PART_MAX;
}

/** One Redis outage a node saw, as a sale keeps it (includes/deadlines.lua): ms on Redis' clock. */
export interface Outage {
  readonly id: string;
  readonly start: number;
  readonly end: number;
}

/** The sale hash's `outages` field ("id,start,end;..."). */
export function parseOutages(raw: string | null | undefined): Outage[] {
  return [...(raw ?? '').matchAll(/([^,;]+),(\d+),(\d+)/g)].map((m) => ({ id: m[1]!, start: Number(m[2]), end: Number(m[3]) }));
}

/**
 * An order's payment deadline moved by the outages that overlapped its pay window (and the
 * window's extension), each stretch of time counted once: the same rule as deadline() in
 * src/redis/scripts/includes/deadlines.lua, which pays and expires by it; this one is for showing it.
 */
export function extendDeadline(payBy: number | null, createdAt: number, outages: readonly Outage[]): number | null {
  if (payBy === null || payBy === 0 || outages.length === 0) return payBy;
  let deadline = payBy;
  let reached = createdAt;
  for (const o of [...outages].sort((a, b) => a.start - b.start)) {
    if (o.start >= deadline) break;
    const from = Math.max(o.start, reached);
    if (o.end > from) {
      deadline += o.end - from;
      reached = o.end;
    }
  }
  // At most one pay window more in all, as includes/deadlines.lua.
  return Math.min(deadline, payBy + (payBy - createdAt));
}
