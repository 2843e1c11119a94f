/** The invariants, checked against Redis after every bench phase. */
import type Redis from 'ioredis';
import { keys } from './system.ts';
import { SOLD_FIELD, TOTAL_FIELD } from '../../src/redis/keys.ts';

export interface Sale {
  readonly total: number;
  readonly sold: number;
  readonly orders: number;
  readonly buyers: number;
}

export async function readSale(redis: Redis): Promise<Sale> {
  const [[total, sold], orders, buyers] = await Promise.all([
    redis.hmget(keys.sale, TOTAL_FIELD, SOLD_FIELD),
    redis.xlen(keys.orders),
    redis.hlen(keys.buyers),
  ]);
  return { total: Number(total), sold: Number(sold), orders, buyers };
}

/**
 * Throws unless: sold == min(total, demand) (demand: how many distinct buyers asked, as a range
 * when the load tool cannot know how many of its last requests reached the server), every sale
 * has its order on the stream, and no named user holds two tickets.
 */
export function checkSale(sale: Sale, demand: { min: number; max: number }, named: boolean): string {
  const problems: string[] = [];
  const lo = Math.min(sale.total, demand.min);
  const hi = Math.min(sale.total, demand.max);
  if (sale.sold > sale.total) problems.push(`OVERSOLD: sold ${sale.sold} > total ${sale.total}`);
  if (sale.sold < lo || sale.sold > hi)
    problems.push(
      `sold ${sale.sold}, expected ${lo === hi ? lo : `${lo}..${hi}`} (total ${sale.total}, demand ${demand.min}..${demand.max})`,
    );
  if (sale.orders !== sale.sold) problems.push(`orders on the stream ${sale.orders} != sold ${sale.sold}`);
  if (named && sale.buyers !== sale.sold)
    problems.push(`distinct buyers ${sale.buyers} != sold ${sale.sold} (a user holds two tickets, or a sale has no buyer)`);
  if (problems.length) throw new Error(`correctness check failed: ${problems.join('; ')}`);
  return `sold ${sale.sold}/${sale.total}, orders ${sale.orders}${named ? `, buyers ${sale.buyers}` : ''}`;
}
