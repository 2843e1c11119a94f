/** Worker thread entry: wires one Hono app to Bun.serve on its port. */
import type { Server } from 'bun';
import type { RedisClient as Redis } from '../redis/client.ts';
import { createServing, type AppDeps, type SaleContext } from '../http/app.ts';
import type { FromWorker, SaleBuffer, ToWorker } from './messages.ts';
import { createRedis, waitReady } from '../redis/client.ts';
import { Journal, JournalFailedError, journaling } from '../orders/journal.ts';
import { JournalHealth } from '../orders/journal-health.ts';
import { redisOrderStore, releasing, type OrderStore } from '../orders/store.ts';
import { archivedStore, type ArchivedQuery } from '../orders/archived.ts';
import type { Order } from '../orders/model.ts';
import { log as logLine } from '../log.ts';
import { PurchaseBatcher, type BatchedSale } from '../redis/purchase-batcher.ts';
import { EVENT_AT_FIELD, NAME_FIELD, PRICE_FIELD, queueKeys, saleKeys, VENUE_FIELD } from '../redis/keys.ts';
import { JoinBatcher, placeOf } from '../redis/queue.ts';
import { QueueBoard } from '../queue/board.ts';
import { DrawnPlaces } from '../queue/drawn-places.ts';
import { RedisHealth } from '../redis/health.ts';
import { RequestStats, routeOf, type Route } from '../http/request-stats.ts';
import { StatLog, statLogPath } from '../http/stat-log.ts';
import { LocalStock } from '../stock/local-stock.ts';

declare const self: Worker;

const send = (message: FromWorker) => self.postMessage(message);

let server: Server<undefined> | undefined;
let redis: Redis | undefined;
let log: StatLog | undefined;
let journal: Journal | undefined;
let purchaseClient: Redis | undefined;
/** How long a purchase's late answer is still awaited (and undone) after its buyer was told 503. */
const LATE_ANSWER_MS = 60_000;
let stopping = false;
const sales = new Map<string, SaleContext>();
/** Archived sales: their orders come from the supervisor, which reads the database. */
const archived = new Map<string, OrderStore>();
const asked = new Map<number, PromiseWithResolvers<Order | null>>();
let nextRequest = 0;

/** An order of an archived sale, asked of the supervisor; fails after 5 s (a 503 to the buyer). */
function askArchived(sale: string, query: ArchivedQuery): Promise<Order | null> {
  const request = ++nextRequest;
  const answer = Promise.withResolvers<Order | null>();
  asked.set(request, answer);
  const timer = setTimeout(() => answer.reject(new Error('the supervisor did not answer in 5 s')), 5000);
  send({ type: 'archivedOrder', request, sale, query });
  return answer.promise.finally(() => {
    clearTimeout(timer);
    asked.delete(request);
  });
}

function archive(id: string): void {
  sales.delete(id);
  archived.set(
    id,
    archivedStore(id, (query) => askArchived(id, query)),
  );
}

/** What every sale of this worker shares: the Redis clients and the journal. */
interface Shared {
  readonly init: Extract<ToWorker, { type: 'init' }>;
  /** Reads, orders, the waiting room: every command fails after SPIKE_REDIS_TIMEOUT_MS. */
  readonly client: Redis;
  /** Purchases only: the batcher answers the buyer after SPIKE_REDIS_TIMEOUT_MS, but waits longer for Redis' late answer. */
  readonly purchases: Redis;
  readonly journal: Journal;
  /** One script call per event-loop turn for every sale of the worker. */
  readonly batcher: PurchaseBatcher;
}

function addSale(shared: Shared, { id, buffer, queue }: SaleBuffer): void {
  const { init, client, journal } = shared;
  const keys = saleKeys(id);
  const stock = LocalStock.attach(buffer, init.workers);
  const health = RedisHealth.attach(init.health);
  const guard = { seen: () => stock.seen(), outage: () => health.outageArgument(), asked: () => health.redisNow() };
  // A cancel puts the ticket on sale at once here, and on the other workers after the sync it asks for.
  const orders = releasing(
    journaling(redisOrderStore(client, keys, guard), journal, init.port),
    () => {
      stock.noteRelease();
      send({ type: 'released', worker: init.worker, sale: id });
    },
    // A payment changes what the sale says (sold out for good once nothing unpaid can come back).
    () => send({ type: 'changed', worker: init.worker, sale: id }),
  );
  const sale = batchedSale(shared, id, stock, orders);
  sales.set(id, {
    stock,
    buy: (user, client) => shared.batcher.buy(sale, { user, client }),
    orders,
    facts: cached(5000, async () => {
      const [name, venue, eventAt, price] = await client.hmget(keys.sale, NAME_FIELD, VENUE_FIELD, EVENT_AT_FIELD, PRICE_FIELD);
      return { name: name ?? null, venue: venue ?? null, eventAt: Number(eventAt) || null, price: price ?? null };
    }),
    queue: waitingRoom(client, id, queue, guard.seen, init.addressHolds),
  });
}

/**
 * The sale's purchases: every sale is in the node's journal before its buyer is told
 * (orders/journal.ts). A sale Redis made after its buyer was told 503 (Redis was slow) is undone
 * for an anonymous buyer, who could never find it; a named buyer's retry is shown it (code 2).
 */
function batchedSale({ init, journal }: Shared, id: string, stock: LocalStock, orders: OrderStore): BatchedSale {
  return {
    id,
    keys: saleKeys(id),
    seen: { newest: () => stock.seen(), note: (orderId) => stock.noteSeen(orderId), batchTook: (s) => stock.observeBatch(s) },
    onUnanswered: (sold, lateMs) => {
      journal.append(sold.filter((s) => s.user).map(({ orderId, user }) => soldEntry(init, id, orderId, user)));
      const anonymous = sold.filter((s) => !s.user);
      // Said once the cancels are answered: one that fails leaves its order to expire unpaid at its deadline.
      void Promise.allSettled(anonymous.map(({ orderId }) => orders.settle('cancel', orderId, '*'))).then((results) => {
        const failed = results.filter((r) => r.status === 'rejected').length;
        logLine.warn(
          `[worker ${init.port}] Redis answered ${sold.length} purchases of ${id} ${Math.round(lateMs)} ms late, after their buyers were told 503: ` +
            `${anonymous.length - failed} anonymous ones undone${failed ? `, ${failed} not (they expire unpaid at their deadline)` : ''}`,
        );
      });
    },
  };
}

/** A sale's line in the journal. */
function soldEntry(init: Shared['init'], sale: string, orderId: string, user: string) {
  return { sale, kind: 'created', orderId, user, port: init.port, window: init.payWindowMs } as const;
}

/** `read`'s last answer for up to `ms`: a page per buyer must not be a Redis call per buyer. */
function cached<T>(ms: number, read: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  let at = 0;
  return () => {
    if (!value || performance.now() - at > ms) {
      at = performance.now();
      value = read().catch((cause) => {
        value = undefined;
        throw cause;
      });
    }
    return value;
  };
}

/** A sale's waiting room on this worker: its board, and joins gathered per event-loop turn. */
function waitingRoom(client: Redis, id: string, buffer: SharedArrayBuffer, seen: () => string, maxPlaces: number) {
  const keys = queueKeys(id);
  const joins = new JoinBatcher(client, keys, seen, maxPlaces);
  const drawn = new DrawnPlaces((user) => placeOf(client, keys, user));
  return {
    board: QueueBoard.attach(buffer),
    join: (user: string, who: string) => joins.join(user, who),
    placeOf: (user: string) => drawn.placeOf(user),
  };
}

let addLater: ((sale: SaleBuffer) => void) | undefined;

/**
 * The worker's purchases, one script call per event-loop turn: every sale is in the journal before
 * its buyer is told (one write a call, for all its sales). A call whose sales cannot be journaled
 * tells nobody "sold": its buyers get 503, and an anonymous buyer's sale (they could never find
 * it) is undone.
 */
function purchaseBatcher(init: Extract<ToWorker, { type: 'init' }>, client: Redis, nodeJournal: Journal): PurchaseBatcher {
  const undo = (sale: string, orderId: string) =>
    void sales
      .get(sale)
      ?.orders?.settle('cancel', orderId, '*')
      .catch(() => {});
  return new PurchaseBatcher(
    client,
    { port: init.port, payWindowMs: init.payWindowMs, maxHolds: init.addressHolds },
    {
      durability: init.waitReplicas > 0 ? { replicas: init.waitReplicas, timeoutMs: init.waitMs } : undefined,
      timeoutMs: init.redisTimeoutMs,
      onSold: (made) => {
        if (nodeJournal.append(made.flatMap(({ sale, sold }) => sold.map(({ orderId, user }) => soldEntry(init, sale.id, orderId, user)))))
          return;
        for (const { sale, sold } of made) for (const { orderId, user } of sold) if (!user) undo(sale.id, orderId);
        throw new JournalFailedError(`the journal cannot be written (${init.journalDir}); nobody was told "sold"`);
      },
    },
  );
}

async function start(init: Extract<ToWorker, { type: 'init' }>): Promise<void> {
  const { worker, port } = init;
  redis = createRedis(init.redis, { timeoutMs: init.redisTimeoutMs, name: `spike-worker-${port}`, quiet: true });
  purchaseClient = createRedis(init.redis, { timeoutMs: LATE_ANSWER_MS, name: `spike-purchases-${port}`, quiet: true });
  log = new StatLog(statLogPath(init.logDir, port), { rotation: init.statLog });
  const client = redis;
  const stats = log;
  const journalHealth = JournalHealth.attach(init.journalHealth);
  const nodeJournal = new Journal(init.journalDir, port, { health: journalHealth, cell: worker });
  journal = nodeJournal;
  const batcher = purchaseBatcher(init, purchaseClient, nodeJournal);
  const shared: Shared = { init, client, purchases: purchaseClient, journal: nodeJournal, batcher };
  for (const sale of init.sales) addSale(shared, sale);
  for (const id of init.archived) archive(id);
  addLater = (sale) => addSale(shared, sale);
  const appDeps: AppDeps = {
    port,
    worker,
    sale: (id) => sales.get(id),
    saleIds: () => [...sales.keys()],
    archived: (id) => archived.get(id),
    defaultSale: init.defaultSale,
    // Ready means both clients reach Redis: purchases go through a connection of their own.
    ping: () => Promise.all([client.ping(), shared.purchases.ping()]),
    log: (entry) => stats.append(entry),
    onTopUp: (sale) => send({ type: 'topUp', worker, sale }),
    journalDown: () => journalHealth.failing(),
    refillWaitMs: init.refillWaitMs,
    jwtSecret: init.jwtSecret,
    orderKey: init.orderKey,
    ticketKey: init.ticketKey,
    attempts: init.attempts,
    queueKey: init.queueKey,
    clients: init.clients,
    // A client at its limit may buy again once an order is paid, cancelled or expired.
    holdsRetryMs: init.payWindowMs || 60_000,
  };
  const { app, buyTicket } = createServing(appDeps);
  // Listen once Redis answers, so a fresh start does not open with 503s. If Redis is down (a
  // restart during an outage), listen anyway after a while: 503s tell clients to come back.
  await waitReady(client, 3000, 'startup').catch(() => {});
  if (stopping) return;
  try {
    const timed = timing(RequestStats.attach(init.requests, init.workers), worker);
    // The server goes with each request: the app reads the peer's address from it (client-key.ts).
    const fetch = timed(undefined, (req: Request, from: Server<undefined>) => app.fetch(req, from));
    // Signed users need the JWT checked first: with them on, every request goes through the app.
    server = buyTicket
      ? Bun.serve({ port, hostname: init.host, routes: { '/buy/ticket': { GET: timed('buy', buyTicket) } }, fetch })
      : Bun.serve({ port, hostname: init.host, fetch });
  } catch (cause) {
    send({
      type: 'fatal',
      worker,
      // Bun's own message asks "Is port N in use?": said once, by the pool's message.
      message: `cannot listen on ${init.host}:${port} (${(cause instanceof Error ? cause.message : String(cause)).replace(/\.? *Is port \d+ in use\?/i, '')})`,
    });
    return;
  }
  send({ type: 'listening', worker, port });
}

/**
 * How long a stopping worker keeps serving with `Connection: close` before it closes its sockets:
 * nginx then drops its kept-alive connections to this worker itself, instead of sending a request
 * into one the worker is closing (a reset, which nginx counts against the worker; a rolling restart
 * made dozens). Ctrl-C waits this long once.
 */
const DRAIN_MS = 300;
let draining = false;

async function stop(worker: number): Promise<void> {
  stopping = true;
  draining = true;
  if (server) await Bun.sleep(DRAIN_MS);
  // stop() without force lets in-flight requests finish before it resolves.
  await server?.stop();
  log?.close();
  journal?.close();
  await redis?.quit().catch(() => redis?.disconnect());
  await purchaseClient?.quit().catch(() => purchaseClient?.disconnect());
  send({ type: 'stopped', worker });
}

/** The route of a request's URL (request-stats.ts), read without parsing the URL. */
function routeOfUrl(url: string): Route {
  const from = url.indexOf('/', url.indexOf('//') + 2);
  const query = url.indexOf('?', from);
  return routeOf(query < 0 ? url.slice(from) : url.slice(from, query));
}

type Handler = (req: Request, server: Server<undefined>) => Response | Promise<Response>;

/**
 * `handler`, each answer counted and timed by route and status (http/request-stats.ts): two plain
 * increments per request. A handler of one route names it, so its requests' URLs are not read.
 */
function timing(stats: RequestStats, worker: number) {
  return (known: Route | undefined, handler: Handler) =>
    (req: Request, from: Server<undefined>): Response | Promise<Response> => {
      const started = performance.now();
      const route = known ?? routeOfUrl(req.url);
      const answer = handler(req, from);
      if (answer instanceof Response) {
        stats.observe(worker, route, answer.status, performance.now() - started);
        return draining ? closing(answer) : answer;
      }
      return answer.then((res) => {
        stats.observe(worker, route, res.status, performance.now() - started);
        return draining ? closing(res) : res;
      });
    };
}

/** While draining: the answer closes its connection (stop()). */
function closing(res: Response): Response {
  res.headers.set('Connection', 'close');
  return res;
}

let index = -1;
self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === 'init') {
    index = message.worker;
    void start(message);
  } else if (message.type === 'sale') {
    addLater?.(message);
  } else if (message.type === 'archived') {
    archive(message.id);
  } else if (message.type === 'archivedAnswer') {
    const answer = asked.get(message.request);
    if (message.failed) answer?.reject(new Error(message.failed));
    else answer?.resolve(message.order);
  } else if (message.type === 'stop') {
    void stop(index);
  }
};
