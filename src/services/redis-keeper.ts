/**
 * Keeps the private redis-server running: when it exits (killed, crashed, or stopped by a failed
 * AOF write on a full disk), it is started again on the same port and data folder, after 0.2 s,
 * doubling to 5 s while it keeps failing. Before this, one `kill -9` of Redis made every buyer
 * get 503 until a person restarted it by hand, and after a full disk it stayed down for good.
 *
 * A write that failed for want of space would fail again at once, so after one the keeper waits
 * for room on the disk (it looks every second) and restarts Redis as soon as there is some.
 */
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { startRedisServer, type RedisServer, type RedisServerOptions } from './redis-server.ts';

const BACKOFF_MIN_MS = 200;
const BACKOFF_MAX_MS = 5000;
/** A restart that stayed up this long starts the back-off from the beginning again. */
const STABLE_MS = 30_000;
/** Room the disk must gain after a failed write before Redis is started again. */
const ROOM_BYTES = 1024 * 1024;

export interface KeptRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** How many times redis-server exited on its own and was started again. */
  restarts(): number;
  /** Why Redis cannot run now (a full disk), for /readyz; undefined otherwise. */
  problem(): string | undefined;
  stop(): Promise<void>;
}

export interface KeeperLog {
  readonly warn: (line: string) => void;
  readonly error: (line: string) => void;
  readonly info: (line: string) => void;
}

/** Free bytes on the disk holding `dir` (undefined where it cannot be read). */
export function freeBytes(dir: string): number | undefined {
  try {
    const stats = statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}

const megabytes = (bytes: number | undefined) => (bytes === undefined ? 'unknown space' : `${(bytes / 1024 / 1024).toFixed(1)} MB`);

/** Whether redis-server's last words were a failed write (its log's last lines). */
function failedWrite(dir: string): boolean {
  const path = `${dir}/redis.log`;
  if (!existsSync(path)) return false;
  const tail = readFileSync(path, 'utf8').slice(-2000);
  return /No space left|Short write|AOF write error|Error writing to the AOF/i.test(tail.split('\n').slice(-4).join('\n'));
}

class Keeper implements KeptRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly #options: RedisServerOptions;
  readonly #log: KeeperLog;
  #server: RedisServer;
  #stopping = false;
  #restarts = 0;
  #problem: string | undefined;
  /** Restarts in a row that did not stay up STABLE_MS: the back-off goes on from there. */
  #quickDeaths = 0;
  #restarting: Promise<void> | undefined;

  constructor(server: RedisServer, options: RedisServerOptions, log: KeeperLog) {
    this.#server = server;
    this.url = server.url;
    this.port = server.port;
    this.dir = server.dir;
    this.#options = options;
    this.#log = log;
    this.#watch(server);
  }

  restarts = () => this.#restarts;
  problem = () => this.#problem;

  #watch(running: RedisServer): void {
    const startedAt = Date.now();
    void running.process.exited.then(() => {
      if (this.#stopping || running !== this.#server) return;
      this.#quickDeaths = Date.now() - startedAt > STABLE_MS ? 0 : this.#quickDeaths + 1;
      this.#restarting = this.#restart(running.process.exitCode, running.process.signalCode);
    });
  }

  async #restart(code: number | null, signal: string | number | null): Promise<void> {
    const died = Date.now();
    this.#restarts += 1;
    if (failedWrite(this.dir)) await this.#waitForRoom();
    else
      this.#log.warn(
        `redis-server exited (${signal ? `killed by ${signal}` : `exit code ${code}`}); starting it again on port ${this.port}`,
      );
    let said = '';
    for (let attempt = 0; !this.#stopping; attempt++) {
      await Bun.sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(attempt + Math.max(0, this.#quickDeaths - 1), 10)));
      if (this.#stopping) return;
      try {
        this.#server = await startRedisServer({ ...this.#options, port: this.port, readyMs: 120_000 });
        this.#problem = undefined;
        this.#log.info(
          `redis-server is back on port ${this.port} after ${((Date.now() - died) / 1000).toFixed(1)} s (restart #${this.#restarts})`,
        );
        this.#watch(this.#server);
        return;
      } catch (error) {
        const line = `redis-server did not start again (${error instanceof Error ? error.message.split('\n').slice(-1)[0] : error}); trying again`;
        if (line !== said) this.#log.warn(line);
        said = line;
      }
    }
  }

  /** After a failed write: one error line, not ready, and a restart once the disk has gained room. */
  async #waitForRoom(): Promise<void> {
    const free = freeBytes(this.dir);
    this.#problem = `redis-server cannot write its data in ${this.dir}: ${megabytes(free)} free on that disk`;
    this.#log.error(`${this.#problem}; it starts again by itself as soon as there is room`);
    while (!this.#stopping) {
      const now = freeBytes(this.dir);
      if (free === undefined || now === undefined || now >= free + ROOM_BYTES) return;
      await Bun.sleep(1000);
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#restarting;
    await this.#server.stop();
  }
}

/** Starts redis-server (as startRedisServer does) and keeps it running until stop(). */
export async function keepRedisServer(options: RedisServerOptions, log: KeeperLog): Promise<KeptRedis> {
  return new Keeper(await startRedisServer(options), options, log);
}
