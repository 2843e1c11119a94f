/**
 * The orders of archived sales, read from the database: a sale's Redis keys are gone once it is
 * archived, and a buyer's link to an order must still answer. The workers ask the supervisor
 * (they hold no database connection); the supervisor keeps the orders of the few sales asked
 * about lately in memory, so a burst of reloads is one query per sale.
 */
import type { DbOrder, OrderDb } from './db.ts';
import type { Order, OrderState } from './model.ts';
import { SettleCode, type OrderStore, type Settled } from './store.ts';

/** An order by its id, or a user's newest order of the sale. */
export type ArchivedQuery = { readonly orderId: string } | { readonly user: string };

/** Sales whose orders are kept in memory at once. */
const KEPT_SALES = 8;

export class ArchivedOrders {
  readonly #db: OrderDb | undefined;
  readonly #kept = new Map<string, Promise<{ byId: Map<string, Order>; byUser: Map<string, Order> }>>();

  constructor(db: OrderDb | undefined) {
    this.#db = db;
  }

  /** The order, or null when the database holds none such (or there is no database). */
  async find(sale: string, query: ArchivedQuery): Promise<Order | null> {
    if (!this.#db) return null;
    const orders = await this.#orders(sale, this.#db);
    return ('orderId' in query ? orders.byId.get(query.orderId) : orders.byUser.get(query.user)) ?? null;
  }

  #orders(sale: string, db: OrderDb) {
    let kept = this.#kept.get(sale);
    if (!kept) {
      kept = db.orders(sale).then((rows) => {
        const byId = new Map<string, Order>();
        const byUser = new Map<string, Order>();
        // Rows come in id order: a user's last row is their newest order.
        for (const row of rows) {
          const order = toOrder(row);
          byId.set(order.orderId, order);
          if (order.user) byUser.set(order.user, order);
        }
        return { byId, byUser };
      });
      kept.catch(() => this.#kept.delete(sale));
      this.#kept.set(sale, kept);
      // A Map keeps insertion order: the first is the one asked about longest ago.
      if (this.#kept.size > KEPT_SALES) this.#kept.delete(this.#kept.keys().next().value!);
    }
    return kept;
  }
}

function toOrder(row: DbOrder): Order {
  return {
    orderId: row.orderId,
    sale: row.sale,
    state: row.state as OrderState,
    user: row.user,
    port: row.port ?? 0,
    createdAt: row.createdAt,
    payBy: row.payBy,
    updatedAt: row.updatedAt,
  };
}

/**
 * The order store of an archived sale, for a worker: reads ask `ask` (the supervisor, which asks
 * the database); nothing can change any more, so a pay or cancel answers what the order is. The
 * sale was archived with no order reserved: every order is paid, cancelled or expired.
 */
export function archivedStore(sale: string, ask: (query: ArchivedQuery) => Promise<Order | null>): OrderStore {
  const read = (orderId: string) => ask({ orderId });
  return {
    sale,
    read,
    ofUser: (user) => ask({ user }),
    settle: async (action, orderId, user): Promise<Settled> => {
      const order = await read(orderId);
      if (!order) return { code: SettleCode.NoOrder };
      if (user !== '*' && (order.user === '' || order.user !== user)) return { code: SettleCode.NotYours };
      const done = (action === 'pay' && order.state === 'paid') || (action === 'cancel' && order.state === 'cancelled');
      return { code: done ? SettleCode.Done : SettleCode.WrongState, state: order.state };
    },
  };
}
