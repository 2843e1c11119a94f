import { describe, expect, test } from 'bun:test';
import { hashSlot } from '../../src/redis/slot.ts';
import { saleKeys } from '../../src/redis/sale.ts';

describe('hash slots', () => {
  test('match Redis CLUSTER KEYSLOT', () => {
    // Values read from redis-server 7.0 (CLUSTER KEYSLOT).
    expect(hashSlot('ticket_hash_key')).toBe(2377);
    expect(hashSlot('concert')).toBe(1354);
    expect(hashSlot('spike:sales')).toBe(5671);
  });

  test("every key of a sale falls in the sale hash's slot, so one script touches one shard", () => {
    for (const id of ['ticket_hash_key', 'concert', 'a:b.c-d_e']) {
      const slots = new Set(Object.values(saleKeys(id)).map(hashSlot));
      expect(slots).toEqual(new Set([hashSlot(id)]));
    }
  });
});
