/** Makes the ioredis clients spike uses, tuned so that a Redis outage fails fast instead of queueing. */
import Redis from 'ioredis';
import { defineScripts } from './scripts.ts';

export interface ClientOptions {
  /** A command slower than this is rejected ("Command timed out"). */
  readonly timeoutMs: number;
  readonly name: string;
}

/**
 * A client for the purchase path. While Redis is unreachable every command is rejected at once
 * (no offline queue, no retries), so a request answers 503 instead of hanging; commands in flight
 * when the connection drops are rejected, never re-sent, because a re-sent purchase could sell twice.
 * The client reconnects by itself, with back-off capped at one second.
 */
export function createRedis(url: string, { timeoutMs, name }: ClientOptions): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(timeoutMs, 1000),
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
  });
  defineScripts(redis);
  // One line per outage, not one per reconnect attempt.
  let reported = false;
  redis.on('error', (error: Error) => {
    if (reported) return;
    reported = true;
    console.error(`[${name}] Redis error: ${error.message} (reconnecting)`);
  });
  redis.on('ready', () => {
    if (reported) console.error(`[${name}] Redis reachable again`);
    reported = false;
  });
  return redis;
}

/** Resolves when the client is ready, or rejects with a message naming the address after `ms`. */
export function waitReady(redis: Redis, ms: number, what: string): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    let lastError = '';
    const onError = (error: Error) => {
      lastError = error.message;
    };
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      redis.off('error', onError);
      reject(new Error(`cannot reach Redis at ${what} within ${ms} ms${lastError ? `: ${lastError}` : ''}`));
    }, ms);
    const onReady = () => {
      clearTimeout(timer);
      redis.off('error', onError);
      resolve();
    };
    redis.once('ready', onReady);
    redis.on('error', onError);
  });
}
