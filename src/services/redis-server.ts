/** The private redis-server that `bun run start` runs when no REDIS_URL is given. */
import type { Subprocess } from 'bun';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isAlive, ownSession, requireBinary, stopChild } from './child.ts';
import { freePort } from './free-port.ts';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly process: Subprocess;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Where the AOF, the log and the pid file live; kept across restarts so a sale survives them. */
  readonly dir: string;
  /** Default: a free port. */
  readonly port?: number;
  /**
   * Redis `appendfsync`: always (default) or everysec. With everysec Redis postpones its AOF write
   * while a slow background fsync runs (up to 2 s) and still answers, so even a process kill,
   * not only a machine crash, can lose acknowledged sales (35 of 7 319 in one bench run).
   */
  readonly appendfsync?: 'everysec' | 'always';
  /** How long to wait for the first PING answer (a large AOF takes a while to load). Default 10 s. */
  readonly readyMs?: number;
}

/**
 * Starts redis-server bound to 127.0.0.1 with AOF on, and resolves once it accepts commands.
 * Refuses a data folder another live redis-server is using: two servers on one AOF lose data.
 */
export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  const binary = requireBinary('redis-server', 'redis-server');
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const pidFile = `${dir}/redis.pid`;
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (pid > 0 && isAlive(pid)) {
      throw new Error(`a redis-server (pid ${pid}) is already using ${dir}; stop it (kill ${pid}) or set SPIKE_DATA_DIR to another folder`);
    }
  }
  const port = options.port ?? (await freePort());
  const child = Bun.spawn(
    ownSession([
      binary,
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      options.appendfsync ?? 'always',
      '--save',
      '',
      '--daemonize',
      'no',
      '--pidfile',
      pidFile,
      '--logfile',
      `${dir}/redis.log`,
    ]),
    { stdout: 'ignore', stderr: 'pipe' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const readyMs = options.readyMs ?? 10_000;
  const deadline = Date.now() + readyMs;
  for (;;) {
    if (child.exitCode !== null) {
      const log = existsSync(`${dir}/redis.log`) ? readFileSync(`${dir}/redis.log`, 'utf8').trim().split('\n').slice(-5).join('\n') : '';
      throw new Error(`redis-server exited with code ${child.exitCode} while starting on port ${port}:\n${log}`);
    }
    if (await answersPing(port)) break;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`redis-server did not answer on port ${port} within ${readyMs / 1000} s; see ${dir}/redis.log`);
    }
    await Bun.sleep(25);
  }
  return { url, port, dir, process: child, stop: () => stopChild(child, 'SIGTERM', 10_000) };
}

/** One PING over a raw socket: cheaper than a client while the server is still loading its AOF. */
async function answersPing(port: number): Promise<boolean> {
  try {
    const reply = await new Promise<string>((resolvePing, reject) => {
      let data = '';
      const timer = setTimeout(() => reject(new Error('timeout')), 500);
      Bun.connect({
        hostname: '127.0.0.1',
        port,
        socket: {
          open: (socket) => void socket.write('PING\r\n'),
          data: (socket, chunk) => {
            data += chunk.toString();
            if (data.includes('\r\n')) {
              clearTimeout(timer);
              socket.end();
              resolvePing(data);
            }
          },
          error: (_socket, err) => reject(err),
          connectError: (_socket, err) => reject(err),
        },
      }).catch(reject);
    });
    return reply.startsWith('+PONG');
  } catch {
    return false;
  }
}
