/** Worker thread entry: wires one Hono app to Bun.serve on its port. */
import type { Server } from 'bun';
import type Redis from 'ioredis';
import { createApp } from './app.ts';
import type { FromWorker, ToWorker } from './messages.ts';
import { createRedis, waitReady } from './redis/client.ts';
import { PurchaseBatcher } from './redis/purchase-batcher.ts';
import { redisOrderStore } from './redis/orders.ts';
import { saleKeys } from './redis/sale.ts';
import { StatLog, statLogPath } from './stat-log.ts';
import { LocalStock } from './stock/local-stock.ts';

declare const self: Worker;

const send = (message: FromWorker) => self.postMessage(message);

let server: Server<undefined> | undefined;
let redis: Redis | undefined;
let log: StatLog | undefined;
let stopping = false;

async function start(init: Extract<ToWorker, { type: 'init' }>): Promise<void> {
  const { worker, port } = init;
  const stock = LocalStock.attach(init.buffer, init.workers);
  redis = createRedis(init.redisUrl, { timeoutMs: init.redisTimeoutMs, name: `spike-worker-${port}` });
  log = new StatLog(statLogPath(init.logDir, port));
  const client = redis;
  const stats = log;
  const keys = saleKeys(init.sale);
  const batcher = new PurchaseBatcher(client, keys, { port, payWindowMs: init.payWindowMs });
  const app = createApp({
    port,
    worker,
    stock,
    buy: (user) => batcher.buy(user),
    ping: () => client.ping(),
    log: (entry) => stats.append(entry),
    onTopUp: () => send({ type: 'topUp', worker }),
    refillWaitMs: init.refillWaitMs,
    orders: redisOrderStore(client, keys),
  });
  // Listen once Redis answers, so a fresh start does not open with 503s. If Redis is down (a
  // restart during an outage), listen anyway after a while: 503s tell clients to come back.
  await waitReady(client, 3000, 'startup').catch(() => {});
  if (stopping) return;
  try {
    server = Bun.serve({ port, hostname: init.host, fetch: app.fetch });
  } catch (cause) {
    send({ type: 'fatal', worker, message: `cannot listen on ${init.host}:${port}: ${cause instanceof Error ? cause.message : String(cause)}` });
    return;
  }
  send({ type: 'listening', worker, port });
}

async function stop(worker: number): Promise<void> {
  stopping = true;
  // stop() without force lets in-flight requests finish before it resolves.
  await server?.stop();
  log?.close();
  await redis?.quit().catch(() => redis?.disconnect());
  send({ type: 'stopped', worker });
}

let index = -1;
self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === 'init') {
    index = message.worker;
    void start(message);
  } else if (message.type === 'stop') {
    void stop(index);
  }
};
