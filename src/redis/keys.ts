/** Every key and field name spike uses in Redis: one home, so a layout change is made here. */

/** The original's sale: `HMSET ticket_hash_key ticket_total_nums 10000 ticket_sold_nums 0` starts it. */
export const DEFAULT_SALE = 'ticket_hash_key';
export const TOTAL_FIELD = 'ticket_total_nums';
export const SOLD_FIELD = 'ticket_sold_nums';

export interface SaleKeys {
  /** Hash with the total and sold counts (the original's layout), paid count and sale settings. */
  readonly sale: string;
  /** Hash user id → their live (reserved or paid) order id. */
  readonly buyers: string;
  /** Stream of order events: created (its id is the order id), paid, cancelled, expired. */
  readonly orders: string;
  /** Hash order id → "state|payBy|port|updatedAt|user", for orders no longer only `created` on the stream. */
  readonly states: string;
  /** Hash of what each client holds: `r:<client>` its unpaid orders (purchase-N.lua), `p:<client>` its places (join-5.lua). */
  readonly holds: string;
}

/** The four keys settle-4.lua and restore-4.lua take, in their order (purchase-N.lua takes these and `holds`). */
export function keyList(keys: SaleKeys): string[] {
  return [keys.sale, keys.buyers, keys.orders, keys.states];
}

/**
 * Keys of sale `id`. The sale hash keeps the original's bare name; the others carry `{id}` as a
 * hash tag, which hashes to the same slot as the bare name, so one script touches one slot and
 * runs unchanged on Redis Cluster.
 */
export function saleKeys(id: string): SaleKeys {
  return { sale: id, buyers: `{${id}}:buyers`, orders: `{${id}}:orders`, states: `{${id}}:order-states`, holds: holdsKey(id) };
}

function holdsKey(id: string): string {
  return `{${id}}:holds`;
}

export const PAID_FIELD = 'ticket_paid_nums';

/** The waiting room of sale `id` (src/queue/): who joined where, the pre-queue, the admission steps. */
export interface QueueKeys {
  /** The sale hash: `queue` (1: buyers need an admission), its settings and counters (the QUEUE_* fields). */
  readonly sale: string;
  /** Hash user id → position, or `pre` while in the pre-queue before the draw. */
  readonly places: string;
  /** Sorted set of the users who joined before the opening, scored by a random number. */
  readonly prequeue: string;
  /** List of admission steps `<ms>:<serving>`, oldest first: those of the last admission window. */
  readonly steps: string;
  /** The sale's holds hash (SaleKeys.holds): the places each client took. */
  readonly holds: string;
}

export function queueKeys(id: string): QueueKeys {
  return { sale: id, places: `{${id}}:queue`, prequeue: `{${id}}:prequeue`, steps: `{${id}}:queue-steps`, holds: holdsKey(id) };
}

/** Sale hash fields of the waiting room (set by the admin API or SPIKE_QUEUE; counters by the scripts). */
export const QUEUE_FIELD = 'queue';
export const QUEUE_ADMISSION_FIELD = 'queue_admission_ms';
export const QUEUE_RATE_FIELD = 'queue_rate';
/** The sale's display name for buyers (optional). */
export const NAME_FIELD = 'name';
/** The event's facts a sale may show buyers (optional): where, when it takes place, and a price label. */
export const VENUE_FIELD = 'venue';
export const EVENT_AT_FIELD = 'event_at';
export const PRICE_FIELD = 'price';
/** The expiry cursor (a stream id): every order up to it has its state in the states hash (settle-4.lua). */
export const REAPED_FIELD = 'reaped_to';
/** The newest id on the sale's stream, kept across a reset: a node that saw a newer one knows Redis lost writes. */
export const LAST_ID_FIELD = 'last_id';
/** Set, with the reason, while a sale is stopped to restore orders Redis lost; nothing sells meanwhile. */
export const RECOVERING_FIELD = 'recovering';
/**
 * The newest stream id when the sale was last reset: orders up to it belonged to the sale before
 * the reset, and are never restored into it (the database or a journal may still hold them).
 */
export const EPOCH_FIELD = 'epoch';
/** The Redis outages nodes saw, "id,start,end;..." (ms): payment deadlines move by them (includes/deadlines.lua). */
export const OUTAGES_FIELD = 'outages';

/** Every sale id, for all nodes to discover (a set of its own, outside every sale's hash slot). */
export const SALES_KEY = 'spike:sales';

/**
 * Archived sales: id -> JSON of what remains to say of them (when, total, sold, paid, name).
 * Their keys are gone; their orders are in the database. An archived id is never used again.
 */
export const ARCHIVED_KEY = 'spike:archived';

/** Every node's last sign of life (node id → ms): a recovery waits for the live ones to add their journals (orders/reconcile.ts). */
export const NODES_KEY = 'spike:nodes';

/** The operators' last actions, newest first (JSON each, at most ACTIONS_KEPT): every node's dashboard shows them, across restarts. */
export const ACTIONS_KEY = 'spike:actions';
export const ACTIONS_KEPT = 50;

/** A sale hash field per node: the recovery (its `recovering` mark) whose journal entries that node has added. */
export const restoredField = (node: string) => `restored:${node}`;

/** A node's write at its start that SPIKE_WAIT_REPLICAS replicas must confirm before it sells (redis-step.ts). */
export const WAIT_PROBE_KEY = 'spike:wait-probe';

/** The order writers' consumer group on every sale's stream (orders/writer.ts acknowledges after its commit). */
export const WRITERS_GROUP = 'order-writers';

/** A sale id: 1–64 characters of `[A-Za-z0-9_.:-]` (no braces: the id becomes a hash tag). */
export const SALE_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/** The key of anonymous orders' secrets (orders/secret.ts), shared by every node; outside every sale's slot. */
export const ORDER_SECRET_KEY = 'spike:order-secret-key';

/** The Ed25519 key paid orders' tickets are signed with (orders/signed-ticket.ts), shared by every node. */
export const TICKET_KEY = 'spike:ticket-key';
