/** The audit every end-to-end test closes with. */
import { expect } from 'bun:test';
import { auditWhenWritten, type AuditReport } from '../../src/orders/audit.ts';
import type { OrderDb } from '../../src/orders/db.ts';
import type { RedisClient } from '../../src/redis/client.ts';
import type { SaleKeys } from '../../src/redis/keys.ts';

/** Audits `sale` against `db` (once the order writers caught up), expects no difference, closes `db`, and returns the report. */
export async function expectCleanAudit(redis: RedisClient, sale: SaleKeys, db: OrderDb | Promise<OrderDb>): Promise<AuditReport> {
  const opened = await db;
  try {
    const report = await auditWhenWritten(redis, sale, opened);
    expect(report.differences).toEqual([]);
    return report;
  } finally {
    await opened.close();
  }
}
