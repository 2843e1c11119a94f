/**
 * A sale's last step: archived. Its Redis keys and this node's shared memory are freed, its
 * orders stay readable from the database (the workers ask the supervisor, orders/archived.ts),
 * and `GET /sales/:id` answers `{"state":"archived",…}`. Only a sale that sells no more and owes
 * no buyer anything is archived: not open, no order reserved (one could still be paid), and the
 * database holding every order (the audit, orders/audit.ts, finds no difference).
 */
import type { Context, Hono } from 'hono';
import { error } from '../http/errors.ts';
import { auditSale } from '../orders/audit.ts';
import type { OrderDb } from '../orders/db.ts';
import type { RedisClient as Redis } from '../redis/client.ts';
import { DEFAULT_SALE, NAME_FIELD, saleKeys } from '../redis/keys.ts';
import { ArchiveCode, archivedSale, archiveSale, readSale, type ArchivedSale } from '../redis/sale.ts';
import { saleState } from '../stock/sale-state.ts';

export interface ArchiveDeps {
  readonly redis: Redis;
  /** The order database; without one nothing is archived (the orders would be lost). */
  readonly db?: OrderDb;
  /** The sale was archived: this node lets go of it and tells the others. */
  readonly archived: (id: string) => void;
  /** Logs the action with the operator's name. */
  readonly logAction: (c: Context, action: string, sale: string) => void;
}

/** What `GET /sales/:id` and the archive answer say of an archived sale. */
export const archivedView = (sale: ArchivedSale) => ({ ...sale, state: 'archived', archivedAt: new Date(sale.archivedAt).toISOString() });

/** Why sale `id` cannot be archived now (status, code, message), or its record to archive it with. */
async function refusal(deps: ArchiveDeps, id: string): Promise<[409 | 404, string, string] | ArchivedSale> {
  if (id === DEFAULT_SALE) return [409, 'default_sale', `${id} is the default sale; start it afresh with --reset instead`];
  const keys = saleKeys(id);
  const count = await readSale(deps.redis, keys);
  if (!count) return [404, 'no_sale', `no sale ${id}`];
  const state = saleState({ ...count, recovering: count.recovering !== undefined }, Date.now());
  if (state === 'open') return [409, 'sale_open', `sale ${id} is open; pause it, or archive it once it has ended or sold out`];
  if (state === 'recovering') return [409, 'recovering', `sale ${id} is restoring orders Redis lost; archive it once it sells again`];
  const reserved = count.sold - count.paid;
  if (reserved > 0)
    return [
      409,
      'orders_reserved',
      `${reserved} orders of ${id} are reserved and may still be paid; archive it once they are paid or expired`,
    ];
  if (!deps.db) return [409, 'no_database', 'this node writes no order database (SPIKE_WRITER=0): archiving would lose the orders'];
  const audit = await auditSale(deps.redis, keys, deps.db);
  if (audit.differences.length > 0)
    return [409, 'not_written', `the database does not hold every order of ${id} yet (${audit.differences[0]}); try again in a moment`];
  const name = await deps.redis.hget(keys.sale, NAME_FIELD);
  return { id, archivedAt: Date.now(), name, total: count.total, sold: count.sold, paid: count.paid };
}

/** Why archive-8.lua refused, in the words of the checks above (it made them again in the step that deletes). */
function scriptRefusal(id: string, code: ArchiveCode, count: number): [409, string, string] {
  switch (code) {
    case ArchiveCode.Open:
      return [409, 'sale_open', `sale ${id} opened again (resumed, or stock added) while it was being archived; pause it first`];
    case ArchiveCode.Recovering:
      return [409, 'recovering', `sale ${id} is restoring orders Redis lost; archive it once it sells again`];
    case ArchiveCode.Reserved:
      return [
        409,
        'orders_reserved',
        `${count} orders of ${id} were reserved while it was being archived; archive it once they are paid or expired`,
      ];
    default:
      return [409, 'not_written', `${count} order events of ${id} are not in the database yet; try again in a moment`];
  }
}

/**
 * POST /sales/:id/archive. Archiving an archived sale answers its record again. The checks here
 * give the operator the reason; archive-8.lua makes them again in the step that deletes, so a
 * resume, a stock addition or a purchase between the two can never be lost (issue 30).
 */
export function archiveRoutes(app: Hono, deps: ArchiveDeps): void {
  app.post('/sales/:id/archive', async (c) => {
    const id = c.req.param('id');
    const done = await archivedSale(deps.redis, id);
    // A record whose sale still exists is an archive cut short (or one a refusal is taking back): go on.
    if (done && !(await readSale(deps.redis, saleKeys(id)))) return c.json(archivedView(done));
    const record = await refusal(deps, id);
    if (Array.isArray(record)) return error(c, record[0], record[1], record[2]);
    const { code, count } = await archiveSale(deps.redis, saleKeys(id), record);
    if (code !== ArchiveCode.Done && code !== ArchiveCode.NoSale) return error(c, ...scriptRefusal(id, code, count));
    deps.archived(id);
    deps.logAction(c, 'archived', id);
    return c.json(archivedView(record));
  });
}
