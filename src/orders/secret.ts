/**
 * The secret of an anonymous order: what only its buyer has. Order ids are `<ms>-<n>` and can be
 * guessed (scanning 1.5 s of ids once took 0.7 s and cancelled a stranger's order), so reading,
 * paying or cancelling an anonymous order needs this too. It is an HMAC of the sale and order id
 * with a key every worker of every node shares (kept in Redis), so no record is written for it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { RedisClient as Redis } from '../redis/client.ts';
import { ORDER_SECRET_KEY } from '../redis/keys.ts';

/** The shared key: made once (SET NX) by the first supervisor, read by every later one. */
export async function orderKey(redis: Redis): Promise<string> {
  await redis.set(ORDER_SECRET_KEY, randomBytes(32).toString('hex'), 'NX');
  const key = await redis.get(ORDER_SECRET_KEY);
  if (!key) throw new Error(`${ORDER_SECRET_KEY} vanished from Redis right after it was set`);
  return key;
}

/** HMAC-SHA256 keyed hashers, one per key, copied per use: keying a new one per order cost ~1 µs, a copy ~0.3. */
const keyed = new Map<string, Bun.CryptoHasher>();

/** The first 22 base64url characters of HMAC-SHA256(key, text). */
function mac(key: string, text: string): string {
  let hasher = keyed.get(key);
  if (!hasher) {
    hasher = new Bun.CryptoHasher('sha256', key);
    keyed.set(key, hasher);
  }
  return hasher.copy().update(text).digest('base64url').slice(0, 22);
}

/** The secret of order `orderId` of `sale` (22 characters, base64url). */
export function orderSecret(key: string, sale: string, orderId: string): string {
  return mac(key, `${sale}\n${orderId}`);
}

/** Whether `given` is the order's secret; compared in constant time. */
export function isOrderSecret(key: string, sale: string, orderId: string, given: string | undefined): boolean {
  if (given?.length !== 22) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(orderSecret(key, sale, orderId)));
}

/**
 * The browser's note that its buyer holds an order (a cookie the purchase answer sets): how
 * `GET /orders/mine` finds a buyer's order after a reload or in a new tab without asking Redis for
 * every visitor who holds nothing. Signed like a secret, bound to the sale, the user and the order.
 */
export const orderCookieName = (sale: string) => `spike_order_${Buffer.from(sale).toString('base64url')}`;

export function orderCookie(key: string, sale: string, user: string, orderId: string): string {
  return `${orderId}.${mac(key, `mine\n${sale}\n${user}\n${orderId}`)}`;
}

/** The order id a cookie value names for this sale and user, or undefined when it is not one of ours. */
export function orderFromCookie(key: string, sale: string, user: string, value: string | undefined): string | undefined {
  const orderId = value?.split('.')[0];
  if (!value || !orderId || value.length > 80) return undefined;
  const expected = orderCookie(key, sale, user, orderId);
  return value.length === expected.length && timingSafeEqual(Buffer.from(value), Buffer.from(expected)) ? orderId : undefined;
}
