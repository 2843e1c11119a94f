/**
 * `bun run rehearse`: the README's deployment on one machine (bench/lib/rehearsal/topology.ts),
 * a spike of distinct users through its nginx while the Redis master is killed and every node is
 * restarted in turn, then the audit: sold = total, every acknowledged order in the database,
 * nothing sold twice, and how long each fault cost. Exit 0 when every check holds.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { parseCommandLine, usageError } from '../src/cli/args.ts';
import { auditWhenWritten } from '../src/orders/audit.ts';
import { openOrderDb } from '../src/orders/db.ts';
import { DEFAULT_SALE, saleKeys, SOLD_FIELD } from '../src/redis/keys.ts';
import { type CrowdRecord, soldAgainAfter, startCrowd } from './lib/rehearsal/buyers.ts';
import { DOWN_AFTER_MS, NODES, startTopology, type Topology, WORKER_PORTS } from './lib/rehearsal/topology.ts';

const USAGE = `usage: bun run rehearse [-- --users N] [-- --total N] [-- --quick]
  the whole deployment in network namespaces (nginx, 3 nodes, Redis master + 2 replicas +
  3 sentinels, PostgreSQL), a spike through it while the Redis master is killed and each
  node restarted in turn, then the audit. Needs root (namespaces). Loopback and the
  namespaces it makes only.
  --users N   distinct users (default 1000000)
  --total N   tickets (default 100000: enough that every fault lands while tickets remain)
  --quick     20000 users, 2000 tickets (what the tests run)`;

interface Options {
  readonly users: number;
  readonly total: number;
}

function options(): Options {
  const { values, positionals } = parseCommandLine(
    Bun.argv.slice(2),
    { users: { type: 'string' }, total: { type: 'string' }, quick: { type: 'boolean' } },
    USAGE,
  );
  if (positionals.length > 0) usageError(`unexpected argument ${positionals[0]}`, USAGE);
  const count = (raw: string | undefined, fallback: number, name: string) => {
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < 1) {
      console.error(`rehearse: --${name} ${raw} is not accepted; accepted: a whole number of at least 1\n${USAGE}`);
      process.exit(2);
    }
    return Number(raw);
  };
  return {
    users: count(values.users, values.quick ? 20_000 : 1_000_000, 'users'),
    total: count(values.total, values.quick ? 2000 : 100_000, 'total'),
  };
}

const say = (line: string) => console.log(`[rehearse ${new Date().toISOString().slice(11, 19)}] ${line}`);

async function until(ok: () => boolean | undefined, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) return false;
    await Bun.sleep(50);
  }
  return true;
}

interface Faults {
  failoverMs: number | undefined;
  newMaster: string;
  restarts: string[];
  /** Non-200 answers while the nodes were restarted (none means no buyer was refused). */
  refusedDuringRestarts: number;
}

/** The faults, in order, while the crowd buys: the master killed once a fifth is sold, then each node restarted. */
async function faults(topology: Topology, record: CrowdRecord, total: number): Promise<Faults> {
  await until(() => record.acknowledged.size >= total / 5, 600_000);
  const master = topology.masterHost();
  const host = [...topology.net.hosts.values()].find((h) => h.ip === master)!.name;
  const killedAt = Date.now();
  await topology.killRedis(host);
  say(`killed the Redis master (${host}, ${master}) with SIGKILL at ${record.acknowledged.size} sold`);
  // Its machine is gone until the sentinels have promoted a replica; then it comes back and they make it a replica.
  await until(() => topology.masterHost() !== master, 60_000);
  const newMaster = topology.masterHost();
  say(`the sentinels promoted ${newMaster} ${Date.now() - killedAt} ms after the kill; ${host} starts again as a replica`);
  topology.startRedis(host);
  await until(() => soldAgainAfter(record, killedAt) !== undefined, 60_000);
  const failoverMs = soldAgainAfter(record, killedAt);
  say(`sold again ${failoverMs} ms after the kill`);
  const restartsFrom = Date.now();
  const restarts: string[] = [];
  for (const name of NODES) {
    const { exitCode, ms } = await topology.restartNode(name);
    restarts.push(`${name} ${(ms / 1000).toFixed(1)} s (exit ${exitCode})`);
    say(`restarted ${name}: SIGTERM → exit ${exitCode} → ready again in ${(ms / 1000).toFixed(1)} s`);
  }
  const refusedDuringRestarts = record.refused.filter((r) => r.at >= restartsFrom).length;
  return { failoverMs, newMaster, restarts, refusedDuringRestarts };
}

async function audit(topology: Topology, record: CrowdRecord, total: number): Promise<string[]> {
  const redis = new Redis({ sentinels: topology.sentinels.map((s) => ({ host: s.split(':')[0], port: 26379 })), name: 'spike' });
  const db = await openOrderDb(topology.databaseUrl, '');
  try {
    const keys = saleKeys(DEFAULT_SALE);
    const report = await auditWhenWritten(redis, keys, db, 120_000);
    const sold = Number(await redis.hget(keys.sale, SOLD_FIELD));
    const buyers = await redis.hlen(keys.buyers);
    const live = (await db.orders(DEFAULT_SALE)).filter((o) => o.state === 'reserved' || o.state === 'paid');
    const inDb = new Set(live.map((o) => o.orderId));
    const users = new Set(live.map((o) => o.user));
    const missing = [...record.acknowledged.values()].filter((id) => !inDb.has(id));
    const checks = [
      check(`sold ${sold} of ${total} (Redis, through the sentinels)`, sold === total),
      check(
        `acknowledged ${record.acknowledged.size}, orders in the database ${live.length}, acknowledged but missing ${missing.length}`,
        missing.length === 0 && live.length === record.acknowledged.size,
      ),
      check(
        `sold twice: ${live.length - users.size} users with two orders; ${buyers} buyers in Redis for ${sold} sold`,
        users.size === live.length && buyers === sold,
      ),
      check(
        `audit: ${report.differences.length === 0 ? 'clean' : `${report.differences.length} differences (${report.differences.slice(0, 3).join('; ')})`} (Redis, the order stream and PostgreSQL)`,
        report.differences.length === 0,
      ),
      check(
        `users without a final answer or with a wrong one: ${record.failed.length}${record.failed.length ? ` (${record.failed.slice(0, 3).join('; ')})` : ''}`,
        record.failed.length === 0,
      ),
    ];
    return checks;
  } finally {
    redis.disconnect();
    await db.close();
  }
}

const failures: string[] = [];
function check(line: string, ok: boolean): string {
  if (!ok) failures.push(line);
  return `${ok ? 'ok  ' : 'FAIL'}  ${line}`;
}

async function main(): Promise<number> {
  const { users, total } = options();
  const dir = mkdtempSync(join(tmpdir(), 'spike-rehearsal-'));
  // PostgreSQL runs as its own user and must reach its folder inside.
  chmodSync(dir, 0o755);
  let topology: Topology | undefined;
  // Ctrl-C stops every process and removes the namespaces, as a finished run does.
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      say(`${signal}: stopping the topology`);
      void (topology?.close() ?? Promise.resolve()).finally(() => {
        rmSync(dir, { recursive: true, force: true });
        process.exit(130);
      });
    });
  try {
    say(`${users} users, ${total} tickets, in network namespaces; data in ${dir}`);
    topology = await startTopology(dir, total, say);
    const started = Date.now();
    // 64 at a time: Bun's fetch keeps about 64 connections to a host; more opened a new one per
    // request and ran out of ports in TIME_WAIT (28 000 of them after 120 000 users).
    const { record, done } = startCrowd(topology.url, users, 64);
    const progress = setInterval(
      () => say(`${record.users} users answered, ${record.acknowledged.size} sold, ${record.retried} asked again`),
      5000,
    );
    const seen = await faults(topology, record, total);
    await done;
    clearInterval(progress);
    const seconds = (Date.now() - started) / 1000;
    const lines = [
      `topology: nginx → ${NODES.length} nodes × ${WORKER_PORTS.length} workers; Redis master + 2 replicas + 3 sentinels (down after ${DOWN_AFTER_MS} ms); PostgreSQL; SPIKE_WAIT_REPLICAS=1`,
      `spike: ${record.users} users in ${seconds.toFixed(1)} s (${Math.round(record.users / seconds)} users/s), ${record.requests} requests, ${record.retried} asked again after a 503 or a dropped connection`,
      `failover: the master killed; sold again ${seen.failoverMs} ms later; master now ${seen.newMaster}`,
      `rolling restart: ${seen.restarts.join(', ')}; answers other than 200 meanwhile: ${seen.refusedDuringRestarts}`,
      ...(await audit(topology, record, total)),
    ];
    console.log(`\n${lines.join('\n')}`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    await topology?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exit(await main());
