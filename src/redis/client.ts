/** Makes the ioredis clients spike uses, tuned so that a Redis outage fails fast instead of queueing. */
import { log } from '../log.ts';
import Redis, { Cluster, type RedisOptions } from 'ioredis';
import { defineScripts } from './scripts.ts';
import { hashSlot } from './slot.ts';

/** Sentinels (`host:port`) watching one master by name: the client asks them where the master is. */
export interface SentinelTarget {
  readonly sentinels: readonly string[];
  readonly master: string;
}

/** One Redis (`redis://…`), the seed nodes (`host:port`) of a Redis Cluster, or Sentinel. */
export type RedisTarget = string | readonly string[] | SentinelTarget;

const hostPort = (node: string) => {
  const [host, port] = node.split(':');
  return { host: host!, port: Number(port) };
};

/** The target for messages, without a password. */
export function describeTarget(target: RedisTarget): string {
  if (typeof target === 'string') return target.replace(/\/\/[^@]*@/, '//***@');
  if ('sentinels' in target) return `master ${target.master} of the sentinels ${target.sentinels.join(',')}`;
  return `the cluster ${target.join(',')}`;
}

/** A client of either kind: every key of one sale hashes to one slot, so scripts run on Cluster unchanged. */
export type RedisClient = Redis | Cluster;

export interface ClientOptions {
  /** A command slower than this is rejected ("Command timed out"). */
  readonly timeoutMs: number;
  readonly name: string;
  /** Say nothing of lost connections: the supervisor's watch reports each outage once for the node. */
  readonly quiet?: boolean;
}

/**
 * Commands that arrive already batched (PurchaseBatcher gathers a turn's buyers, JoinBatcher its joiners): auto-pipelining
 * would hold each for one more event-loop turn, and every buyer in it would wait that turn too.
 */
const BATCHED = ['purchase', 'join'];

/**
 * A client for the purchase path. While Redis is unreachable every command is rejected at once
 * (no offline queue, no retries), so a request answers 503 instead of hanging; commands in flight
 * when the connection drops are rejected, never re-sent, because a re-sent purchase could sell twice.
 * The client reconnects by itself, with back-off capped at 200 ms.
 */
export function createRedis(target: RedisTarget, { timeoutMs, name, quiet = false }: ClientOptions): RedisClient {
  const options = {
    connectionName: name,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(timeoutMs, 1000),
    // Back within 200 ms of Redis: a refused connect on loopback costs nothing, a slow reconnect costs sales.
    retryStrategy: (attempt: number) => Math.min(50 * attempt, 200),
  };
  const redis = connect(target, options);
  defineScripts(redis);
  // One line per outage, not one per reconnect attempt.
  let reported = false;
  redis.on('error', (error: Error) => {
    if (reported || quiet) return;
    reported = true;
    log.warn(`[${name}] Redis error: ${error.message} (reconnecting)`);
  });
  redis.on('ready', () => {
    if (reported) log.info(`[${name}] Redis reachable again`);
    reported = false;
  });
  return redis;
}

type Options = RedisOptions;

function connect(target: RedisTarget, options: Options): RedisClient {
  const pipelined = { enableAutoPipelining: true, autoPipeliningIgnoredCommands: BATCHED };
  if (typeof target === 'string') return new Redis(target, { ...options, ...pipelined });
  if ('sentinels' in target)
    return new Redis({
      ...options,
      ...pipelined,
      sentinels: target.sentinels.map(hostPort),
      name: target.master,
      // A master that was demoted while this client stayed connected (cut off, then back as a
      // replica) refuses writes with READONLY: ask the sentinels again, never re-send the command.
      // (ioredis' failoverDetector reconnected clients already on the new master: a second outage.)
      reconnectOnError: (error: Error) => (error.message.startsWith('READONLY') ? 1 : false),
      sentinelRetryStrategy: (attempt: number) => Math.min(50 * attempt, 1000),
      sentinelCommandTimeout: options.commandTimeout,
    });
  return new Cluster(target.map(hostPort), {
    ...pipelined,
    enableOfflineQueue: false,
    // Commands to a dead master fail with "Connection is closed" and never trigger a
    // MOVED; re-reading the slot map every second finds the promoted replica.
    slotsRefreshInterval: 1000,
    clusterRetryStrategy: (attempt: number) => Math.min(50 * attempt, 1000),
    redisOptions: options,
  });
}

/** Resolves when the client is ready, or rejects with a message naming the address after `ms`. */
export function waitReady(redis: RedisClient, ms: number, what: string): Promise<void> {
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

/**
 * A key per master for a write that WAIT can then confirm: `base` alone on a single Redis; on a
 * cluster, `base:N` for the first N whose slot each master holds (its replicas are its own).
 */
export function probeKeys(redis: RedisClient, base: string): Map<string, string> {
  if (!(redis instanceof Cluster)) return new Map([['', base]]);
  const masters = new Set(redis.slots.flatMap((nodes) => (nodes?.[0] ? [nodes[0]] : [])));
  const keys = new Map<string, string>();
  for (let i = 0; keys.size < masters.size && i < 1_000_000; i++) {
    const key = `${base}:${i}`;
    const master = redis.slots[hashSlot(key)]?.[0];
    if (master && !keys.has(master)) keys.set(master, key);
  }
  return keys;
}

/**
 * Waits until `replicas` replicas have every write this client made so far to the master of
 * `key` (Redis WAIT), at most `timeoutMs`; resolves with how many did. On a cluster it asks the
 * master that holds the key's slot, on the same connection the writes went through.
 */
export async function waitForReplicas(redis: RedisClient, key: string, replicas: number, timeoutMs: number): Promise<number> {
  if (redis instanceof Cluster) {
    const master = redis.slots[hashSlot(key)]?.[0];
    const node = redis.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === master);
    if (!node) throw new Error(`no master known for ${key}`);
    return Number(await node.call('WAIT', replicas, timeoutMs));
  }
  return Number(await redis.call('WAIT', replicas, timeoutMs));
}
