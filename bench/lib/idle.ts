/**
 * What sales cost while nobody buys: Redis commands a second, the supervisor's CPU (all its
 * threads) and Redis' own, and the supervisor's memory. A platform keeps hundreds of sales on
 * sale at once, most of them idle; 1 000 idle sales cost 13 400 Redis commands a second and 64 %
 * of a core when the sync read every sale every round.
 */
import { readFileSync } from 'node:fs';
import type { System } from './system.ts';

export interface IdleCost {
  readonly sales: number;
  readonly seconds: number;
  readonly commandsPerSec: number;
  /** Of one core: the supervisor process (workers, sync, writer, every thread). */
  readonly cpuPct: number;
  readonly redisCpuPct: number;
  readonly rssMiB: number;
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

/** Measures `seconds` of nothing happening, with `sales` sales on sale. */
export async function measureIdle(system: System, sales: number, seconds: number): Promise<IdleCost> {
  // Let the last phase's work end first (the writer catching up, an AOF rewrite).
  await system.writerCaughtUp();
  await system.aofQuiet();
  await Bun.sleep(1000);
  await system.resetCommands();
  const [cpu0, redis0, t0] = [cpuSeconds(system.supervisorPid), await redisCpu(system), performance.now()];
  await Bun.sleep(seconds * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  const { calls } = await system.commands();
  return {
    sales,
    seconds: elapsed,
    commandsPerSec: calls / elapsed,
    cpuPct: ((cpuSeconds(system.supervisorPid) - cpu0) / elapsed) * 100,
    redisCpuPct: (((await redisCpu(system)) - redis0) / elapsed) * 100,
    rssMiB: system.rssMiB(),
  };
}
