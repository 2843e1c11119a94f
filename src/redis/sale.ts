/** The operations on a sale in Redis: create, reset, read, purchase. */
import type { RedisClient as Redis } from './client.ts';
import {
  EPOCH_FIELD,
  keyList,
  LAST_ID_FIELD,
  PAID_FIELD,
  QUEUE_ADMISSION_FIELD,
  QUEUE_FIELD,
  QUEUE_RATE_FIELD,
  queueKeys,
  RECOVERING_FIELD,
  SOLD_FIELD,
  TOTAL_FIELD,
  type SaleKeys,
} from './keys.ts';

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
export async function purchaseMany(
  redis: Redis,
  keys: SaleKeys,
  seller: Seller,
  users: readonly string[],
  seen = '0-0',
): Promise<Purchase[]> {
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
  /** The newest id when the sale was last reset (`0-0`: never): older orders are not this sale's. */
  readonly epoch: string;
  /** Why the sale is stopped to restore lost orders; undefined while it is not. */
  readonly recovering: string | undefined;
  /** Whether it sells now: not paused, inside its start and end, not recovering. */
  readonly open: boolean;
  readonly paused: boolean;
  /** Paid orders (the rest of `sold` is reserved); cancelled and expired ones. */
  readonly paid: number;
  readonly cancelled: number;
  readonly expired: number;
  /** Its start and end, ms since the epoch; 0 when it has none. */
  readonly startsAt: number;
  readonly endsAt: number;
  /** Its waiting room's settings, when buyers need an admission (src/queue/). */
  readonly queue: { readonly admissionMs: number; readonly rate: number } | undefined;
}

/** Total and sold of a sale; `null` when the sale does not exist. */
export async function readSale(redis: Redis, keys: SaleKeys): Promise<SaleCount | null> {
  const [total, sold, lastId, recovering, paused, startsAt, endsAt, queue, admissionMs, rate, epoch, paid, cancelled, expired] =
    await redis.hmget(
      keys.sale,
      TOTAL_FIELD,
      SOLD_FIELD,
      LAST_ID_FIELD,
      RECOVERING_FIELD,
      'paused',
      'starts_at',
      'ends_at',
      QUEUE_FIELD,
      QUEUE_ADMISSION_FIELD,
      QUEUE_RATE_FIELD,
      EPOCH_FIELD,
      PAID_FIELD,
      'ticket_cancelled_nums',
      'ticket_expired_nums',
    );
  if (total === null || total === undefined) return null;
  const now = Date.now();
  // As purchase-3.lua decides it (with Redis' clock): paused, outside its window, or recovering.
  const open = !recovering && paused !== '1' && !(startsAt && now < Number(startsAt)) && !(endsAt && now >= Number(endsAt));
  const count = {
    total: Number(total),
    sold: Number(sold ?? 0),
    lastId: lastId ?? '0-0',
    epoch: epoch ?? '0-0',
    recovering: recovering ?? undefined,
    open,
    paused: paused === '1',
    paid: Number(paid ?? 0) || 0,
    cancelled: Number(cancelled ?? 0) || 0,
    expired: Number(expired ?? 0) || 0,
    startsAt: Number(startsAt ?? 0) || 0,
    endsAt: Number(endsAt ?? 0) || 0,
    queue: queue === '1' ? { admissionMs: Number(admissionMs) || 0, rate: Number(rate) || 0 } : undefined,
  };
  if (!Number.isInteger(count.total) || !Number.isInteger(count.sold)) {
    throw new Error(`sale ${keys.sale} holds ${TOTAL_FIELD}=${total} ${SOLD_FIELD}=${sold}, which are not whole numbers`);
  }
  return count;
}

/** The waiting room's own keys of sale `id` (its settings live in the sale hash). */
function waitingRoomKeys(id: string): string[] {
  const { places, prequeue, steps } = queueKeys(id);
  return [places, prequeue, steps];
}

/**
 * Makes sure the sale exists. An existing sale is left exactly as it is, so a restart continues
 * where it stopped; only `reset` wipes it (counts, buyers and orders) and starts it with `total`.
 */
export async function ensureSale(redis: Redis, keys: SaleKeys, total: number, reset: boolean): Promise<SaleCount & { created: boolean }> {
  if (reset) {
    // The newest id survives the reset: stream ids only grow, so the nodes' marks of what they
    // saw stay below it, and a reset is never taken for Redis having lost writes.
    const lastId = (await redis.hget(keys.sale, LAST_ID_FIELD)) ?? '0-0';
    await redis
      .multi()
      .del(...keyList(keys), ...waitingRoomKeys(keys.sale))
      .hset(keys.sale, TOTAL_FIELD, total, SOLD_FIELD, 0, LAST_ID_FIELD, lastId, EPOCH_FIELD, lastId)
      .exec();
    return {
      total,
      sold: 0,
      lastId,
      epoch: lastId,
      recovering: undefined,
      open: true,
      paused: false,
      paid: 0,
      cancelled: 0,
      expired: 0,
      startsAt: 0,
      endsAt: 0,
      queue: undefined,
      created: true,
    };
  }
  const created = (await redis.hsetnx(keys.sale, TOTAL_FIELD, total)) === 1;
  await redis.hsetnx(keys.sale, SOLD_FIELD, 0);
  const count = await readSale(redis, keys);
  if (!count) throw new Error(`sale ${keys.sale} vanished while it was being created`);
  return { ...count, created };
}
