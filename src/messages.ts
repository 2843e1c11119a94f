/** Every message between the supervisor and a worker thread. */

export type ToWorker =
  | {
      readonly type: 'init';
      readonly worker: number;
      readonly workers: number;
      readonly port: number;
      readonly host: string;
      readonly buffer: SharedArrayBuffer;
      readonly redisUrl: string;
      readonly redisTimeoutMs: number;
      readonly refillWaitMs: number;
      readonly payWindowMs: number;
      readonly sale: string;
      readonly logDir: string;
    }
  /** Stop accepting, finish in-flight requests, flush the log, close Redis, then answer `stopped`. */
  | { readonly type: 'stop' };

export type FromWorker =
  | { readonly type: 'listening'; readonly worker: number; readonly port: number }
  /** The worker could not start (e.g. its port is taken); restarting it would not help. */
  | { readonly type: 'fatal'; readonly worker: number; readonly message: string }
  /** Local stock is low (or out) while the sale is not sold out: please top me up now. */
  | { readonly type: 'topUp'; readonly worker: number }
  | { readonly type: 'stopped'; readonly worker: number };
