/** Runs the order writer (writer-thread.ts) on a thread of its own, and stops it cleanly. */
import type { RedisTarget } from '../redis/client.ts';
import type { Shaving } from './writer.ts';

export type ToWriter =
  | {
      readonly type: 'init';
      readonly redis: RedisTarget;
      /** The Redis target for messages, without a password. */
      readonly described: string;
      readonly redisTimeoutMs: number;
      readonly databaseUrl: string | undefined;
      readonly dbPath: string;
      readonly consumer: string;
      /** Added to the thread's nice value; 0 leaves it as is. */
      readonly niceness: number;
      /** See OrderWriter's Shaving. */
      readonly shaving: Shaving;
      readonly sales: readonly string[];
    }
  /** The sale ids whose streams to write, as they stand now. */
  | { readonly type: 'sales'; readonly sales: readonly string[] }
  /** Finish the round in progress (committed and acknowledged), close, then answer `stopped`. */
  | { readonly type: 'stop' };

export type FromWriter =
  | { readonly type: 'started'; readonly warning: string | undefined; readonly tid: number | undefined }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'stopped' };

export interface BackgroundWriter {
  /** The writer thread's Linux thread id (for ps -L, top -H), when known. */
  readonly tid: number | undefined;
  /** Tells the writer the sales to write (after the admin API or another node added one). */
  setSales(sales: readonly string[]): void;
  stop(): Promise<void>;
}

const THREAD_URL = new URL('./writer-thread.ts', import.meta.url).href;

/** Starts the writer thread; resolves once its database and Redis are open, rejects with the reason otherwise. */
export async function startBackgroundWriter(init: Omit<Extract<ToWriter, { type: 'init' }>, 'type'>, say: (line: string) => void): Promise<BackgroundWriter> {
  const thread = new Worker(THREAD_URL);
  const started = Promise.withResolvers<number | undefined>();
  const stopped = Promise.withResolvers<void>();
  thread.onmessage = (event: MessageEvent<FromWriter>) => {
    const message = event.data;
    if (message.type === 'started') {
      if (message.warning) say(message.warning);
      started.resolve(message.tid);
    } else if (message.type === 'failed') {
      started.reject(new Error(`order writer: ${message.message}`));
    } else if (message.type === 'stopped') {
      stopped.resolve();
    }
  };
  let running = false;
  thread.onerror = (event) => {
    const error = new Error(`order writer thread: ${event.message}`);
    // After a good start this is a bug, not a setting: say so; nothing is lost, the orders wait in Redis.
    if (running) console.error(`[order writer] ${error.message}; the orders stay in Redis, and the next start writes them`);
    started.reject(error);
    stopped.resolve();
  };
  thread.postMessage({ type: 'init', ...init } satisfies ToWriter);
  let tid: number | undefined;
  try {
    tid = await started.promise;
    running = true;
  } catch (error) {
    thread.terminate();
    throw error;
  }
  return {
    tid,
    setSales: (sales) => thread.postMessage({ type: 'sales', sales } satisfies ToWriter),
    stop: async () => {
      thread.postMessage({ type: 'stop' } satisfies ToWriter);
      await stopped.promise;
      thread.terminate();
    },
  };
}
