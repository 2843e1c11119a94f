/** The HTTP API of one worker, as a Hono app built from its dependencies (no I/O at import). */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { PurchaseCode, type Purchase } from './redis/sale.ts';
import type { StatEntry, StatResult } from './stat-log.ts';
import type { LocalStock } from './stock/local-stock.ts';

export interface AppDeps {
  /** The port this worker serves; reported in every answer so a client sees who sold. */
  readonly port: number;
  /** This worker's index in the local stock. */
  readonly worker: number;
  readonly stock: LocalStock;
  /** Runs the global purchase in Redis for `user` (`''` = anonymous). Throws when Redis fails. */
  readonly buy: (user: string) => Promise<Purchase>;
  /** Resolves when Redis answers; rejects otherwise. */
  readonly ping: () => Promise<unknown>;
  readonly log?: (entry: StatEntry) => void;
  /** Called once when this worker's local stock runs low (or out) while the sale is not sold out. */
  readonly onTopUp?: () => void;
  /**
   * How long a request may wait for a top-up when this worker's local stock is empty but the sale
   * is not sold out; 0 answers sold out at once, as the original does. Default 0.
   */
  readonly refillWaitMs?: number;
  /** Largest POST body accepted; default 4 KiB. */
  readonly maxBodyBytes?: number;
}

/** A user id: 1–64 characters of `[A-Za-z0-9_.:@-]`, so it is safe in logs, keys and URLs. */
export const USER_PATTERN = /^[A-Za-z0-9_.:@-]{1,64}$/;
const USER_RULE = 'user must be 1 to 64 characters of A-Z a-z 0-9 _ . : @ -';

const JSON_HEADERS = { 'Content-Type': 'application/json' } as const;

/** The methods each route answers, for 405's `Allow`. */
const ALLOWED: Record<string, string> = { '/buy/ticket': 'GET, POST', '/stock': 'GET', '/healthz': 'GET' };

/** Seconds a client should wait after a 503. */
const RETRY_AFTER = '1';

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
  }
}

function error(c: Context, status: 400 | 404 | 405 | 413 | 415 | 500 | 503, code: string, msg: string, headers?: Record<string, string>) {
  return c.json({ error: code, msg }, status, headers);
}

/** The `user` of a request: from the query string, or from a JSON or form body on POST. */
async function readUser(c: Context): Promise<{ user: string } | { bad: string; status: 400 | 415 }> {
  let user = c.req.query('user');
  if (c.req.method === 'POST') {
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    let fromBody: unknown;
    if (type === 'application/json') {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        return { bad: 'body is not valid JSON', status: 400 };
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return { bad: 'JSON body must be an object such as {"user":"alice"}', status: 400 };
      fromBody = (body as Record<string, unknown>).user;
    } else if (type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data') {
      fromBody = (await c.req.parseBody()).user;
    } else if (type !== '' && c.req.raw.body !== null) {
      return { bad: 'send the body as application/json or application/x-www-form-urlencoded', status: 415 };
    }
    if (fromBody !== undefined) {
      if (typeof fromBody !== 'string') return { bad: USER_RULE, status: 400 };
      if (user !== undefined && user !== fromBody) return { bad: 'user is given twice, in the query and in the body, with different values', status: 400 };
      user = fromBody;
    }
  }
  if (user === undefined) return { user: '' };
  if (!USER_PATTERN.test(user)) return { bad: USER_RULE, status: 400 };
  return { user };
}

/**
 * Builds a worker's app. The purchase path: the sold-out flag, then one unit of local stock
 * (no network), then the Redis script; only when both succeed is the ticket sold.
 */
export function createApp(deps: AppDeps): Hono {
  const { port, worker, stock, buy, ping, log, onTopUp } = deps;
  const refillWaitMs = deps.refillWaitMs ?? 0;
  const app = new Hono();

  /** One unit of local stock once this worker ran dry, waiting up to `refillWaitMs` for a top-up while the sale goes on. */
  const waitAndTake = async (): Promise<boolean> => {
    const deadline = performance.now() + refillWaitMs;
    while (!stock.isSoldOut()) {
      if (stock.askTopUp(worker)) onTopUp?.();
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await stock.waitForStock(worker, left);
      if (stock.tryTake(worker)) return true;
    }
    return false;
  };

  // Most answers of a spike are this one; its body never changes, so it is serialised once.
  const soldOutBody = JSON.stringify({ code: SOLD_OUT.code, msg: SOLD_OUT.msg, port });
  const reply = (c: Context, user: string, answer: Answer) => {
    log?.({ port, result: answer.result, code: answer.code, localSales: stock.sales(worker), user, orderId: answer.orderId });
    if (answer === SOLD_OUT) return c.body(soldOutBody, 200, JSON_HEADERS);
    return c.json({ code: answer.code, msg: answer.msg, orderId: answer.orderId, port });
  };

  /** The purchase path. Synchronous while the sale is sold out: most requests of a spike end here, and a promise per answer costs. */
  const sell = (c: Context, user: string) => (stock.isSoldOut() ? reply(c, user, SOLD_OUT) : buyTicket(c, user));

  const buyTicket = async (c: Context, user: string) => {
    // tryTake first, so the common case does not pay for a promise.
    if (stock.tryTake(worker)) {
      // Ask for the top-up before running dry, so a steady stream of buyers never waits for it.
      if (stock.isLow(worker) && stock.askTopUp(worker)) onTopUp?.();
    } else if (!(await waitAndTake())) {
      return reply(c, user, SOLD_OUT);
    }
    let purchase: Purchase;
    try {
      purchase = await buy(user);
    } catch {
      // Redis is down or slow: nothing was sold by this request as far as we know, so the unit
      // goes back. (If a timed-out script did run, Redis still holds the record; a named user
      // who retries is told code 2 with that order.)
      stock.giveBack(worker);
      // The client logs the cause once per outage; the buyer needs only to know to retry.
      log?.({ port, result: 'unavailable', code: 503, localSales: stock.sales(worker), user });
      return error(c, 503, 'unavailable', 'the ticket store did not answer; try again', { 'Retry-After': RETRY_AFTER });
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
    return reply(c, user, answer);
  };

  const maxBody = deps.maxBodyBytes ?? 4096;
  app.get('/buy/ticket', (c) => {
    // Hono answers HEAD with the GET handler; a HEAD must never buy a ticket.
    if (c.req.method === 'HEAD') return error(c, 405, 'method_not_allowed', 'use GET or POST', { Allow: ALLOWED['/buy/ticket']! });
    const user = c.req.query('user');
    if (user === undefined) return sell(c, '');
    if (!USER_PATTERN.test(user)) return error(c, 400, 'bad_user', USER_RULE);
    return sell(c, user);
  });
  app.post(
    '/buy/ticket',
    bodyLimit({ maxSize: maxBody, onError: (c) => error(c, 413, 'too_large', `body is larger than ${maxBody} bytes`) }),
    async (c) => {
      const parsed = await readUser(c);
      if ('bad' in parsed) return error(c, parsed.status, parsed.status === 415 ? 'unsupported_media_type' : 'bad_user', parsed.bad);
      return sell(c, parsed.user);
    },
  );

  app.get('/stock', (c) => {
    const { workers, ...global } = stock.snapshot();
    const own = workers[worker]!;
    return c.json({ ...global, port, local: { stock: own.stock, sales: own.sales } });
  });

  app.get('/healthz', async (c) => {
    try {
      await ping();
      return c.json({ ok: true, port });
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      return c.json({ ok: false, port, error: 'unavailable', msg: `Redis unreachable: ${reason}` }, 503, { 'Retry-After': RETRY_AFTER });
    }
  });

  // Wrong methods are answered here, not by catch-all routes: a second route on /buy/ticket would
  // put two handlers on every purchase's path.
  app.notFound((c) => {
    const allow = ALLOWED[c.req.path];
    if (allow) return error(c, 405, 'method_not_allowed', `use ${allow.replace(', ', ' or ')}`, { Allow: allow });
    return error(c, 404, 'not_found', `no route ${c.req.method} ${c.req.path}; try GET /buy/ticket`);
  });
  app.onError((err, c) => {
    console.error(`[worker ${port}] ${err.stack ?? err.message}`);
    return error(c, 500, 'internal', 'internal error');
  });
  return app;
}
