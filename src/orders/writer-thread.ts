/**
 * Thread entry for the order writer. The writer copies events that are already safe in Redis, so
 * during a spike it can wait: it runs on its own thread at a lower CPU priority (nice), leaving
 * the cores to the workers and Redis, and catches up once the rush is over.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { createRedis, waitReady } from '../redis/client.ts';
import { saleKeys, type SaleKeys } from '../redis/keys.ts';
import { openOrderDb } from './db.ts';
import type { FromWriter, ToWriter } from './background-writer.ts';
import { OrderWriter } from './writer.ts';

declare const self: Worker;
const send = (message: FromWriter) => self.postMessage(message);

let sales: SaleKeys[] = [];
let stop: (() => Promise<void>) | undefined;

/** This thread's id (Linux), or undefined where /proc is not there. */
function threadId(): number | undefined {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return undefined;
  }
}

/** Lowers this thread's priority only (Linux: PRIO_PROCESS of a thread id is that thread). */
function lowerPriority(tid: number | undefined, niceness: number): string | undefined {
  if (niceness === 0) return undefined;
  try {
    if (tid === undefined) throw new Error('no /proc/thread-self');
    setPriority(tid, niceness);
    return undefined;
  } catch (error) {
    return `could not lower the order writer's priority (${error instanceof Error ? error.message : error}); it runs at normal priority`;
  }
}

async function start(init: Extract<ToWriter, { type: 'init' }>): Promise<void> {
  sales = init.sales.map(saleKeys);
  const tid = threadId();
  const warning = lowerPriority(tid, init.niceness);
  const db = await openOrderDb(init.databaseUrl, init.dbPath);
  const redis = createRedis(init.redis, { timeoutMs: init.redisTimeoutMs, name: 'spike-writer', quiet: true });
  try {
    await waitReady(redis, 10_000, init.described);
  } catch (error) {
    redis.disconnect();
    await db.close();
    throw error;
  }
  const writer = new OrderWriter(redis, db, {
    sales: () => sales,
    consumer: init.consumer,
    shaving: init.shaving,
    // Waits in Redis for new orders, well inside the connection's command timeout.
    blockMs: Math.min(1000, Math.floor(init.redisTimeoutMs / 2)),
  });
  writer.start();
  stop = async () => {
    await writer.stop();
    await db.close();
    // Not QUIT: it would queue behind a read left waiting in Redis (writer.stop() above).
    redis.disconnect();
  };
  send({ type: 'started', warning, tid });
}

self.onmessage = (event: MessageEvent<ToWriter>) => {
  const message = event.data;
  if (message.type === 'init') {
    start(message).catch((error) => send({ type: 'failed', message: error instanceof Error ? error.message : String(error) }));
  } else if (message.type === 'sales') {
    sales = message.sales.map(saleKeys);
  } else if (message.type === 'stop') {
    void (stop?.() ?? Promise.resolve()).finally(() => send({ type: 'stopped' }));
  }
};
