/** The operations on a sale in Redis: create, reset, read, purchase. */
import type { RedisClient as Redis } from './client.ts';
import {
  ARCHIVED_KEY,
  EPOCH_FIELD,
  keyList,
  LAST_ID_FIELD,
  PAID_FIELD,
  QUEUE_ADMISSION_FIELD,
  QUEUE_FIELD,
  QUEUE_RATE_FIELD,
  queueKeys,
  RECOVERING_FIELD,
  SALES_KEY,
  SOLD_FIELD,
  TOTAL_FIELD,
  WRITERS_GROUP,
  type SaleKeys,
} from './keys.ts';

/** The purchase script's return codes (purchase-N.lua). */
export enum PurchaseCode {
  Sold = 1,
  SoldOut = -1,
  Held = 2,
  NoSale = -2,
  /** Paused, outside its startsAt/endsAt, or recovering lost orders. */
  Closed = -3,
  /** The buyer's client holds as many unpaid orders of the sale as it may (SPIKE_ADDRESS_HOLDS). */
  TooManyHolds = -4,
}

export type Purchase =
  | { readonly code: PurchaseCode.Sold; readonly orderId: string }
  | { readonly code: PurchaseCode.Held; readonly orderId: string }
  | { readonly code: PurchaseCode.SoldOut | PurchaseCode.NoSale | PurchaseCode.Closed | PurchaseCode.TooManyHolds };

export interface Seller {
  /** Port of the selling worker, recorded with the order. */
  readonly port: number;
  /** Time to pay a reserved order, in ms; 0: no deadline. */
  readonly payWindowMs: number;
  /** Most unpaid orders one client may hold in a sale (SPIKE_ADDRESS_HOLDS); 0 or none: no limit. */
  readonly maxHolds?: number;
}

/** A buyer: the user (`''` anonymous) and the client they came from (`''`: not counted). */
export interface Buyer {
  readonly user: string;
  readonly client: string;
}

/** One sale's part of a purchase call: its keys, the newest order of it the caller saw, its buyers. */
export interface SaleBatch {
  readonly keys: SaleKeys;
  /** The newest order id of this sale the caller knows Redis made (`0-0`: none); see includes/guard.lua. */
  readonly seen: string;
  readonly buyers: readonly Buyer[];
}

/** The keys of purchase-N.lua for one sale, in its order. */
const purchaseKeys = (keys: SaleKeys) => [keys.sale, keys.buyers, keys.orders, keys.states, keys.holds];

/**
 * Runs purchase-N.lua for the buyers of several sales of one Redis slot in one call, each sale's
 * in order; one answer per buyer, grouped as `batches`. A sale older than its `seen` lost writes
 * and answers code -3 (closed) until it is restored.
 */
export async function purchaseSales(redis: Redis, seller: Seller, batches: readonly SaleBatch[]): Promise<Purchase[][]> {
  const keys = batches.flatMap((b) => purchaseKeys(b.keys));
  const args = [String(seller.port), String(seller.payWindowMs), String(seller.maxHolds ?? 0)];
  for (const { seen, buyers } of batches) {
    args.push(seen, String(buyers.length));
    for (const { user, client } of buyers) args.push(user, client);
  }
  const reply = await redis.purchase(keys.length, ...keys, ...args);
  const count = batches.reduce((n, b) => n + b.buyers.length, 0);
  if (reply.length !== count * 2) throw new Error(`purchase script answered ${reply.length} values for ${count} buyers`);
  let at = 0;
  return batches.map(({ buyers }) =>
    buyers.map(() => {
      const answer = purchaseOf(reply[at], reply[at + 1]);
      at += 2;
      return answer;
    }),
  );
}

function purchaseOf(rawCode: string | number | undefined, orderId: string | number | undefined): Purchase {
  const code = Number(rawCode);
  switch (code) {
    case PurchaseCode.Sold:
    case PurchaseCode.Held:
      return { code, orderId: String(orderId) };
    case PurchaseCode.SoldOut:
    case PurchaseCode.NoSale:
    case PurchaseCode.Closed:
    case PurchaseCode.TooManyHolds:
      return { code };
    default:
      throw new Error(`purchase script returned unknown code ${String(rawCode)}`);
  }
}

/** One sale's buyers (a user name each, `''` anonymous, or a Buyer), in order; one answer per buyer. */
export async function purchaseMany(
  redis: Redis,
  keys: SaleKeys,
  seller: Seller,
  buyers: readonly (string | Buyer)[],
  seen = '0-0',
): Promise<Purchase[]> {
  const list = buyers.map((b) => (typeof b === 'string' ? { user: b, client: '' } : b));
  return (await purchaseSales(redis, seller, [{ keys, seen, buyers: list }]))[0]!;
}

/** One buyer: a batch of one. */
export async function purchase(redis: Redis, keys: SaleKeys, user: string | Buyer, seller: Seller): Promise<Purchase> {
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
  // As purchase-N.lua decides it (with Redis' clock): paused, outside its window, or recovering.
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
      .del(...keyList(keys), keys.holds, ...waitingRoomKeys(keys.sale))
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

/** What is kept of an archived sale (ARCHIVED_KEY); its orders are in the database. */
export interface ArchivedSale {
  readonly id: string;
  readonly archivedAt: number;
  readonly name: string | null;
  readonly total: number;
  readonly sold: number;
  readonly paid: number;
}

/** archive-8.lua's refusals. */
export enum ArchiveCode {
  Done = 1,
  NoSale = -2,
  Recovering = -3,
  Open = -4,
  Reserved = -5,
  Unwritten = -6,
}

/**
 * Archives a sale in Redis: its record first (so no node ever takes the id for a new sale), then
 * archive-8.lua checks, in the same step as it deletes every key of the sale, that the sale sells
 * no more and owes nothing; then it leaves the list of sales. Refused: the record is taken back,
 * and the code (with its count) says why. The caller checked that the database holds every order.
 */
export async function archiveSale(redis: Redis, keys: SaleKeys, record: ArchivedSale): Promise<{ code: ArchiveCode; count: number }> {
  const claim = JSON.stringify(record);
  await redis.hset(ARCHIVED_KEY, keys.sale, claim);
  // One slot: every key carries the sale's hash tag (or is the bare id it tags).
  const [code, count] = (await redis.archive(...keyList(keys), keys.holds, ...waitingRoomKeys(keys.sale), WRITERS_GROUP)).map(Number) as [
    ArchiveCode,
    number,
  ];
  if (code === ArchiveCode.Done || code === ArchiveCode.NoSale) {
    await redis.srem(SALES_KEY, keys.sale);
    return { code, count };
  }
  // Refused: the record goes, unless another archive of the same sale wrote its own meanwhile.
  if ((await redis.hget(ARCHIVED_KEY, keys.sale)) === claim) await redis.hdel(ARCHIVED_KEY, keys.sale);
  return { code, count };
}

/** The record of an archived sale, or null. */
export async function archivedSale(redis: Redis, id: string): Promise<ArchivedSale | null> {
  const raw = await redis.hget(ARCHIVED_KEY, id);
  return raw ? (JSON.parse(raw) as ArchivedSale) : null;
}
