/**
 * Which sales changed, said between the nodes that share a Redis: a node whose workers sold, whose
 * reaper released or whose admin API changed a sale publishes the sale's id once per sync round
 * (all the sales of a round in one message: 100 selling sales were 1 000 messages a second that
 * every node, the sender too, received and parsed), and every other node reads that sale at once instead of reading every sale every round (1 000
 * idle sales cost 13 400 Redis commands a second that way). Pub/sub may drop a message (a
 * reconnect); the sync's slow full round and its full read after an outage cover that.
 */
import { log } from '../log.ts';
import { Cluster } from 'ioredis';
import type { RedisClient as Redis } from './client.ts';

/** The channel: each message is `<node id> <sale id> [<sale id> …]` (a node ignores its own; sale ids hold no space). */
export const CHANGES_CHANNEL = 'spike:changed';

/** A message naming no sale: the list of sales changed (a sale was created or archived). */
export const SALES_CHANGED = '*';

export class SaleChanges {
  readonly #redis: Redis;
  readonly #node: string;
  #subscriber: Redis | undefined;

  constructor(redis: Redis, node: string) {
    this.#redis = redis;
    this.#node = node;
  }

  /**
   * Calls `changed` with the id of every sale another node changes (SALES_CHANGED: the list), and
   * `missed` when the subscription is back after a lost connection: what was said meanwhile is lost.
   */
  start(changed: (sale: string) => void, missed: () => void = () => {}): void {
    // A connection of its own: a subscribed connection can do nothing else. It queues SUBSCRIBE
    // until connected and subscribes again after every reconnect.
    const subscriber: Redis =
      this.#redis instanceof Cluster
        ? this.#redis.duplicate(undefined, { enableOfflineQueue: true })
        : this.#redis.duplicate({ enableOfflineQueue: true, connectionName: `spike-changes-${this.#node}` });
    this.#subscriber = subscriber;
    // Its outages are the node's, reported once by the watch (supervisor/redis-watch.ts); without a
    // listener ioredis printed a stack for every reconnect attempt.
    subscriber.on('error', () => {});
    let connected = false;
    subscriber.on('ready', () => {
      if (connected) missed();
      connected = true;
    });
    subscriber.on('message', (_channel: string, message: string) => {
      const [node, ...sales] = message.split(' ');
      if (node !== this.#node) for (const sale of sales) if (sale) changed(sale);
    });
    subscriber.subscribe(CHANGES_CHANNEL).catch((error: unknown) => {
      log.warn(`[changes] cannot subscribe to ${CHANGES_CHANNEL}: ${error instanceof Error ? error.message : error}; full rounds only`);
    });
  }

  /** Tells the other nodes that `sales` changed, in one message; a failure only delays them to their full round. */
  publish(sales: readonly string[]): void {
    if (sales.length) this.#redis.publish(CHANGES_CHANNEL, `${this.#node} ${sales.join(' ')}`).catch(() => {});
  }

  async stop(): Promise<void> {
    await this.#subscriber?.quit().catch(() => this.#subscriber?.disconnect());
  }
}
