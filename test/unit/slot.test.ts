import { describe, expect, test } from 'bun:test';
import { hashSlot } from '../../src/redis/slot.ts';
import { clusterPorts } from '../helpers/servers.ts';
import { saleKeys } from '../../src/redis/keys.ts';

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

describe('cluster test ports', () => {
  // A cluster node listens on port + 10 000 too (its bus): a port above 55 535 cannot host one.
  test('every port leaves room for its cluster bus port, and no bus port is another node port', async () => {
    const ports = await clusterPorts(30);
    expect(new Set(ports).size).toBe(30);
    for (const port of ports) {
      expect(port + 10_000).toBeLessThanOrEqual(65_535);
      expect(ports).not.toContain(port + 10_000);
    }
  });
});
