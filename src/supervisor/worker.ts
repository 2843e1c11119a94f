/** Worker thread entry: wires one Hono app to Bun.serve on its port. */
import type { Server } from 'bun';
import type { RedisClient as Redis } from '../redis/client.ts';
import { createApp, type AppDeps, type SaleContext } from '../http/app.ts';
import { soldOutRoute } from '../http/fast-path.ts';
import type { FromWorker, SaleBuffer, ToWorker } from './messages.ts';
import { createRedis, waitReady } from '../redis/client.ts';
import { Journal, journaling } from '../orders/journal.ts';
import { redisOrderStore, releasing } from '../orders/store.ts';
import { PurchaseBatcher } from '../redis/purchase-batcher.ts';
import { NAME_FIELD, queueKeys, saleKeys } from '../redis/keys.ts';
import { JoinBatcher, placeOf } from '../redis/queue.ts';
import { QueueBoard } from '../queue/board.ts';
import { RedisHealth } from '../redis/health.ts';
import { StatLog, statLogPath } from '../http/stat-log.ts';
import { LocalStock } from '../stock/local-stock.ts';

declare const self: Worker;

const send = (message: FromWorker) => self.postMessage(message);

let server: Server<undefined> | undefined;
let redis: Redis | undefined;
let log: StatLog | undefined;
let journal: Journal | undefined;
let stopping = false;
const sales = new Map<string, SaleContext>();

function addSale(init: Extract<ToWorker, { type: 'init' }>, client: Redis, journal: Journal, { id, buffer, queue }: SaleBuffer): void {
  const keys = saleKeys(id);
  const durability = init.waitReplicas > 0 ? { replicas: init.waitReplicas, timeoutMs: init.waitMs } : undefined;
  const stock = LocalStock.attach(buffer, init.workers);
  const health = RedisHealth.attach(init.health);
  const guard = { seen: () => stock.seen(), outage: () => health.outageArgument() };
  const seen = {
    newest: () => stock.seen(),
    note: (orderId: string) => stock.noteSeen(orderId),
    batchTook: (s: number) => stock.observeBatch(s),
  };
  // Every sale is in the node's journal before its buyer is told (orders/journal.ts).
  const onSold = (sold: readonly { orderId: string; user: string }[]) =>
    journal.append(
      sold.map(({ orderId, user }) => ({ sale: id, kind: 'created', orderId, user, port: init.port, window: init.payWindowMs })),
    );
  const batcher = new PurchaseBatcher(client, keys, { port: init.port, payWindowMs: init.payWindowMs }, { durability, seen, onSold });
  sales.set(id, {
    stock,
    buy: (user) => batcher.buy(user),
    // A cancel puts the ticket on sale at once here, and on the other workers after the sync it asks for.
    orders: releasing(journaling(redisOrderStore(client, keys, guard), journal, init.port), () => {
      stock.noteRelease();
      send({ type: 'released', worker: init.worker, sale: id });
    }),
    name: cached(5000, () => client.hget(keys.sale, NAME_FIELD)),
    queue: waitingRoom(client, id, queue, guard.seen),
  });
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
function waitingRoom(client: Redis, id: string, buffer: SharedArrayBuffer, seen: () => string) {
  const keys = queueKeys(id);
  const joins = new JoinBatcher(client, keys, seen);
  return {
    board: QueueBoard.attach(buffer),
    join: (user: string) => joins.join(user),
    placeOf: (user: string) => placeOf(client, keys, user),
  };
}

let addLater: ((sale: SaleBuffer) => void) | undefined;

async function start(init: Extract<ToWorker, { type: 'init' }>): Promise<void> {
  const { worker, port } = init;
  redis = createRedis(init.redis, { timeoutMs: init.redisTimeoutMs, name: `spike-worker-${port}`, quiet: true });
  log = new StatLog(statLogPath(init.logDir, port), { rotation: init.statLog });
  const client = redis;
  const stats = log;
  const journaled = new Journal(init.journalDir, port);
  journal = journaled;
  for (const sale of init.sales) addSale(init, client, journaled, sale);
  addLater = (sale) => addSale(init, client, journaled, sale);
  const appDeps: AppDeps = {
    port,
    worker,
    sale: (id) => sales.get(id),
    defaultSale: init.defaultSale,
    ping: () => client.ping(),
    log: (entry) => stats.append(entry),
    onTopUp: (sale) => send({ type: 'topUp', worker, sale }),
    refillWaitMs: init.refillWaitMs,
    jwtSecret: init.jwtSecret,
    orderKey: init.orderKey,
    attempts: init.attempts,
    queueKey: init.queueKey,
  };
  const app = createApp(appDeps);
  // Listen once Redis answers, so a fresh start does not open with 503s. If Redis is down (a
  // restart during an outage), listen anyway after a while: 503s tell clients to come back.
  await waitReady(client, 3000, 'startup').catch(() => {});
  if (stopping) return;
  try {
    // Signed users need the JWT checked first: with them on, every request goes through the app.
    const fast = soldOutRoute(appDeps, app.fetch);
    server = init.jwtSecret
      ? Bun.serve({ port, hostname: init.host, fetch: app.fetch })
      : Bun.serve({ port, hostname: init.host, routes: { '/buy/ticket': { GET: fast } }, fetch: app.fetch });
  } catch (cause) {
    send({
      type: 'fatal',
      worker,
      message: `cannot listen on ${init.host}:${port}: ${cause instanceof Error ? cause.message : String(cause)}`,
    });
    return;
  }
  send({ type: 'listening', worker, port });
}

async function stop(worker: number): Promise<void> {
  stopping = true;
  // stop() without force lets in-flight requests finish before it resolves.
  await server?.stop();
  log?.close();
  journal?.close();
  await redis?.quit().catch(() => redis?.disconnect());
  send({ type: 'stopped', worker });
}

let index = -1;
self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === 'init') {
    index = message.worker;
    void start(message);
  } else if (message.type === 'sale') {
    addLater?.(message);
  } else if (message.type === 'stop') {
    void stop(index);
  }
};
