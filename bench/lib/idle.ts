/**
 * What sales cost while nobody buys: Redis commands a second, the supervisor's CPU (all its
 * threads) and Redis' own, and the supervisor's memory. A platform keeps hundreds of sales on
 * sale at once, most of them idle; 1 000 idle sales cost 13 400 Redis commands a second and 64 %
 * of a core when the sync read every sale every round.
 */
import { readFileSync } from 'node:fs';
import { snapshot, type CpuSnapshot } from './cpu.ts';
import type { System } from './system.ts';

export interface IdleCost {
  readonly sales: number;
  readonly seconds: number;
  readonly commandsPerSec: number;
  /** Of one core: the supervisor process (workers, sync, writer, every thread). */
  readonly cpuPct: number;
  readonly redisCpuPct: number;
  readonly rssMiB: number;
  /** Seconds waited for the supervisor's CPU to stop falling before the measurement. */
  readonly settledAfter: number;
  /** Where the time went: the supervisor's busiest threads (% of a core), Redis' commands a second. */
  readonly threads: string;
  readonly commands: string;
}

/** The supervisor's threads that used the most CPU between two snapshots, as `name 1.2 %`, summed by name. */
function busiestThreads(before: CpuSnapshot, after: CpuSnapshot, seconds: number): string {
  const byName = new Map<string, number>();
  for (const [tid, thread] of after.processes.server?.threads ?? []) {
    const used = thread.us - (before.processes.server?.threads.get(tid)?.us ?? 0);
    byName.set(thread.name, (byName.get(thread.name) ?? 0) + used);
  }
  return [...byName]
    .filter(([, us]) => us > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([name, us]) => `${name} ${((us / 1e6 / seconds) * 100).toFixed(1)} %`)
    .join(', ');
}

/** CPU seconds the process used so far (user + system, every thread). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function redisCpu(system: System): Promise<number> {
  const info = await system.redis.info('cpu');
  return Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
}

/**
 * Waits, up to `maxSeconds`, until the supervisor's CPU stops falling: after a load phase it
 * returns memory (the allocator's scavenger), finishes compiling and collects for tens of seconds
 * (measured after 24 s of purchases with 1 000 idle sales, 10 s windows: 6.3, 4.2, 3.0, 2.7, 2.6 %).
 * Idle is what the sales cost once they sit there. Returns the seconds waited.
 */
async function settle(pid: number, maxSeconds: number): Promise<number> {
  const started = performance.now();
  const windowMs = 5000;
  let previous = Infinity;
  while ((performance.now() - started) / 1000 < maxSeconds) {
    const before = cpuSeconds(pid);
    await Bun.sleep(windowMs);
    const used = cpuSeconds(pid) - before;
    // A window at most 10 % (or 0.1 % of a core) below the one before: settled.
    if (used >= previous * 0.9 || previous - used <= windowMs / 1000 / 1000) break;
    previous = used;
  }
  return (performance.now() - started) / 1000;
}

/** Measures `seconds` of nothing happening, with `sales` sales on sale, once the node settled. */
export async function measureIdle(system: System, sales: number, seconds: number): Promise<IdleCost> {
  // Let the last phase's work end first (the writer catching up, an AOF rewrite).
  await system.writerCaughtUp();
  await system.aofQuiet();
  const settledAfter = await settle(system.supervisorPid, seconds * 6);
  await system.resetCommands();
  const threads0 = snapshot({ server: system.supervisorPid });
  const [cpu0, redis0, t0] = [cpuSeconds(system.supervisorPid), await redisCpu(system), performance.now()];
  await Bun.sleep(seconds * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  const { calls } = await system.commands();
  const stats = await system.redis.info('commandstats');
  const top = [...stats.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)]
    .map((m) => [m[1]!, Number(m[2]) / elapsed] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6);
  return {
    threads: busiestThreads(threads0, snapshot({ server: system.supervisorPid }), elapsed),
    commands: top.map(([name, n]) => `${name} ${n.toFixed(0)}/s`).join(', '),
    sales,
    seconds: elapsed,
    commandsPerSec: calls / elapsed,
    cpuPct: ((cpuSeconds(system.supervisorPid) - cpu0) / elapsed) * 100,
    redisCpuPct: (((await redisCpu(system)) - redis0) / elapsed) * 100,
    rssMiB: system.rssMiB(),
    settledAfter,
  };
}
