/** Runs one worker thread per port, restarts the ones that die, and stops them gracefully. */
import { log } from '../log.ts';
import { ConfigError } from '../config.ts';
import type { FromWorker, SaleBuffer, ToWorker, WorkerSettings } from './messages.ts';
import type { ArchivedQuery } from '../orders/archived.ts';
import type { Order } from '../orders/model.ts';

export interface WorkerPoolOptions extends WorkerSettings {
  readonly ports: readonly number[];
  /** The sales' buffers as they stand now (a restarted worker gets them all). */
  readonly sales: () => readonly SaleBuffer[];
  /** The archived sales as they stand now. */
  readonly archived: () => readonly string[];
  /** An order of an archived sale, from the database. */
  readonly archivedOrder: (sale: string, query: ArchivedQuery) => Promise<Order | null>;
  readonly onTopUp: (worker: number, sale: string) => void;
  /** A worker released a ticket of `sale` (a cancel, a payment too late), or took a payment: read it now. */
  readonly onReleased: (sale: string) => void;
  /** Progress lines ("listening", "restarting"). */
  readonly say: (line: string) => void;
  /** A worker that cannot start at all (port taken): the supervisor should give up. */
  readonly onFatal: (message: string) => void;
}

const WORKER_URL = new URL('./worker.ts', import.meta.url).href;
/** Restart back-off: 100 ms, doubling, at most 5 s; reset once a worker stayed up this long. */
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
const STABLE_MS = 10_000;

interface Slot {
  thread: Worker | undefined;
  restarts: number;
  startedAt: number;
  failures: number;
  restartTimer: ReturnType<typeof setTimeout> | undefined;
  listening: PromiseWithResolvers<void>;
  /** Listening now (set on its `listening` message, cleared when its thread ends). */
  up: boolean;
  stopped: PromiseWithResolvers<void> | undefined;
}

export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #slots: Slot[];
  #stopping = false;

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#slots = options.ports.map(() => ({
      thread: undefined,
      restarts: 0,
      startedAt: 0,
      failures: 0,
      restartTimer: undefined,
      listening: Promise.withResolvers<void>(),
      up: false,
      stopped: undefined,
    }));
  }

  /** Starts every worker; resolves when all of them listen. */
  async start(): Promise<void> {
    for (let i = 0; i < this.#slots.length; i++) this.#spawn(i);
    await Promise.all(this.#slots.map((slot) => slot.listening.promise));
  }

  /** The live thread of worker `i` (tests terminate it to play a crash). */
  thread(i: number): Worker | undefined {
    return this.#slots[i]?.thread;
  }

  /** The ports of the workers not listening right now (dead, or restarting). */
  down(): number[] {
    return this.#options.ports.filter((_, i) => !this.#slots[i]!.up);
  }

  /** How many times worker `i` was restarted after dying. */
  restarts(i: number): number {
    return this.#slots[i]?.restarts ?? 0;
  }

  /** Gives every live worker a sale added after it started. */
  addSale(sale: SaleBuffer): void {
    for (const slot of this.#slots) slot.thread?.postMessage({ type: 'sale', ...sale } satisfies ToWorker);
  }

  /** Tells every live worker that a sale was archived. */
  archiveSale(id: string): void {
    for (const slot of this.#slots) slot.thread?.postMessage({ type: 'archived', id } satisfies ToWorker);
  }

  /** Resolves when worker `i` listens again after its latest (re)start. */
  listening(i: number): Promise<void> {
    return this.#slots[i]!.listening.promise;
  }

  /** What worker `i` says: it listens, a sale runs low or released a ticket, an archived order, it stopped or cannot start. */
  #onMessage(i: number, thread: Worker, message: FromWorker): void {
    const slot = this.#slots[i]!;
    const port = this.#options.ports[i]!;
    switch (message.type) {
      case 'listening':
        this.#options.say(`worker ${i} listening on http://${this.#options.host}:${port}`);
        slot.up = true;
        slot.listening.resolve();
        break;
      case 'topUp':
        this.#options.onTopUp(i, message.sale);
        break;
      case 'released':
      case 'changed':
        this.#options.onReleased(message.sale);
        break;
      case 'archivedOrder':
        this.#options.archivedOrder(message.sale, message.query).then(
          (order) => thread.postMessage({ type: 'archivedAnswer', request: message.request, order } satisfies ToWorker),
          (cause: unknown) =>
            thread.postMessage({
              type: 'archivedAnswer',
              request: message.request,
              order: null,
              failed: String(cause),
            } satisfies ToWorker),
        );
        break;
      case 'fatal':
        slot.listening.reject(new ConfigError(`SPIKE_PORTS: worker ${i} ${message.message}: is the port taken? choose free ports`));
        this.#options.onFatal(message.message);
        break;
      case 'stopped':
        slot.stopped?.resolve();
        break;
    }
  }

  #spawn(i: number): void {
    const slot = this.#slots[i]!;
    const port = this.#options.ports[i]!;
    const thread = new Worker(WORKER_URL);
    slot.thread = thread;
    slot.startedAt = Date.now();
    thread.addEventListener('message', (event: MessageEvent<FromWorker>) => this.#onMessage(i, thread, event.data));
    thread.addEventListener('error', (event) => {
      log.error(`[worker ${i} :${port}] crashed: ${event.message}`);
    });
    thread.addEventListener('close', () => {
      if (slot.thread !== thread) return;
      slot.thread = undefined;
      slot.up = false;
      slot.stopped?.resolve();
      if (this.#stopping) return;
      // Died on its own: restart it on the same port with the same stock slots.
      slot.failures = Date.now() - slot.startedAt > STABLE_MS ? 1 : slot.failures + 1;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (slot.failures - 1));
      const restarts = ++slot.restarts;
      this.#options.say(`worker ${i} (:${port}) exited; restart #${restarts} in ${delay} ms`);
      slot.listening = Promise.withResolvers<void>();
      slot.listening.promise.catch(() => {});
      slot.restartTimer = setTimeout(() => {
        slot.restartTimer = undefined;
        if (!this.#stopping) this.#spawn(i);
      }, delay);
    });
    const {
      ports,
      sales,
      archived,
      archivedOrder: _order,
      onTopUp: _topUp,
      onReleased: _released,
      say: _say,
      onFatal: _fatal,
      ...settings
    } = this.#options;
    const init: ToWorker = { type: 'init', worker: i, workers: ports.length, port, sales: sales(), archived: archived(), ...settings };
    thread.postMessage(init);
  }

  /**
   * Asks every worker to stop (finish in-flight requests, flush its log, close Redis) and waits
   * up to `graceMs`; a worker still busy then is terminated.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#slots.map(async (slot) => {
        if (slot.restartTimer) clearTimeout(slot.restartTimer);
        const thread = slot.thread;
        if (!thread) return;
        slot.stopped = Promise.withResolvers<void>();
        thread.postMessage({ type: 'stop' } satisfies ToWorker);
        const done = await Promise.race([slot.stopped.promise.then(() => true), Bun.sleep(graceMs).then(() => false)]);
        if (!done) log.warn(`[pool] a worker did not stop within ${graceMs} ms; terminating it`);
        thread.terminate();
      }),
    );
  }
}
