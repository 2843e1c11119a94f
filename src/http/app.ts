/** The HTTP API of one worker, as a Hono app built from its dependencies (no I/O at import). */
import type { Server } from 'bun';
import { log } from '../log.ts';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { jwt } from 'hono/jwt';
import { getCookie } from 'hono/cookie';
import { isOrderSecret, orderCookieName, orderFromCookie } from '../orders/secret.ts';
import { newTicketKey, privateTicketKey, publicTicketKey, signTicket } from '../orders/signed-ticket.ts';
import type { OrderStore } from '../orders/store.ts';
import { error, RETRY_AFTER } from './errors.ts';
import { caller, canonicalUser, queryUser, USER_RULE, type Who } from './identity.ts';
import { Attempts, type AttemptLimit } from './attempts.ts';
import { clientKey, type ClientKeyOptions } from './client-key.ts';
import { buyerPageRoutes, notFoundPage, wantsPage } from './buyer-page.tsx';
import { allowedMethods } from './methods.ts';
import { orderRoutes } from './order-routes.ts';
import { admissionGate, queueRoutes } from './queue-routes.ts';
import { ownOrderKey, purchasePath, type SaleContext, type Sell } from './purchase.ts';
import { buyRoute } from './fast-path.ts';
import type { StatEntry } from './stat-log.ts';

export type { SaleContext } from './purchase.ts';

export interface AppDeps {
  /** The port this worker serves; reported in every answer so a client sees who sold. */
  readonly port: number;
  /** This worker's index in each sale's local stock. */
  readonly worker: number;
  /** The sales this worker knows, by id. */
  readonly sale: (id: string) => SaleContext | undefined;
  /** Every sale this worker serves (the page of sales on offer). */
  readonly saleIds?: () => readonly string[];
  /** The order store of an archived sale (orders/archived.ts), by id. */
  readonly archived?: (id: string) => OrderStore | undefined;
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
  /** The key paid orders' tickets are signed with (orders/signed-ticket.ts); default: one of this app's own. */
  readonly ticketKey?: string;
  /** The node's per-user attempt counts in shared memory (attempts.ts); none: no limit. */
  readonly attempts?: AttemptLimit;
  /** The secret of waiting-room tickets, shared by every node (queue/ticket.ts); default: one of this app's own. */
  readonly queueKey?: string;
  /** How buyers are told apart for SPIKE_ADDRESS_HOLDS (client-key.ts); none: nobody is counted. */
  readonly clients?: ClientKeyOptions;
  /** How long a client at its holds limit is told to wait (about the pay window), ms. */
  readonly holdsRetryMs?: number;
  /** True while the node cannot write its journal: it sells nothing then (orders/journal.ts). */
  readonly journalDown?: () => boolean;
}

/**
 * GET and POST /buy/ticket. A plain GET of an unsigned buyer never reaches Hono: the worker serves
 * it on Bun's own router (fast-path.ts, {@link createServing}); these routes serve the rest.
 */
function buyRoutes(app: Hono, sell: Sell, who: Who, signed: boolean, maxBody: number): void {
  const server = (c: Context) => c.env as Server<unknown> | undefined;
  const fromCaller = async (c: Context): Promise<Response> => {
    const asker = await who(c);
    return 'response' in asker ? asker.response : sell(c.req.raw, server(c), c.req.query('sale'), asker.user);
  };
  app.get('/buy/ticket', (c) => {
    // Hono answers HEAD with the GET handler; a HEAD must never buy a ticket.
    if (c.req.method === 'HEAD') return error(c, 405, 'method_not_allowed', 'use GET or POST', { Allow: 'GET, POST' });
    if (signed) return fromCaller(c);
    const given = queryUser(c);
    if ('bad' in given) return error(c, 400, 'bad_user', given.bad);
    if (given.user === undefined) return sell(c.req.raw, server(c), c.req.query('sale'), '');
    const user = canonicalUser(given.user);
    if (user === undefined) return error(c, 400, 'bad_user', USER_RULE);
    return sell(c.req.raw, server(c), c.req.query('sale'), user);
  });
  app.post(
    '/buy/ticket',
    bodyLimit({ maxSize: maxBody, onError: (c) => error(c, 413, 'too_large', `body is larger than ${maxBody} bytes`) }),
    fromCaller,
  );
}

/**
 * GET /stock, the node's view of a sale from shared memory; and the probes. `/livez` says only
 * that this worker's event loop answers (a liveness probe must not restart every worker during
 * a Redis blip); `/readyz` that Redis answers and the worker serves its sales (503 otherwise:
 * take it out of rotation); `/healthz` is `/readyz`.
 */
function infoRoutes(app: Hono, deps: AppDeps): void {
  const { port, worker, defaultSale } = deps;
  app.get('/stock', (c) => {
    const id = c.req.query('sale') ?? defaultSale;
    const sale = deps.sale(id);
    if (!sale) return error(c, 404, 'no_sale', `no sale ${id}`);
    const { workers, ...global } = sale.stock.snapshot();
    const own = workers[worker]!;
    const answered = sale.stock.answers(worker).reduce((sum, n) => sum + n, 0);
    // `now`: the server's clock, for a page's countdowns on a device whose clock is off.
    const now = Date.now();
    return c.json({ sale: id, ...global, ...sale.stock.state(now), now, port, local: { stock: own.stock, sales: own.sales, answered } });
  });
  app.get('/livez', (c) => c.json({ ok: true, port }));
  const ready = async (c: Context) => {
    if (!deps.sale(defaultSale))
      return c.json({ ok: false, port, error: 'unavailable', msg: 'the sales are not loaded yet' }, 503, { 'Retry-After': RETRY_AFTER });
    if (deps.journalDown?.())
      return c.json(
        { ok: false, port, error: 'unavailable', msg: 'the journal cannot be written: this node sells nothing until it can' },
        503,
        {
          'Retry-After': RETRY_AFTER,
        },
      );
    try {
      await deps.ping();
      return c.json({ ok: true, port });
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      return c.json({ ok: false, port, error: 'unavailable', msg: `Redis unreachable: ${reason}` }, 503, { 'Retry-After': RETRY_AFTER });
    }
  };
  app.get('/readyz', ready);
  app.get('/healthz', ready);
}

/** 404 and 405 (its `Allow` read from the routes themselves: no second handler on any route), and errors. */
function fallbacks(app: Hono, port: number): void {
  const allowed = allowedMethods(app);
  app.notFound((c) => {
    const allow = allowed(c.req.path);
    if (allow) return error(c, 405, 'method_not_allowed', `use ${allow.replace(', ', ' or ')}`, { Allow: allow });
    // A person following a broken link gets a page with a way back; a program gets JSON.
    if (c.req.method === 'GET' && wantsPage(c))
      return notFoundPage(c, `There is no page at ${c.req.path}. The link may be mistyped or old.`);
    return error(c, 404, 'not_found', `no route ${c.req.method} ${c.req.path}; try GET /buy/ticket`);
  });
  app.onError((err, c) => {
    if (err instanceof HTTPException && err.status === 401) {
      const reason = err.cause instanceof Error ? `: ${err.cause.message}` : '';
      return error(c, 401, 'unauthorized', `${err.message}${reason}`, {
        'WWW-Authenticate': err.getResponse().headers.get('WWW-Authenticate') ?? 'Bearer',
      });
    }
    log.error(`[worker ${port}] ${err.stack ?? err.message}`);
    return error(c, 500, 'internal', 'internal error');
  });
}

/** Builds a worker's app: the purchase path (purchase.ts), the order routes, /stock, /healthz. */
export function createApp(deps: AppDeps): Hono {
  return createServing(deps).app;
}

/**
 * A worker's app and its native purchase route (fast-path.ts) on the same purchase path: the
 * worker serves `GET /buy/ticket` with `buyTicket` on Bun's router and everything else with `app`.
 * `buyTicket` is undefined with signed users: every purchase then has its token checked by the app.
 */
export function createServing(deps: AppDeps): { app: Hono; buyTicket?: ReturnType<typeof buyRoute> } {
  const app = new Hono();
  const maxBody = deps.maxBodyBytes ?? 4096;
  const orderKey = deps.orderKey ?? ownOrderKey();
  const ticketKey = privateTicketKey(deps.ticketKey ?? newTicketKey());
  const signed = Boolean(deps.jwtSecret);
  if (deps.jwtSecret) {
    const verify = jwt({ secret: deps.jwtSecret, alg: 'HS256' });
    for (const path of ['/buy/ticket', '/orders', '/orders/*', '/queue/join']) app.use(path, verify);
  }
  const who = caller(signed);
  const attempts = deps.attempts && new Attempts(deps.attempts);
  const queueKey = deps.queueKey ?? ownOrderKey();
  const gate = admissionGate(queueKey);
  // A signed user holds one order per sale at most already: only the unsigned are counted per client.
  const clientOf = deps.clients && !signed ? clientKey(deps.clients) : undefined;
  const sell = purchasePath({ ...deps, refillWaitMs: deps.refillWaitMs ?? 0, orderKey, attempts, gate, clientOf });
  buyRoutes(app, sell, who, signed, maxBody);
  queueRoutes(app, { sale: deps.sale, defaultSale: deps.defaultSale, who, key: queueKey, maxBodyBytes: maxBody, attempts, clientOf });
  infoRoutes(app, deps);
  const pageSale = async (id: string) => {
    const sale = deps.sale(id);
    const facts = await sale?.facts?.().catch(() => undefined);
    return sale && { id, stock: sale.stock, facts, queued: sale.queue?.board.isQueued() };
  };
  buyerPageRoutes(app, {
    defaultSale: deps.defaultSale,
    sale: pageSale,
    sales: async () => (await Promise.all((deps.saleIds?.() ?? []).map(pageSale))).filter((s) => s !== undefined),
    notFound: (c, id) => error(c, 404, 'no_sale', `no sale ${id}`),
  });
  app.route(
    '/orders',
    orderRoutes({
      store: (id) => deps.sale(id ?? deps.defaultSale)?.orders ?? deps.archived?.(id ?? deps.defaultSale),
      who,
      maxBodyBytes: maxBody,
      isSecret: (sale, orderId, given) => isOrderSecret(orderKey, sale, orderId, given),
      noted: (c, sale, user) => orderFromCookie(orderKey, sale, user, getCookie(c, orderCookieName(sale))),
      signed,
      ticket: (order) =>
        signTicket(ticketKey, { sale: order.sale, order: order.orderId, user: order.user, type: 'general', issuedAt: Date.now() }),
    }),
  );
  const publicKey = publicTicketKey(ticketKey);
  app.get('/tickets/key', (c) => c.json({ algorithm: 'Ed25519', publicKey }));
  fallbacks(app, deps.port);
  withNosniff(app);
  return { app, buyTicket: signed ? undefined : buyRoute(sell, (req, server) => app.fetch(req, server)) };
}

/**
 * Every answer of the app says nosniff. Set on the way out, not by a middleware: a middleware
 * wraps every route's handler in Hono's compose, and cost the purchase path about a quarter of its
 * req/s (one worker under wrk: ~13 600 with it, ~18 000 without).
 * The prebuilt hot-path answers carry it already (JSON_HEADERS).
 */
function withNosniff(app: Hono): Hono {
  const fetch = app.fetch;
  const mark = (res: Response) => {
    if (!res.headers.has('X-Content-Type-Options')) res.headers.set('X-Content-Type-Options', 'nosniff');
    return res;
  };
  app.fetch = (request, env, ctx) => {
    const res = fetch(request, env, ctx);
    return res instanceof Response ? mark(res) : res.then(mark);
  };
  return app;
}
