/** A sale's orders in Redis: read them and move them along reserved → paid | cancelled | expired. */
import type { RedisClient as Redis } from '../redis/client.ts';
import { parseEvent } from './events.ts';
import { compareOrderIds, extendDeadline, ORDER_STATES, parseOutages, type Order, type OrderState } from './model.ts';
import type { SaleGuard } from '../redis/guard.ts';
import { keyList, LAST_ID_FIELD, OUTAGES_FIELD, RECOVERING_FIELD, type SaleKeys } from '../redis/keys.ts';

/** Parses the states hash's value "state|payBy|port|updatedAt|user" (user last: it may hold any allowed character). */
export function parseOrder(sale: string, orderId: string, raw: string): Order {
  const match = /^([a-z]+)\|(\d+)\|(\d*)\|(\d+)\|(.*)$/.exec(raw);
  if (!match || !ORDER_STATES.includes(match[1] as OrderState))
    throw new Error(`order ${orderId} of ${sale} has an unreadable state: ${raw}`);
  const payBy = Number(match[2]);
  return {
    orderId,
    sale,
    state: match[1] as OrderState,
    user: match[5]!,
    port: Number(match[3]),
    createdAt: Number(orderId.split('-')[0]),
    payBy: payBy > 0 ? payBy : null,
    updatedAt: Number(match[4]),
  };
}

/** A `created` stream entry as the reserved order it stands for (settle-4.lua's reading); null for any other entry. */
export function reservedOrder(sale: string, orderId: string, fields: readonly string[]): Order | null {
  const e = parseEvent(orderId, fields);
  if (e?.kind !== 'created') return null;
  return {
    orderId,
    sale,
    state: 'reserved',
    user: e.user,
    port: e.port ?? 0,
    createdAt: e.at,
    payBy: e.window ? e.at + e.window : null,
    updatedAt: e.at,
  };
}

/** A read refused: the sale is recovering orders Redis lost, so Redis' answer could not be trusted. */
export class SaleStoppedError extends Error {
  override name = 'SaleStoppedError';
  constructor() {
    super('the ticket store is restoring orders after a fault; try again in a moment');
  }
}

/**
 * Refuses a read while the sale is recovering, or while Redis is older than `guard`'s newest
 * order: an order lost and not yet restored would read "no such order".
 */
async function trusted(redis: Redis, keys: SaleKeys, guard: SaleGuard | undefined): Promise<string | null> {
  // The mark before the read: one taken after it could count a purchase that finished meanwhile,
  // and Redis would look older than it is (a 503 `recovering` with no fault at all).
  const seen = guard?.seen() ?? '0-0';
  const [outages, recovering, lastId] = await redis.hmget(keys.sale, OUTAGES_FIELD, RECOVERING_FIELD, LAST_ID_FIELD);
  if (recovering !== null || (seen !== '0-0' && compareOrderIds(lastId ?? '0-0', seen) < 0)) throw new SaleStoppedError();
  return outages ?? null;
}

/**
 * An order: its states entry once it has one, else its `created` entry (a new order is only that),
 * with its deadline moved by the sale's Redis outages, as settle-4.lua pays and expires it.
 */
export async function readOrder(redis: Redis, keys: SaleKeys, orderId: string, guard?: SaleGuard): Promise<Order | null> {
  const [raw, outages] = await Promise.all([redis.hget(keys.states, orderId), trusted(redis, keys, guard)]);
  let order: Order | null = null;
  if (raw !== null) order = parseOrder(keys.sale, orderId, raw);
  else {
    const [entry] = (await redis.xrange(keys.orders, orderId, orderId)) as [string, string[]][];
    order = entry ? reservedOrder(keys.sale, orderId, entry[1]) : null;
  }
  return order && { ...order, payBy: extendDeadline(order.payBy, order.createdAt, parseOutages(outages)) };
}

/** Which of `orderIds` Redis holds (in the states hash or as a `created` entry); for checks after a failure. */
export async function ordersPresent(redis: Redis, keys: SaleKeys, orderIds: readonly string[]): Promise<Set<string>> {
  if (orderIds.length === 0) return new Set();
  const stored = await redis.hmget(keys.states, ...orderIds);
  const present = new Set(orderIds.filter((_, i) => stored[i] !== null));
  const sorted = [...orderIds].sort(compareOrderIds);
  const entries = (await redis.xrange(keys.orders, sorted[0]!, sorted.at(-1)!)) as [string, string[]][];
  for (const [id, fields] of entries) if (reservedOrder(keys.sale, id, fields)) present.add(id);
  return new Set(orderIds.filter((id) => present.has(id)));
}

/** The live (reserved or paid) order of `user`, if any. */
export async function orderOfUser(redis: Redis, keys: SaleKeys, user: string, guard?: SaleGuard): Promise<Order | null> {
  const orderId = await redis.hget(keys.buyers, user);
  if (orderId === null) await trusted(redis, keys, guard);
  return orderId === null ? null : readOrder(redis, keys, orderId, guard);
}

/** settle-4.lua's return codes. */
export enum SettleCode {
  Done = 1,
  /** Nothing changed: the sale is recovering orders Redis lost (includes/guard.lua). */
  Stopped = -3,
  WrongState = -4,
  TooLate = -5,
  NoOrder = -6,
  NotYours = -7,
}

export type Settled =
  | { readonly code: SettleCode.Done; readonly state: OrderState }
  | { readonly code: SettleCode.WrongState; readonly state: OrderState }
  | { readonly code: SettleCode.TooLate | SettleCode.NoOrder | SettleCode.NotYours | SettleCode.Stopped };

/** Pays or cancels an order for `user` (`'*'`: any user, for trusted callers). */
export async function settle(
  redis: Redis,
  keys: SaleKeys,
  action: 'pay' | 'cancel',
  orderId: string,
  user: string,
  guard: SaleGuard,
): Promise<Settled> {
  const [code, state] = await redis.settle(...keyList(keys), action, orderId, user, guard.seen(), guard.outage(), String(guard.asked()));
  switch (Number(code)) {
    case SettleCode.Stopped:
      return { code: SettleCode.Stopped };
    case SettleCode.Done:
      return { code: SettleCode.Done, state: state as OrderState };
    case SettleCode.WrongState:
      return { code: SettleCode.WrongState, state: state as OrderState };
    case SettleCode.TooLate:
    case SettleCode.NoOrder:
    case SettleCode.NotYours:
      return { code: Number(code) as SettleCode.TooLate | SettleCode.NoOrder | SettleCode.NotYours };
    default:
      throw new Error(`settle script returned unknown code ${String(code)}`);
  }
}

/**
 * Releases the reserved orders whose deadline passed, walking at most `max` stream entries from
 * the sale's expiry cursor; `more` is true when it stopped at that limit, not at an order still
 * due later. A call Redis runs more than `lateMs` after it was asked does nothing (0: no limit).
 */
export async function expireDue(
  redis: Redis,
  keys: SaleKeys,
  max: number,
  guard: SaleGuard,
  lateMs = 0,
): Promise<{ ids: string[]; users: string[]; more: boolean; stopped: boolean; nextDue: number }> {
  const [count, more, nextDue, ...released] = await redis.settle(
    ...keyList(keys),
    'expire',
    String(max),
    '*',
    guard.seen(),
    guard.outage(),
    String(guard.asked()),
    String(lateMs),
  );
  if (Number(count) === SettleCode.Stopped) return { ids: [], users: [], more: false, stopped: true, nextDue: 0 };
  const ids = released.filter((_, i) => i % 2 === 0).map(String);
  const users = released.filter((_, i) => i % 2 === 1).map(String);
  return { ids, users, more: Number(more) === 1, stopped: false, nextDue: Number(nextDue) || 0 };
}

/** What the order routes need of a sale's orders. */
export interface OrderStore {
  /** The sale these orders belong to. */
  readonly sale: string;
  read(orderId: string): Promise<Order | null>;
  ofUser(user: string): Promise<Order | null>;
  settle(action: 'pay' | 'cancel', orderId: string, user: string): Promise<Settled>;
}

/** The order routes' store, on Redis; `guard` is what the caller knows (its newest order, its last outage). */
export function redisOrderStore(redis: Redis, keys: SaleKeys, guard: SaleGuard): OrderStore {
  return {
    sale: keys.sale,
    read: (orderId) => readOrder(redis, keys, orderId, guard),
    ofUser: (user) => orderOfUser(redis, keys, user, guard),
    settle: (action, orderId, user) => settle(redis, keys, action, orderId, user, guard),
  };
}

/**
 * `store`, telling `onRelease` whenever a settle gave a ticket back (a cancel, or a payment too
 * late that expired the order), so the sale is on sale again at once, not at the next sync; and
 * `onPaid` when a payment went through (the sale's figures changed: "sold out for now" may now be
 * "sold out for good").
 */
export function releasing(store: OrderStore, onRelease: () => void, onPaid: () => void = () => {}): OrderStore {
  return {
    ...store,
    settle: async (action, orderId, user) => {
      const settled = await store.settle(action, orderId, user);
      if ((settled.code === SettleCode.Done && settled.state === 'cancelled') || settled.code === SettleCode.TooLate) onRelease();
      else if (settled.code === SettleCode.Done && settled.state === 'paid') onPaid();
      return settled;
    },
  };
}
