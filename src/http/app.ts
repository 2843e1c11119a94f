/** The HTTP API of one worker, as a Hono app built from its dependencies (no I/O at import). */
import { randomBytes } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { jwt } from 'hono/jwt';
import { allowedMethods, error, JSON_HEADERS, queryUser, readUser, RETRY_AFTER, unavailable, USER_PATTERN, USER_RULE } from './errors.ts';
import type { OrderStore } from '../orders/store.ts';
import { orderRoutes } from './order-routes.ts';
import { isOrderSecret, orderSecret } from '../orders/secret.ts';
import { PurchaseCode, type Purchase } from '../redis/sale.ts';
import { SALE_PATTERN } from '../stock/sale-book.ts';
import type { StatEntry, StatResult } from './stat-log.ts';
import type { LocalStock } from '../stock/local-stock.ts';

/** What a worker holds for one sale. */
export interface SaleContext {
  readonly stock: LocalStock;
  /** Runs the global purchase in Redis for `user` (`''` = anonymous). Throws when Redis fails. */
  readonly buy: (user: string) => Promise<Purchase>;
  readonly orders?: OrderStore;
}

export interface AppDeps {
  /** The port this worker serves; reported in every answer so a client sees who sold. */
  readonly port: number;
  /** This worker's index in each sale's local stock. */
  readonly worker: number;
  /** The sales this worker knows, by id. */
  readonly sale: (id: string) => SaleContext | undefined;
  /** The sale of a request without `?sale=`: the original's `ticket_hash_key`. */
  readonly defaultSale: string;
  /** Resolves when Redis answers; rejects otherwise. */
  readonly ping: () => Promise<unknown>;
  readonly log?: (entry: StatEntry) => void;
  /** Called once when this worker's stock of `sale` runs low (or out) while the sale is not sold out. */
  readonly onTopUp?: (sale: string) => void;
  /**
   * How long a request may wait for a top-up when this worker's local stock is empty but the sale
   * is not sold out; 0 answers sold out at once, as the original does. Default 0.
   */
  readonly refillWaitMs?: number;
  /** Largest POST body accepted; default 4 KiB. */
  readonly maxBodyBytes?: number;
  /** When set, purchases and order calls need `Authorization: Bearer <JWT>` (HS256, `sub` = user, `exp` required). */
  readonly jwtSecret?: string;
  /** The key of anonymous orders' secrets, shared by every worker (orders/secret.ts); default: one of this app's own. */
  readonly orderKey?: string;
}

type Answer = { readonly code: number; readonly msg: string; readonly result: StatResult; readonly orderId?: string };

const SOLD_OUT: Answer = { code: PurchaseCode.SoldOut, msg: 'sold out', result: 'soldout' };

function answerFor(purchase: Purchase): Answer {
  switch (purchase.code) {
    case PurchaseCode.Sold:
      return { code: 1, msg: 'sold', result: 'sold', orderId: purchase.orderId };
    case PurchaseCode.Held:
      return { code: 2, msg: 'this user already holds a ticket of this sale', result: 'held', orderId: purchase.orderId };
    case PurchaseCode.SoldOut:
      return SOLD_OUT;
    case PurchaseCode.NoSale:
      return { code: PurchaseCode.NoSale, msg: 'no such sale', result: 'nosale' };
    case PurchaseCode.Closed:
      return { code: PurchaseCode.Closed, msg: 'the sale is not open (paused, or outside its start and end)', result: 'closed' };
  }
}

/** The user a verified JWT names (its `sub`); the middleware already checked signature and `exp`. */
function tokenUser(c: Context): { user: string } | { bad: string } {
  const payload = c.get('jwtPayload' as never) as { sub?: unknown; exp?: unknown } | undefined;
  if (typeof payload?.exp !== 'number') return { bad: 'the token must have an expiry (exp)' };
  if (typeof payload.sub !== 'string' || !USER_PATTERN.test(payload.sub)) return { bad: `the token's sub must be a user id: ${USER_RULE}` };
  return { user: payload.sub };
}

/**
 * Builds a worker's app. The purchase path: the sale's sold-out flag, then one unit of local
 * stock (no network), then the Redis script; only when both succeed is the ticket sold.
 */
export function createApp(deps: AppDeps): Hono {
  const { port, worker, log, onTopUp, defaultSale } = deps;
  const refillWaitMs = deps.refillWaitMs ?? 0;
  const maxBody = deps.maxBodyBytes ?? 4096;
  const app = new Hono();

  /** One unit of local stock once this worker ran dry, waiting up to `refillWaitMs` for a top-up while the sale goes on. */
  const waitAndTake = async (stock: LocalStock, sale: string): Promise<boolean> => {
    const deadline = performance.now() + refillWaitMs;
    while (!stock.isSoldOut()) {
      if (stock.askTopUp(worker)) onTopUp?.(sale);
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await stock.waitForStock(worker, left);
      if (stock.tryTake(worker)) return true;
    }
    return false;
  };

  // Most answers of a spike are this one; its body never changes, so it is serialised once.
  const soldOutBody = JSON.stringify({ code: SOLD_OUT.code, msg: SOLD_OUT.msg, port });
  const [soldHead, soldTail] = JSON.stringify({ code: 1, msg: 'sold', orderId: '<id>', port }).split('<id>') as [string, string];
  const [anonHead, anonMiddle, anonTail] = JSON.stringify({ code: 1, msg: 'sold', orderId: '<id>', secret: '<secret>', port }).split(/<id>|<secret>/) as [string, string, string];
  const orderKey = deps.orderKey ?? randomBytes(32).toString('hex');
  const reply = (c: Context, stock: LocalStock, sale: string, user: string, answer: Answer) => {
    log?.({ port, result: answer.result, code: answer.code, localSales: stock.sales(worker), user, orderId: answer.orderId, sale: sale === defaultSale ? undefined : sale });
    if (answer === SOLD_OUT) return c.body(soldOutBody, 200, JSON_HEADERS);
    // A sale's answer differs only in its order id (digits and a dash) and, for an anonymous
    // buyer, the order's secret (base64url): no JSON.stringify per sale.
    if (answer.result === 'sold') {
      if (user) return c.body(`${soldHead}${answer.orderId}${soldTail}`, 200, JSON_HEADERS);
      return c.body(`${anonHead}${answer.orderId}${anonMiddle}${orderSecret(orderKey, sale, answer.orderId!)}${anonTail}`, 200, JSON_HEADERS);
    }
    return c.json({ code: answer.code, msg: answer.msg, orderId: answer.orderId, port });
  };

  /** The purchase path. Synchronous while the sale is sold out: most requests of a spike end here, and a promise per answer costs. */
  const sell = (c: Context, saleId: string | undefined, user: string): Response | Promise<Response> => {
    const id = saleId ?? defaultSale;
    const sale = deps.sale(id);
    if (!sale) return error(c, 404, 'no_sale', SALE_PATTERN.test(id) ? `no sale ${id}` : 'a sale id is 1 to 64 characters of A-Z a-z 0-9 _ . : -');
    return sale.stock.isSoldOut() ? reply(c, sale.stock, id, user, SOLD_OUT) : buyTicket(c, sale, id, user);
  };

  const buyTicket = async (c: Context, { stock, buy }: SaleContext, sale: string, user: string): Promise<Response> => {
    // tryTake first, so the common case does not pay for a promise.
    if (stock.tryTake(worker)) {
      // Ask for the top-up before running dry, so a steady stream of buyers never waits for it.
      if (stock.isLow(worker) && stock.askTopUp(worker)) onTopUp?.(sale);
    } else if (!(await waitAndTake(stock, sale))) {
      return reply(c, stock, sale, user, SOLD_OUT);
    }
    let purchase: Purchase;
    try {
      purchase = await buy(user);
    } catch {
      // Redis is down or slow: the unit goes back. (If a timed-out script did run, Redis still
      // holds the record; a named user who retries is told code 2 with that order.)
      stock.giveBack(worker);
      // The client logs the cause once per outage; the buyer needs only to know to retry.
      log?.({ port, result: 'unavailable', code: 503, localSales: stock.sales(worker), user });
      return unavailable(c);
    }
    if (purchase.code === PurchaseCode.Sold) {
      stock.recordSale(worker);
    } else {
      stock.giveBack(worker);
      if (purchase.code === PurchaseCode.SoldOut) stock.markSoldOut();
    }
    const answer = answerFor(purchase);
    if (purchase.code === PurchaseCode.NoSale) {
      log?.({ port, result: answer.result, code: answer.code, localSales: stock.sales(worker), user });
      return error(c, 404, 'no_sale', 'the sale does not exist in Redis');
    }
    return reply(c, stock, sale, user, answer);
  };

  if (deps.jwtSecret) {
    const verify = jwt({ secret: deps.jwtSecret, alg: 'HS256' });
    app.use('/buy/ticket', verify);
    app.use('/orders', verify);
    app.use('/orders/*', verify);
  }

  /** The buyer: the token's `sub` with signed users, else the `user` parameter (or anonymous). */
  const buyer = async (c: Context): Promise<{ user: string } | { response: Response }> => {
    const given = await readUser(c);
    if ('bad' in given) return { response: error(c, given.status, given.status === 415 ? 'unsupported_media_type' : 'bad_user', given.bad) };
    if (!deps.jwtSecret) return given;
    const signed = tokenUser(c);
    if ('bad' in signed) return { response: error(c, 401, 'unauthorized', signed.bad) };
    if (given.user && given.user !== signed.user) return { response: error(c, 403, 'forbidden', 'user differs from the signed-in user') };
    return signed;
  };

  const signedSell = async (c: Context): Promise<Response> => {
    const who = await buyer(c);
    return 'response' in who ? who.response : sell(c, c.req.query('sale'), who.user);
  };

  app.get('/buy/ticket', (c) => {
    // Hono answers HEAD with the GET handler; a HEAD must never buy a ticket.
    if (c.req.method === 'HEAD') return error(c, 405, 'method_not_allowed', 'use GET or POST', { Allow: 'GET, POST' });
    if (deps.jwtSecret) return signedSell(c);
    const given = queryUser(c);
    if ('bad' in given) return error(c, 400, 'bad_user', given.bad);
    const user = given.user;
    if (user !== undefined && !USER_PATTERN.test(user)) return error(c, 400, 'bad_user', USER_RULE);
    return sell(c, c.req.query('sale'), user ?? '');
  });
  app.post(
    '/buy/ticket',
    bodyLimit({ maxSize: maxBody, onError: (c) => error(c, 413, 'too_large', `body is larger than ${maxBody} bytes`) }),
    (c) => signedSell(c),
  );

  app.get('/stock', (c) => {
    const id = c.req.query('sale') ?? defaultSale;
    const sale = deps.sale(id);
    if (!sale) return error(c, 404, 'no_sale', `no sale ${id}`);
    const { workers, ...global } = sale.stock.snapshot();
    const own = workers[worker]!;
    return c.json({ sale: id, ...global, port, local: { stock: own.stock, sales: own.sales } });
  });

  app.route(
    '/orders',
    orderRoutes({
      store: (id) => deps.sale(id ?? defaultSale)?.orders,
      who: buyer,
      maxBodyBytes: maxBody,
      isSecret: (sale, orderId, given) => isOrderSecret(orderKey, sale, orderId, given),
    }),
  );

  app.get('/healthz', async (c) => {
    try {
      await deps.ping();
      return c.json({ ok: true, port });
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      return c.json({ ok: false, port, error: 'unavailable', msg: `Redis unreachable: ${reason}` }, 503, { 'Retry-After': RETRY_AFTER });
    }
  });

  // Wrong methods are answered here, not by catch-all routes: a second route on /buy/ticket would
  // put two handlers on every purchase's path.
  app.notFound((c) => {
    const allow = allowedMethods(c.req.path);
    if (allow) return error(c, 405, 'method_not_allowed', `use ${allow.replace(', ', ' or ')}`, { Allow: allow });
    return error(c, 404, 'not_found', `no route ${c.req.method} ${c.req.path}; try GET /buy/ticket`);
  });
  app.onError((err, c) => {
    if (err instanceof HTTPException && err.status === 401) {
      const reason = err.cause instanceof Error ? `: ${err.cause.message}` : '';
      return error(c, 401, 'unauthorized', `${err.message}${reason}`, { 'WWW-Authenticate': err.getResponse().headers.get('WWW-Authenticate') ?? 'Bearer' });
    }
    console.error(`[worker ${port}] ${err.stack ?? err.message}`);
    return error(c, 500, 'internal', 'internal error');
  });
  return app;
}
