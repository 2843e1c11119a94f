/**
 * Redis high availability as Sentinel runs it, on loopback: a master, replicas and three
 * sentinels (`redis-server --sentinel`), each a real process on a free port, AOF on, a failover
 * 1 s after the master stops answering.
 */
import type { Subprocess } from 'bun';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, tempDir } from './servers.ts';

export interface TestSentinels {
  /** `host:port` of each sentinel (REDIS_SENTINELS). */
  readonly sentinels: readonly string[];
  readonly master: string;
  /** The port of the data server the sentinels name master now. */
  masterPort(): Promise<number>;
  /** The ports of the master and the replicas. */
  readonly dataPorts: readonly number[];
  /** SIGKILL of the data server on `port`. */
  kill(port: number): Promise<void>;
  /** Sends `signal` (SIGSTOP, SIGCONT) to the data server on `port`. */
  signal(port: number, signal: NodeJS.Signals): void;
  /** Starts the data server on `port` again with its folder (the sentinels make it a replica). */
  restart(port: number): void;
  close(): Promise<void>;
}

const cli = (port: number, ...args: string[]) =>
  Bun.spawnSync(['redis-cli', '-h', '127.0.0.1', '-p', String(port), ...args])
    .stdout.toString()
    .trim();

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/**
 * `replicas` replicas: with two, the one not promoted follows the new master at once, so a sale
 * that waits for one replica (SPIKE_WAIT_REPLICAS=1) goes on without waiting for the old master.
 */
export async function startTestSentinels(master = 'spike', replicas = 2): Promise<TestSentinels> {
  const dir = tempDir('sentinel');
  const ports = await freePorts(4 + replicas);
  const [primary, ...rest] = ports as [number, ...number[]];
  const replicaPorts = rest.slice(0, replicas);
  const sentinelPorts = rest.slice(replicas) as [number, number, number];
  const servers = new Map<number, Subprocess>();
  const dataServer = (port: number) => {
    const folder = join(dir, String(port));
    mkdirSync(folder, { recursive: true });
    // A restarted old master comes back as what it was; the sentinels turn it into a replica.
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', folder, '--appendonly', 'yes'];
    args.push('--appendfsync', 'always', '--save', '', '--logfile', join(folder, 'log'));
    if (replicaPorts.includes(port)) args.push('--replicaof', '127.0.0.1', String(primary));
    servers.set(port, Bun.spawn(['redis-server', ...args], { stdout: 'ignore', stderr: 'ignore' }));
  };
  for (const port of ports.slice(0, 1 + replicas)) dataServer(port);
  await until(
    'master and replicas',
    () => cli(primary, 'ping') === 'PONG' && replicaPorts.every((p) => /master_link_status:up/.test(cli(p, 'info', 'replication'))),
  );
  for (const port of sentinelPorts) {
    // A sentinel rewrites its file (what it learnt of the set): one file each.
    const file = join(dir, `sentinel-${port}.conf`);
    writeFileSync(
      file,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `sentinel monitor ${master} 127.0.0.1 ${primary} 2`,
        `sentinel down-after-milliseconds ${master} 1000`,
        `sentinel failover-timeout ${master} 5000`,
        `sentinel parallel-syncs ${master} 1`,
        `logfile ${join(dir, `sentinel-${port}.log`)}`,
        '',
      ].join('\n'),
    );
    servers.set(port, Bun.spawn(['redis-server', file, '--sentinel'], { stdout: 'ignore', stderr: 'ignore' }));
  }
  // Each sentinel has found the replica and the other two sentinels: a failover can be voted.
  await until('the sentinels to know each other', () =>
    sentinelPorts.every((p) => {
      const info = cli(p, 'sentinel', 'master', master);
      return new RegExp(`num-slaves\n${replicas}\n`).test(info) && /num-other-sentinels\n2/.test(info);
    }),
  );
  const masterPort = async () => Number(cli(sentinelPorts[0], 'sentinel', 'get-master-addr-by-name', master).split('\n')[1]);
  return {
    sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`),
    master,
    masterPort,
    kill: async (port) => {
      const server = servers.get(port)!;
      server.kill('SIGKILL');
      await server.exited;
    },
    dataPorts: ports.slice(0, 1 + replicas),
    signal: (port, signal) => servers.get(port)!.kill(signal),
    restart: (port) => dataServer(port),
    close: async () => {
      for (const server of servers.values()) server.kill('SIGTERM');
      await Promise.all([...servers.values()].map((s) => s.exited));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
