/** /orders: a buyer reads, pays and cancels their order. */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { error, RETRY_AFTER, storeFailed } from './errors.ts';
import type { Who } from './identity.ts';
import { isOrderId, type Order } from '../orders/model.ts';
import { SettleCode, type OrderStore, type Settled } from '../orders/store.ts';
import { renderSVG } from 'uqr';

/** Why a pay or cancel is refused, by the order's state. */
const REFUSED: Record<string, { error: string; msg: string }> = {
  paid: { error: 'already_paid', msg: 'the order is paid; it can no longer be cancelled' },
  cancelled: { error: 'cancelled', msg: 'the order was cancelled; its ticket went back on sale' },
  expired: { error: 'expired', msg: 'the order was not paid in time; its ticket went back on sale' },
};

function view(order: Order) {
  return {
    orderId: order.orderId,
    sale: order.sale,
    state: order.state,
    user: order.user || null,
    port: order.port,
    createdAt: new Date(order.createdAt).toISOString(),
    payBy: order.payBy === null ? null : new Date(order.payBy).toISOString(),
    updatedAt: new Date(order.updatedAt).toISOString(),
  };
}

export interface OrderRouteDeps {
  /** The order store of sale `id` (the default sale when undefined), if this worker knows the sale. */
  readonly store: (id: string | undefined) => OrderStore | undefined;
  /** Who asks: the signed-in user, or the `user` parameter; or the error response to send. */
  readonly who: Who;
  readonly maxBodyBytes: number;
  /** Whether `given` is the secret of anonymous order `orderId` of `sale` (orders/secret.ts). */
  readonly isSecret: (sale: string, orderId: string, given: string | undefined) => boolean;
  /** The order the browser's signed note names for this sale and user (orders/secret.ts), if any. */
  readonly noted: (c: Context, sale: string, user: string) => string | undefined;
  /** Signed users: a buyer without a note may hold an order bought elsewhere, so Redis is asked. */
  readonly signed: boolean;
  /** A paid order's signed ticket code (orders/signed-ticket.ts). */
  readonly ticket: (order: Order) => string;
}

const badId = (c: Context) => error(c, 400, 'bad_order_id', 'an order id looks like 1795614209339-0');
const noOrder = (c: Context) => error(c, 404, 'no_order', 'no such order');
const notYours = (c: Context, anonymous = false) =>
  error(
    c,
    403,
    'forbidden',
    anonymous
      ? 'an anonymous order needs its secret (the "secret" of its purchase answer) as ?secret= or X-Order-Secret'
      : 'this order belongs to another user',
  );

/** What an /orders/:id request is about: the order id, its sale's store, who asks, and whether they showed its secret. */
interface Target {
  readonly id: string;
  readonly store: OrderStore;
  readonly user: string;
  readonly proven: boolean;
}

/** The sale's store (`?sale=`, the default sale without it), or the 404 to answer. */
function saleStore(c: Context, storeOf: OrderRouteDeps['store']): { store: OrderStore } | { response: Response } {
  const sale = c.req.query('sale');
  const store = storeOf(sale);
  return store ? { store } : { response: error(c, 404, 'no_sale', `no sale ${sale}`) };
}

/** The target of an /orders/:id request, or the error to answer. */
async function target(c: Context, { store: storeOf, who, isSecret }: OrderRouteDeps): Promise<Target | { response: Response }> {
  const id = c.req.param('id') ?? '';
  if (!isOrderId(id)) return { response: badId(c) };
  const found = saleStore(c, storeOf);
  if ('response' in found) return found;
  const asker = await who(c);
  if ('response' in asker) return asker;
  const proven = isSecret(found.store.sale, id, c.req.query('secret') ?? c.req.header('x-order-secret'));
  return { id, store: found.store, user: asker.user, proven };
}

/** Reads the asker's own order and answers with `then(order)`; 404, 403 or the store's failure otherwise. */
async function ownOrder(c: Context, deps: OrderRouteDeps, then: (order: Order) => Response): Promise<Response> {
  const t = await target(c, deps);
  if ('response' in t) return t.response;
  try {
    const order = await t.store.read(t.id);
    if (!order) return noOrder(c);
    if (order.user ? order.user !== t.user : !t.proven) return notYours(c, !order.user);
    return then(order);
  } catch (cause) {
    return storeFailed(c, cause, 'orders');
  }
}

/** The answer to a pay or cancel, by what settle-4.lua said. */
function settledAnswer(c: Context, { id, user, proven }: Target, settled: Settled): Response {
  switch (settled.code) {
    case SettleCode.Done:
      return c.json({ orderId: id, state: settled.state });
    case SettleCode.WrongState:
      return error(c, 409, REFUSED[settled.state]?.error ?? 'conflict', REFUSED[settled.state]?.msg ?? `the order is ${settled.state}`);
    case SettleCode.TooLate:
      return error(c, 409, 'expired', 'the payment deadline had passed; the order expired and its ticket went back on sale');
    case SettleCode.NoOrder:
      return noOrder(c);
    case SettleCode.NotYours:
      return notYours(c, !user && !proven);
    case SettleCode.Stopped:
      // A dependency's trouble, not the buyer's: nothing changed, and the deadline waits for it.
      return error(c, 503, 'recovering', 'the ticket store is restoring orders after a fault; nothing changed, try again in a moment', {
        'Retry-After': RETRY_AFTER,
      });
  }
}

/**
 * A user reads, pays and cancels only their own orders (403 otherwise). An anonymous order
 * (bought without a user, as in the original ab runs) needs the secret its purchase answered
 * (`?secret=` or `X-Order-Secret`): its id alone can be guessed. The sale is `?sale=ID`, the
 * default sale without it.
 */
export function orderRoutes(deps: OrderRouteDeps): Hono {
  const app = new Hono();
  const { maxBodyBytes } = deps;
  const limit = bodyLimit({
    maxSize: maxBodyBytes,
    onError: (c) => error(c, 413, 'too_large', `body is larger than ${maxBodyBytes} bytes`),
  });

  app.get('/', async (c) => {
    const found = saleStore(c, deps.store);
    if ('response' in found) return found.response;
    const asker = await deps.who(c);
    if ('response' in asker) return asker.response;
    if (!asker.user) return error(c, 400, 'bad_user', 'give the user whose order to find: /orders?user=alice');
    try {
      const order = await found.store.ofUser(asker.user);
      return order ? c.json(view(order)) : error(c, 404, 'no_order', `${asker.user} holds no order of ${found.store.sale}`);
    } catch (cause) {
      return storeFailed(c, cause, 'orders');
    }
  });

  // The buyer's order of the sale, after a reload or in a new tab: the one the browser's note
  // names (any state: the page says what became of it), or, for a signed user, their live one.
  // Without a note, a plain user holds nothing here: no Redis call for every visitor.
  app.get('/mine', async (c) => {
    const found = saleStore(c, deps.store);
    if ('response' in found) return found.response;
    const asker = await deps.who(c);
    if ('response' in asker) return asker.response;
    if (!asker.user) return error(c, 400, 'bad_user', 'give the user whose order to find: /orders/mine?user=alice');
    const orderId = deps.noted(c, found.store.sale, asker.user);
    // No note: this browser holds nothing here. 204, not a 404 every first visit logs as an error.
    if (!orderId && !deps.signed) return c.body(null, 204);
    try {
      const order = orderId ? await found.store.read(orderId) : await found.store.ofUser(asker.user);
      return order && order.user === asker.user
        ? c.json(view(order))
        : error(c, 404, 'no_order', `${asker.user} holds no order of ${found.store.sale}`);
    } catch (cause) {
      return storeFailed(c, cause, 'orders');
    }
  });

  app.get('/:id', (c) => ownOrder(c, deps, (order) => c.json(view(order))));

  // The paid order's ticket for the door: its signed code and that code as a QR code (SVG).
  app.get('/:id/ticket', (c) =>
    ownOrder(c, deps, (order) => {
      if (order.state !== 'paid')
        return error(c, 409, 'not_paid', `order ${order.orderId} is ${order.state}: a ticket is issued once the order is paid`);
      const code = deps.ticket(order);
      return c.json({ orderId: order.orderId, sale: order.sale, user: order.user || null, code, qr: renderSVG(code, { border: 2 }) });
    }),
  );

  for (const action of ['pay', 'cancel'] as const) {
    app.post(`/:id/${action}`, limit, async (c) => {
      const t = await target(c, deps);
      if ('response' in t) return t.response;
      try {
        return settledAnswer(c, t, await t.store.settle(action, t.id, t.proven ? '*' : t.user));
      } catch (cause) {
        return storeFailed(c, cause, 'orders');
      }
    });
  }
  return app;
}
