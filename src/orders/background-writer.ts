/** Runs the order writer (writer-thread.ts) on a thread of its own, and stops it cleanly. */
import { log } from '../log.ts';
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
  /** The writer thread's Linux thread id (for ps -L, top -H), when known and while it runs. */
  readonly tid: number | undefined;
  /** The live thread (tests terminate it to play a crash). */
  readonly thread: Worker | undefined;
  /** How many times a thread that died was started again. */
  readonly restarts: number;
  /** Whether a writer thread runs now (false between a death and its restart). */
  readonly isRunning: boolean;
  /** Resolves once a thread runs: at once, or after the restart in progress. */
  running(): Promise<void>;
  /** Tells the writer the sales to write (after the admin API or another node added one). */
  setSales(sales: readonly string[]): void;
  stop(): Promise<void>;
  /** Starts a thread again after stop(): the orders that waited in Redis meanwhile are written. */
  start(): Promise<void>;
}

type Init = Omit<Extract<ToWriter, { type: 'init' }>, 'type'>;

const THREAD_URL = new URL('./writer-thread.ts', import.meta.url).href;
/** Restart back-off: 1 s, doubling, at most 30 s; back to 1 s once a thread stayed up this long. */
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
const STABLE_MS = 60_000;

interface WriterThread {
  readonly thread: Worker;
  readonly tid: number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts one writer thread; resolves once its database and Redis are open, rejects with the
 * reason otherwise. `onDeath` is called when a thread that started ends without being stopped.
 */
async function spawnWriter(init: Init, say: (line: string) => void, onDeath: (reason: string) => void): Promise<WriterThread> {
  const thread = new Worker(THREAD_URL);
  const started = Promise.withResolvers<number | undefined>();
  const stopped = Promise.withResolvers<void>();
  let running = false;
  let stopping = false;
  let cause = 'it ended';
  thread.addEventListener('message', (event: MessageEvent<FromWriter>) => {
    const message = event.data;
    if (message.type === 'started') {
      if (message.warning) say(message.warning);
      started.resolve(message.tid);
    } else if (message.type === 'failed') {
      started.reject(new Error(`order writer: ${message.message}`));
    } else if (message.type === 'stopped') {
      stopped.resolve();
    }
  });
  thread.addEventListener('error', (event) => {
    cause = `order writer thread: ${event.message}`;
    started.reject(new Error(cause));
  });
  thread.addEventListener('close', () => {
    stopped.resolve();
    started.reject(new Error('order writer thread ended before it started'));
    if (running && !stopping) onDeath(cause);
  });
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
    thread,
    tid,
    stop: async () => {
      stopping = true;
      thread.postMessage({ type: 'stop' } satisfies ToWriter);
      await stopped.promise;
      thread.terminate();
    },
  };
}

/**
 * Keeps one writer thread running: a thread that dies (only a bug could do it: its loop catches
 * Redis and database errors) is started again after a back-off, and the orders sold meanwhile,
 * which wait in Redis, are written by the new one.
 */
class RestartingWriter implements BackgroundWriter {
  readonly #init: Init;
  readonly #say: (line: string) => void;
  #sales: readonly string[];
  #current: WriterThread | undefined;
  #starting: Promise<void> | undefined;
  /** Set while no thread runs (between a death and the restart that succeeds). */
  #restarting: PromiseWithResolvers<void> | undefined;
  #startedAt = 0;
  #failures = 0;
  #restarts = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;

  constructor(init: Init, say: (line: string) => void) {
    this.#init = init;
    this.#say = say;
    this.#sales = init.sales;
  }

  get tid(): number | undefined {
    return this.#current?.tid;
  }

  get thread(): Worker | undefined {
    return this.#current?.thread;
  }

  get restarts(): number {
    return this.#restarts;
  }

  get isRunning(): boolean {
    return this.#current !== undefined;
  }

  running(): Promise<void> {
    return this.#restarting?.promise ?? Promise.resolve();
  }

  /** Starts a thread with the sales as they stand now; rejects when it cannot start. */
  start(): Promise<void> {
    this.#stopping = false;
    this.#starting = (async () => {
      const started = await spawnWriter({ ...this.#init, sales: this.#sales }, this.#say, (cause) => this.#died(cause));
      if (this.#stopping) return started.stop();
      this.#current = started;
      this.#startedAt = Date.now();
      this.#restarting?.resolve();
      this.#restarting = undefined;
    })();
    return this.#starting;
  }

  /** A thread that ran died (`#current` set), or a restart failed to start one (not set). */
  #died(cause: string): void {
    const ranLong = this.#current !== undefined && Date.now() - this.#startedAt > STABLE_MS;
    this.#current = undefined;
    if (this.#stopping) return;
    this.#failures = ranLong ? 1 : this.#failures + 1;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (this.#failures - 1));
    this.#restarts += 1;
    this.#restarting ??= Promise.withResolvers<void>();
    log.error(`[order writer] ${cause}; restart #${this.#restarts} in ${delay} ms (the orders wait in Redis meanwhile)`);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#stopping) return;
      this.start().then(
        () => this.#say(`order writer restarted (#${this.#restarts})`),
        (error: unknown) => this.#died(error instanceof Error ? error.message : String(error)),
      );
    }, delay);
  }

  setSales(sales: readonly string[]): void {
    this.#sales = sales;
    this.#current?.thread.postMessage({ type: 'sales', sales } satisfies ToWriter);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    await this.#starting?.catch(() => {});
    await this.#current?.stop();
    this.#current = undefined;
  }
}

/** Starts the writer thread; resolves once its database and Redis are open, rejects with the reason otherwise (no restart then: a setting is wrong). */
export async function startBackgroundWriter(init: Init, say: (line: string) => void): Promise<BackgroundWriter> {
  const writer = new RestartingWriter(init, say);
  await writer.start();
  return writer;
}
