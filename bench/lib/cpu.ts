/**
 * Where a phase's CPU time went, read from /proc around the load run: the load tool, the server
 * under test (and its busiest thread), Redis, everything else, and what stayed idle.
 *
 * Why: on two cores the load tool, the server and Redis share the same cores, so a ratio to the
 * baseline alone cannot say whether the service is slow or the machine is full. CPU time per
 * request can: two cores divided by the busy time per request is the most this work could
 * reach with no idle time at all (the "ceiling").
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Linux reports CPU time in clock ticks of 1/USER_HZ s; USER_HZ is 100 on every mainstream build. */
const TICK_US = 1e6 / (Number(Bun.spawnSync(['getconf', 'CLK_TCK']).stdout.toString().trim()) || 100);

interface ProcessCpu {
  readonly totalUs: number;
  /** Per thread id: its name and CPU time. */
  readonly threads: Map<string, { name: string; us: number }>;
}

export interface CpuSnapshot {
  readonly busyUs: number;
  readonly idleUs: number;
  readonly processes: Record<string, ProcessCpu>;
}

/** utime + stime of one /proc stat line; the command name may hold spaces, so fields count from its ")". */
function statLine(text: string): { name: string; us: number } {
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  return { name: text.slice(text.indexOf('(') + 1, close), us: (Number(fields[11]) + Number(fields[12])) * TICK_US };
}

function processCpu(pid: number): ProcessCpu {
  const threads = new Map<string, { name: string; us: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      threads.set(tid, statLine(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  // The process line also counts threads that already ended.
  return { totalUs: statLine(readFileSync(`/proc/${pid}/stat`, 'utf8')).us, threads };
}

/** The whole machine (first line of /proc/stat) and each named process, now. */
export function snapshot(pids: Record<string, number>): CpuSnapshot {
  // steal (time the hypervisor gave to another machine) is neither our work nor idle: left out.
  const [user, nice, system, idle, iowait, irq, softirq] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number) as number[];
  const processes: Record<string, ProcessCpu> = {};
  for (const [name, pid] of Object.entries(pids)) processes[name] = processCpu(pid);
  return {
    busyUs: (user! + nice! + system! + irq! + softirq!) * TICK_US,
    idleUs: (idle! + iowait!) * TICK_US,
    processes,
  };
}

/** CPU time per request, in µs, summed over all cores. */
export interface CpuSplit {
  readonly client: number;
  readonly server: number;
  /** The server's busiest thread: the worker thread that served the phase. */
  readonly serverThread: number;
  readonly redis: number;
  /** Busy time of anything else: the bench itself, nginx, the kernel's work outside these processes. */
  readonly other: number;
  readonly busy: number;
  readonly idle: number;
  /** req/s if every core were busy with this same work per request. */
  readonly ceilingRps: number;
}

/**
 * Splits the machine's CPU time between two snapshots over `requests` answers. `clientUs` is the
 * load tool's own CPU time (from its resource usage: it has exited by then).
 */
export function split(before: CpuSnapshot, after: CpuSnapshot, requests: number, clientUs: number, cores: number): CpuSplit {
  const per = (us: number) => us / Math.max(1, requests);
  const processUs = (name: string) => (after.processes[name]?.totalUs ?? 0) - (before.processes[name]?.totalUs ?? 0);
  let serverThreadUs = 0;
  for (const [tid, thread] of after.processes.server?.threads ?? []) {
    serverThreadUs = Math.max(serverThreadUs, thread.us - (before.processes.server?.threads.get(tid)?.us ?? 0));
  }
  const busy = per(after.busyUs - before.busyUs);
  const client = per(clientUs);
  const server = per(processUs('server'));
  const redis = per(processUs('redis'));
  return {
    client,
    server,
    serverThread: per(serverThreadUs),
    redis,
    other: Math.max(0, busy - client - server - redis),
    busy,
    idle: per(after.idleUs - before.idleUs),
    ceilingRps: busy > 0 ? (cores * 1e6) / busy : 0,
  };
}
