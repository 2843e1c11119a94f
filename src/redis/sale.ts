/** A sale's keys in Redis and the operations on them: create, reset, read, purchase. */
import type { RedisClient as Redis } from './client.ts';

/** The original's sale: `HMSET ticket_hash_key ticket_total_nums 10000 ticket_sold_nums 0` starts it. */
export const DEFAULT_SALE = 'ticket_hash_key';
export const TOTAL_FIELD = 'ticket_total_nums';
export const SOLD_FIELD = 'ticket_sold_nums';

export interface SaleKeys {
  /** Hash with the total and sold counts (the original's layout), paid count and sale settings. */
  readonly sale: string;
  /** Hash user id → their live (reserved or paid) order id. */
  readonly buyers: string;
  /** Stream of order events: created (its id is the order id), paid, cancelled, expired. */
  readonly orders: string;
  /** Hash order id → "state|payBy|port|updatedAt|user", for orders no longer only `created` on the stream. */
  readonly states: string;
}

/** Every key of a sale, in the order the scripts take them: purchase-3.lua the first three, settle-4.lua all four. */
export function keyList(keys: SaleKeys): string[] {
  return [keys.sale, keys.buyers, keys.orders, keys.states];
}

/**
 * Keys of sale `id`. The sale hash keeps the original's bare name; the others carry `{id}` as a
 * hash tag, which hashes to the same slot as the bare name, so one script touches one slot and
 * runs unchanged on Redis Cluster.
 */
export function saleKeys(id: string): SaleKeys {
  return { sale: id, buyers: `{${id}}:buyers`, orders: `{${id}}:orders`, states: `{${id}}:order-states` };
}

/** The purchase script's return codes (purchase-3.lua). */
export enum PurchaseCode {
  Sold = 1,
  SoldOut = -1,
  Held = 2,
  NoSale = -2,
  /** Paused, outside its startsAt/endsAt, or recovering lost orders. */
  Closed = -3,
}

export type Purchase =
  | { readonly code: PurchaseCode.Sold; readonly orderId: string }
  | { readonly code: PurchaseCode.SoldOut }
  | { readonly code: PurchaseCode.Held; readonly orderId: string }
  | { readonly code: PurchaseCode.NoSale }
  | { readonly code: PurchaseCode.Closed };

export interface Seller {
  /** Port of the selling worker, recorded with the order. */
  readonly port: number;
  /** Time to pay a reserved order, in ms; 0: no deadline. */
  readonly payWindowMs: number;
}

/**
 * Runs purchase-3.lua for a batch of buyers (`''` = anonymous), in order; one answer per buyer.
 * `seen` is the newest order id of this sale the caller knows Redis made: a sale older than that
 * lost writes, and answers code -3 (closed) until it is restored.
 */
export async function purchaseMany(redis: Redis, keys: SaleKeys, seller: Seller, users: readonly string[], seen = '0-0'): Promise<Purchase[]> {
  const reply = await redis.purchase(keys.sale, keys.buyers, keys.orders, String(seller.port), String(seller.payWindowMs), seen, ...users);
  if (reply.length !== users.length * 2) throw new Error(`purchase script answered ${reply.length} values for ${users.length} buyers`);
  const answers: Purchase[] = new Array(users.length);
  for (let i = 0; i < users.length; i++) {
    const code = Number(reply[2 * i]);
    switch (code) {
      case PurchaseCode.Sold:
      case PurchaseCode.Held:
        answers[i] = { code, orderId: String(reply[2 * i + 1]) };
        break;
      case PurchaseCode.SoldOut:
      case PurchaseCode.NoSale:
      case PurchaseCode.Closed:
        answers[i] = { code };
        break;
      default:
        throw new Error(`purchase script returned unknown code ${String(reply[2 * i])}`);
    }
  }
  return answers;
}

/** One buyer: a batch of one. */
export async function purchase(redis: Redis, keys: SaleKeys, user: string, seller: Seller): Promise<Purchase> {
  return (await purchaseMany(redis, keys, seller, [user]))[0]!;
}

export interface SaleCount {
  readonly total: number;
  readonly sold: number;
  /** The newest order id sold; `0-0` before the first (or in a sale from before it was kept). */
  readonly lastId: string;
  /** Why the sale is stopped to restore lost orders; undefined while it is not. */
  readonly recovering: string | undefined;
}

export const PAID_FIELD = 'ticket_paid_nums';
/** The expiry cursor (a stream id): every order up to it has its state in the states hash (settle-4.lua). */
export const REAPED_FIELD = 'reaped_to';
/** The newest order id sold (purchase-3.lua): a node that saw a newer one knows Redis lost writes. */
export const LAST_ID_FIELD = 'last_id';
/** Set, with the reason, while a sale is stopped to restore orders Redis lost; nothing sells meanwhile. */
export const RECOVERING_FIELD = 'recovering';

/** Total and sold of a sale; `null` when the sale does not exist. */
export async function readSale(redis: Redis, keys: SaleKeys): Promise<SaleCount | null> {
  const [total, sold, lastId, recovering] = await redis.hmget(keys.sale, TOTAL_FIELD, SOLD_FIELD, LAST_ID_FIELD, RECOVERING_FIELD);
  if (total === null || total === undefined) return null;
  const count = { total: Number(total), sold: Number(sold ?? 0), lastId: lastId ?? '0-0', recovering: recovering ?? undefined };
  if (!Number.isInteger(count.total) || !Number.isInteger(count.sold)) {
    throw new Error(`sale ${keys.sale} holds ${TOTAL_FIELD}=${total} ${SOLD_FIELD}=${sold}, which are not whole numbers`);
  }
  return count;
}

/**
 * Makes sure the sale exists. An existing sale is left exactly as it is, so a restart continues
 * where it stopped; only `reset` wipes it (counts, buyers and orders) and starts it with `total`.
 */
export async function ensureSale(redis: Redis, keys: SaleKeys, total: number, reset: boolean): Promise<SaleCount & { created: boolean }> {
  if (reset) {
    await redis.multi().del(...keyList(keys)).hset(keys.sale, TOTAL_FIELD, total, SOLD_FIELD, 0).exec();
    return { total, sold: 0, lastId: '0-0', recovering: undefined, created: true };
  }
  const created = (await redis.hsetnx(keys.sale, TOTAL_FIELD, total)) === 1;
  await redis.hsetnx(keys.sale, SOLD_FIELD, 0);
  const count = await readSale(redis, keys);
  if (!count) throw new Error(`sale ${keys.sale} vanished while it was being created`);
  return { ...count, created };
}
