/** A sale's orders in Redis: read them and move them along reserved → paid | cancelled | expired. */
import type { RedisClient as Redis } from './client.ts';
import type { OrderStore } from '../order-routes.ts';
import { keyList, type SaleKeys } from './sale.ts';

export type OrderState = 'reserved' | 'paid' | 'cancelled' | 'expired';

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

/** Parses the states hash's value "state|payBy|port|updatedAt|user" (user last: it may hold any allowed character). */
export function parseOrder(sale: string, orderId: string, raw: string): Order {
  const match = /^([a-z]+)\|(\d+)\|(\d*)\|(\d+)\|(.*)$/.exec(raw);
  if (!match) throw new Error(`order ${orderId} of ${sale} has an unreadable state: ${raw}`);
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

export async function readOrder(redis: Redis, keys: SaleKeys, orderId: string): Promise<Order | null> {
  const raw = await redis.hget(keys.states, orderId);
  return raw === null ? null : parseOrder(keys.sale, orderId, raw);
}

/** The live (reserved or paid) order of `user`, if any. */
export async function orderOfUser(redis: Redis, keys: SaleKeys, user: string): Promise<Order | null> {
  const orderId = await redis.hget(keys.buyers, user);
  return orderId === null ? null : readOrder(redis, keys, orderId);
}

/** settle-5.lua's return codes. */
export enum SettleCode {
  Done = 1,
  WrongState = -4,
  TooLate = -5,
  NoOrder = -6,
  NotYours = -7,
}

export type Settled =
  | { readonly code: SettleCode.Done; readonly state: OrderState }
  | { readonly code: SettleCode.WrongState; readonly state: OrderState }
  | { readonly code: SettleCode.TooLate | SettleCode.NoOrder | SettleCode.NotYours };

/** Pays or cancels an order for `user` (`'*'`: any user, for trusted callers). */
export async function settle(redis: Redis, keys: SaleKeys, action: 'pay' | 'cancel', orderId: string, user: string): Promise<Settled> {
  const [code, state] = await redis.settle(...keyList(keys), action, orderId, user);
  switch (Number(code)) {
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

/** Releases up to `max` reserved orders whose deadline passed; returns their ids. */
export async function expireDue(redis: Redis, keys: SaleKeys, max: number): Promise<string[]> {
  const [, ...ids] = await redis.settle(...keyList(keys), 'expire', String(max), '*');
  return ids.map(String);
}

/** The order routes' store, on Redis. */
export function redisOrderStore(redis: Redis, keys: SaleKeys): OrderStore {
  return {
    sale: keys.sale,
    read: (orderId) => readOrder(redis, keys, orderId),
    ofUser: (user) => orderOfUser(redis, keys, user),
    settle: (action, orderId, user) => settle(redis, keys, action, orderId, user),
  };
}
