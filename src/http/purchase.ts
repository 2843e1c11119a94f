/**
 * The purchase path of one worker: the sale's sold-out flag, then one unit of local stock (no
 * network), then the batched Redis script, then the answer. Only when both the local unit and
 * Redis say yes is a ticket sold.
 */
import type { Server } from 'bun';
import { randomBytes } from 'node:crypto';
import { JournalFailedError } from '../orders/journal.ts';
import { orderCookie, orderCookieName, orderSecret } from '../orders/secret.ts';
import type { OrderStore } from '../orders/store.ts';
import { SALE_PATTERN } from '../redis/keys.ts';
import { PurchaseCode, type Purchase } from '../redis/sale.ts';
import type { LocalStock } from '../stock/local-stock.ts';
import type { QueueBoard } from '../queue/board.ts';
import type { Attempts } from './attempts.ts';
import type { ClientOf } from './client-key.ts';
import { errorResponse, JSON_HEADERS, outcomeOf, tooMany, unavailable } from './errors.ts';
import { ANSWER_INDEX } from '../stock/answers.ts';
import type { StatEntry, StatResult } from './stat-log.ts';

/** What a sale tells buyers of itself besides its tickets, each optional. */
export interface SaleFacts {
  readonly name: string | null;
  readonly venue: string | null;
  /** When the event takes place (ms since the epoch). */
  readonly eventAt: number | null;
  readonly price: string | null;
}

/** What a worker holds for one sale. */
export interface SaleContext {
  readonly stock: LocalStock;
  /**
   * Runs the global purchase in Redis for `user` (`''` = anonymous) from `client` (`''`: not
   * counted against SPIKE_ADDRESS_HOLDS). Throws when Redis fails.
   */
  readonly buy: (user: string, client: string) => Promise<Purchase>;
  readonly orders?: OrderStore;
  /** The sale's display name and event facts (the buyer's page), as far as it has them; may call Redis. */
  readonly facts?: () => Promise<SaleFacts>;
  /** Its waiting room: the board in shared memory, and the two Redis calls a waiter may cause. */
  readonly queue?: {
    readonly board: QueueBoard;
    join(user: string, client: string): Promise<number>;
    placeOf(user: string): Promise<number | null>;
  };
}

export interface PurchaseDeps {
  /** The port this worker serves; reported in every answer so a client sees who sold. */
  readonly port: number;
  /** This worker's index in each sale's local stock. */
  readonly worker: number;
  readonly sale: (id: string) => SaleContext | undefined;
  readonly defaultSale: string;
  readonly log?: (entry: StatEntry) => void;
  /** Called once when this worker's stock of `sale` runs low (or out) while the sale is not sold out. */
  readonly onTopUp?: (sale: string) => void;
  /** How long a request may wait for a top-up when this worker's local stock is empty; 0: answer sold out at once. */
  readonly refillWaitMs: number;
  /** The key of anonymous orders' secrets. */
  readonly orderKey: string;
  /** The node's per-user attempt counts (attempts.ts); none: no limit. */
  readonly attempts?: Attempts;
  /** The admission check of a sale with a waiting room (queue-routes.ts). */
  readonly gate?: Gate;
  /** Who the buyer is for the per-client holds (client-key.ts); none: nobody is counted. */
  readonly clientOf?: ClientOf;
  /** How long a client that holds its most unpaid orders is told to wait, in ms (about the pay window). */
  readonly holdsRetryMs?: number;
  /** True while the node cannot write its journal: it sells nothing, so nothing it acknowledges can be lost. */
  readonly journalDown?: () => boolean;
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
    case PurchaseCode.TooManyHolds:
      return {
        code: 429,
        msg: 'this address holds as many unpaid orders of this sale as it may: pay or cancel one first',
        result: 'limited',
      };
  }
}

/** A random key for an app built without one (tests): its anonymous orders' secrets hold within it. */
export const ownOrderKey = () => randomBytes(32).toString('hex');

/**
 * The sold-out answer, counted and logged: built once per worker, a new Response per request (a
 * Response's body can be read once). Shared by the Hono route and the native one (fast-path.ts).
 */
export function soldOutAnswer({ port, worker, log, defaultSale }: Pick<PurchaseDeps, 'port' | 'worker' | 'log' | 'defaultSale'>) {
  const body = JSON.stringify({ code: SOLD_OUT.code, msg: SOLD_OUT.msg, port });
  // A Headers object, made once: a plain object is converted on every Response (twice the cost).
  const init = { headers: new Headers(JSON_HEADERS) };
  return (stock: LocalStock, sale: string, user: string): Response => {
    stock.countAnswer(worker, ANSWER_INDEX.soldout);
    log?.({
      port,
      result: 'soldout',
      code: SOLD_OUT.code,
      localSales: stock.sales(worker),
      user,
      sale: sale === defaultSale ? undefined : sale,
    });
    return new Response(body, init);
  };
}

/** Two days: a buyer back after the pay window still learns what became of the order. */
const ORDER_COOKIE_SECONDS = 2 * 86_400;

/**
 * Whether the answer leaves the browser its note of the order (a cookie, for GET /orders/mine): a
 * browser says so in Sec-Fetch-Mode (every current one sends it), and the buyer's page buys with a
 * POST. A program (a shop's server, ab, wrk) keeps the order id itself, and pays for no signature.
 */
const wantsNote = (req: Request) => req.method === 'POST' || req.headers.has('sec-fetch-mode');

/**
 * The answers of one worker, serialised once where they never change: most answers of a spike
 * are "sold out", and a sale's answer differs only in its order id (digits and a dash) and, for
 * an anonymous buyer, the order's secret (base64url), so no JSON.stringify per request.
 */
function answers(deps: PurchaseDeps) {
  const { port, worker, log, defaultSale, orderKey } = deps;
  const names = new Map<string, string>();
  const cookieFor = (sale: string, user: string, orderId: string) => {
    let name = names.get(sale);
    if (name === undefined) {
      name = orderCookieName(sale);
      names.set(sale, name);
    }
    return `${name}=${orderCookie(orderKey, sale, user, orderId)}; Path=/; Max-Age=${ORDER_COOKIE_SECONDS}; HttpOnly; SameSite=Lax`;
  };
  const soldOut = soldOutAnswer(deps);
  const plain = new Headers(JSON_HEADERS);
  const withNote = (note: string) => [...Object.entries(JSON_HEADERS), ['Set-Cookie', note]] as [string, string][];
  const [soldHead, soldTail] = JSON.stringify({ code: 1, msg: 'sold', orderId: '<id>', port }).split('<id>') as [string, string];
  const [anonHead, anonMiddle, anonTail] = JSON.stringify({ code: 1, msg: 'sold', orderId: '<id>', secret: '<secret>', port }).split(
    /<id>|<secret>/,
  ) as [string, string, string];
  return (req: Request, stock: LocalStock, sale: string, user: string, answer: Answer): Response => {
    if (answer === SOLD_OUT) return soldOut(stock, sale, user);
    stock.countAnswer(worker, ANSWER_INDEX[answer.result]);
    log?.({
      port,
      result: answer.result,
      code: answer.code,
      localSales: stock.sales(worker),
      user,
      orderId: answer.orderId,
      sale: sale === defaultSale ? undefined : sale,
    });
    // A named buyer's browser keeps a signed note of the order: a reload or a new tab finds it
    // (GET /orders/mine) without asking Redis for every visitor who holds nothing.
    const note = user && answer.orderId && wantsNote(req) ? cookieFor(sale, user, answer.orderId) : undefined;
    const headers = note ? withNote(note) : plain;
    if (answer.result === 'sold') {
      if (user) return new Response(`${soldHead}${answer.orderId}${soldTail}`, { headers });
      return new Response(`${anonHead}${answer.orderId}${anonMiddle}${orderSecret(orderKey, sale, answer.orderId!)}${anonTail}`, {
        headers,
      });
    }
    return new Response(JSON.stringify({ code: answer.code, msg: answer.msg, orderId: answer.orderId, port }), { headers });
  };
}

/** The user's attempts beyond the cap answer 429 before they touch stock or Redis. */
function attemptCap(deps: PurchaseDeps) {
  const note = noted(deps);
  return (stock: LocalStock, sale: string, user: string): Response | undefined => {
    const waitMs = user && deps.attempts ? deps.attempts.hit(sale, user) : 0;
    if (waitMs === 0) return undefined;
    note(stock, 'limited', 429, user);
    return tooMany('too_many_attempts', `${user} tried to buy too often`, waitMs);
  };
}

/**
 * The admission check of a purchase: undefined (go on) for a sale without a waiting room or a
 * holder of a valid, admitted ticket of this sale and user; else the 403 to answer.
 */
export type Gate = (req: Request, id: string, sale: SaleContext, user: string) => Response | undefined;

/** `gate`, with each refusal counted and logged like any other answer. */
function counted(gate: Gate | undefined, deps: PurchaseDeps): Gate {
  if (!gate) return () => undefined;
  const note = noted(deps);
  return (req, id, sale, user) => {
    const refused = gate(req, id, sale, user);
    if (refused) note(sale.stock, 'unadmitted', 403, user);
    return refused;
  };
}

/**
 * Sells `user` a ticket of sale `saleId` (the default sale when undefined), or says why not.
 * `server` is the Bun server the request came through (its peer's address counts the holds).
 */
export type Sell = (
  req: Request,
  server: Server<unknown> | undefined,
  saleId: string | undefined,
  user: string,
) => Response | Promise<Response>;

/**
 * A unit of local stock for one buyer once this worker ran dry: after waiting up to `refillWaitMs`
 * for a top-up. False when none came in time although the sale is not sold out: the buyer then
 * asks Redis without one, which answers truly, instead of being told "sold out" while a ticket may
 * be free. 'soldout' when the sale is (or, with no wait configured, when this worker is dry).
 */
function dryUnit({ worker, onTopUp, refillWaitMs }: PurchaseDeps) {
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
  return async (stock: LocalStock, sale: string): Promise<boolean | 'soldout'> => {
    if (await waitAndTake(stock, sale)) return true;
    // Without a wait (refillWaitMs 0) a dry worker answers sold out at once, as the original does.
    return stock.isSoldOut() || refillWaitMs === 0 ? 'soldout' : false;
  };
}

/** Counts and logs an answer the purchase path gives besides a sale's (answers() logs those): one place, not seven. */
function noted({ worker, port, log }: PurchaseDeps) {
  return (stock: LocalStock, result: StatResult, code: number, user: string): void => {
    stock.countAnswer(worker, ANSWER_INDEX[result]);
    log?.({ port, result, code, localSales: stock.sales(worker), user });
  };
}

/** Redis' answer to one buyer, as the buyer's response; the unit of local stock kept for a sale, given back otherwise. */
function settled(deps: PurchaseDeps, reply: ReturnType<typeof answers>) {
  const note = noted(deps);
  return (req: Request, stock: LocalStock, sale: string, user: string, purchase: Purchase, unit: boolean, releases: number) => {
    if (purchase.code === PurchaseCode.Sold) stock.recordSale(deps.worker);
    else {
      if (unit) stock.giveBack(deps.worker);
      // A release while the call ran makes its "sold out" stale: only an unchanged count may set the flag.
      if (purchase.code === PurchaseCode.SoldOut && stock.releases() === releases) stock.markSoldOut();
    }
    const answer = answerFor(purchase);
    if (purchase.code === PurchaseCode.TooManyHolds) {
      note(stock, answer.result, answer.code, user);
      return tooMany('too_many_holds', answer.msg, deps.holdsRetryMs ?? 60_000);
    }
    if (purchase.code === PurchaseCode.NoSale) {
      note(stock, answer.result, answer.code, user);
      return errorResponse(404, 'no_sale', 'the sale does not exist in Redis');
    }
    return reply(req, stock, sale, user, answer);
  };
}

/** One unit of local stock, then the batched Redis purchase, then the answer (purchasePath's buyers that got past the checks). */
function ticketBuyer(deps: PurchaseDeps, reply: ReturnType<typeof answers>) {
  const { worker } = deps;
  const dry = dryUnit(deps);
  const note = noted(deps);
  const answer = settled(deps, reply);
  return async (req: Request, server: Server<unknown> | undefined, { stock, buy }: SaleContext, sale: string, user: string) => {
    // tryTake first, so the common case does not pay for a promise.
    let unit: boolean | 'soldout' = stock.tryTake(worker);
    // Ask for the top-up before running dry, so a steady stream of buyers never waits for it.
    if (unit && stock.isLow(worker) && stock.askTopUp(worker)) deps.onTopUp?.(sale);
    if (!unit) unit = await dry(stock, sale);
    if (unit === 'soldout') return reply(req, stock, sale, user, SOLD_OUT);
    const releases = stock.releases();
    let purchase: Purchase;
    try {
      purchase = await buy(user, deps.clientOf?.(req, server) ?? '');
    } catch (cause) {
      // Redis is down or slow: the unit goes back. A script that timed out may still run: an
      // anonymous buyer's sale is then undone, a named buyer's retry is told code 2 with it.
      if (unit) stock.giveBack(worker);
      // The client logs the cause once per outage; the buyer needs only to know to retry.
      note(stock, 'unavailable', 503, user);
      if (cause instanceof JournalFailedError)
        return unavailable(
          'unknown',
          'this node could not journal the sale, so it sells nothing for now; it may have made it: look at your order before trying again',
        );
      return unavailable(outcomeOf(cause));
    }
    return answer(req, stock, sale, user, purchase, unit, releases);
  };
}

export function purchasePath(deps: PurchaseDeps): Sell {
  const reply = answers(deps);
  const limited = attemptCap(deps);
  const admitted = counted(deps.gate, deps);
  const buyTicket = ticketBuyer(deps, reply);
  const note = noted(deps);
  const unjournaled = (stock: LocalStock, user: string) => {
    note(stock, 'unavailable', 503, user);
    return unavailable('none', 'this node cannot write its journal now, so it sells nothing; nothing was changed, try again');
  };

  // Synchronous while the sale is sold out: most requests of a spike end here, and a promise per
  // answer costs. A sold-out answer costs nothing to give, so the attempt cap guards only the rest.
  return (req, server, saleId, user) => {
    const id = saleId ?? deps.defaultSale;
    const sale = deps.sale(id);
    if (!sale)
      return errorResponse(
        404,
        'no_sale',
        SALE_PATTERN.test(id) ? `no sale ${id}` : 'a sale id is 1 to 64 characters of A-Z a-z 0-9 _ . : -',
      );
    if (sale.stock.isSoldOut()) return reply(req, sale.stock, id, user, SOLD_OUT);
    if (deps.journalDown?.()) return unjournaled(sale.stock, user);
    return admitted(req, id, sale, user) ?? limited(sale.stock, id, user) ?? buyTicket(req, server, sale, id, user);
  };
}
