/** Every message between the supervisor and a worker thread. */
import type { RedisTarget } from '../redis/client.ts';
import type { Rotation } from '../http/stat-log.ts';
import type { AttemptLimit } from '../http/attempts.ts';
import type { ClientKeyOptions } from '../http/client-key.ts';
import type { ArchivedQuery } from '../orders/archived.ts';
import type { Order } from '../orders/model.ts';

/** A sale's local stock buffer, shared by the supervisor and every worker. */
export interface SaleBuffer {
  readonly id: string;
  readonly buffer: SharedArrayBuffer;
  /** Its waiting room's board (queue/board.ts). */
  readonly queue: SharedArrayBuffer;
}

/** What every worker of a node starts with (the pool adds each one's index, port and the sales). */
export interface WorkerSettings {
  readonly host: string;
  readonly defaultSale: string;
  readonly redis: RedisTarget;
  readonly redisTimeoutMs: number;
  readonly refillWaitMs: number;
  readonly payWindowMs: number;
  /** Replicas that must confirm a sale before the buyer is told (0: none), and for how long to wait. */
  readonly waitReplicas: number;
  readonly waitMs: number;
  readonly jwtSecret: string | undefined;
  /** The key of anonymous orders' secrets (orders/secret.ts), the same on every node. */
  readonly orderKey: string;
  /** The key paid orders' tickets are signed with (orders/signed-ticket.ts), the same on every node. */
  readonly ticketKey: string;
  readonly logDir: string;
  /** See StatLog's Rotation. */
  readonly statLog: Rotation;
  /** Most unpaid orders and places per client per sale (SPIKE_ADDRESS_HOLDS; 0: no limit), and how clients are told apart. */
  readonly addressHolds: number;
  readonly clients: ClientKeyOptions;
  /** The node's per-user attempt counts, shared by its workers. */
  readonly attempts: AttemptLimit;
  /** The secret of waiting-room tickets, the same on every node (SPIKE_QUEUE_SECRET). */
  readonly queueKey: string;
  /** The node's view of its Redis (redis/health.ts): the last outage goes with every payment. */
  readonly health: SharedArrayBuffer;
  /** Where the worker journals what it told buyers (orders/journal.ts). */
  readonly journalDir: string;
  /** Whether each worker can write its journal (orders/journal-health.ts): worker i writes cell i. */
  readonly journalHealth: SharedArrayBuffer;
  /** Every answer counted and timed by route and status (http/request-stats.ts), shared by the node's workers. */
  readonly requests: SharedArrayBuffer;
}

export type ToWorker =
  | ({
      readonly type: 'init';
      readonly worker: number;
      readonly workers: number;
      readonly port: number;
      readonly sales: readonly SaleBuffer[];
      /** Archived sales: their orders are asked of the supervisor. */
      readonly archived: readonly string[];
    } & WorkerSettings)
  /** A sale was added after the worker started. */
  | ({ readonly type: 'sale' } & SaleBuffer)
  /** A sale was archived: let go of it; its orders are asked of the supervisor from now on. */
  | { readonly type: 'archived'; readonly id: string }
  /** The answer to an `archivedOrder` request. */
  | { readonly type: 'archivedAnswer'; readonly request: number; readonly order: Order | null; readonly failed?: string }
  /** Stop accepting, finish in-flight requests, flush the log, close Redis, then answer `stopped`. */
  | { readonly type: 'stop' };

export type FromWorker =
  | { readonly type: 'listening'; readonly worker: number; readonly port: number }
  /** An order of an archived sale, from the database. */
  | { readonly type: 'archivedOrder'; readonly request: number; readonly sale: string; readonly query: ArchivedQuery }
  /** The worker could not start (e.g. its port is taken); restarting it would not help. */
  | { readonly type: 'fatal'; readonly worker: number; readonly message: string }
  /** A sale's local stock is low (or out) while the sale is not sold out: please top me up now. */
  | { readonly type: 'topUp'; readonly worker: number; readonly sale: string }
  /** A buyer cancelled (or paid too late): a ticket of the sale is back; sync now so every worker can sell it. */
  | { readonly type: 'released'; readonly worker: number; readonly sale: string }
  /** A buyer paid: the sale's figures changed; sync now (and tell the other nodes). */
  | { readonly type: 'changed'; readonly worker: number; readonly sale: string }
  | { readonly type: 'stopped'; readonly worker: number };
