/** Real redis-server and nginx processes for tests, on free loopback ports in temporary folders. */
import Redis from 'ioredis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNginx, weightedUpstreams, type Nginx } from '../../src/services/nginx.ts';
import { startRedisServer, type RedisServer } from '../../src/services/redis-server.ts';
import { freePort } from '../../src/services/free-port.ts';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `spike-${prefix}-`));
}

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** A plain client for the test's own reads and writes. */
  readonly client: Redis;
  /** Stops the server (SIGTERM: the AOF is flushed), keeping its data folder. */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder. */
  start(): Promise<void>;
  /** Stops it for good and removes its folder. */
  close(): Promise<void>;
}

/** A private redis-server with AOF on. Fails (never skips) when redis-server is missing. */
export async function startTestRedis(): Promise<TestRedis> {
  const dir = tempDir('redis');
  let server: RedisServer | undefined = await startRedisServer({ dir });
  const port = server.port;
  const client = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  client.on('error', () => {});
  return {
    url: server.url,
    port,
    client,
    stop: async () => {
      await server?.stop();
      server = undefined;
    },
    start: async () => {
      server = await startRedisServer({ dir, port });
    },
    close: async () => {
      client.disconnect();
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** nginx with the runtime copy of nginx.conf on a free loopback port, in front of `ports`. */
export async function startTestNginx(ports: readonly number[]): Promise<Nginx & { url: string; close(): Promise<void> }> {
  const dir = tempDir('nginx');
  const port = await freePort();
  const nginx = await startNginx({ listen: `127.0.0.1:${port}`, upstreams: weightedUpstreams('127.0.0.1', ports), runtimeDir: dir });
  return {
    ...nginx,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await nginx.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `n` distinct free loopback ports. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}
