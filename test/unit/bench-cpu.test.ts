import { describe, expect, test } from 'bun:test';
import { snapshot, split, type CpuSnapshot, type CpuSplit } from '../../bench/lib/cpu.ts';
import type { LoadResult } from '../../bench/lib/load.ts';
import { targets, type Phase, type Report } from '../../bench/lib/report.ts';

const at = (busyUs: number, idleUs: number, server: Record<string, number>, redisUs: number): CpuSnapshot => ({
  busyUs,
  idleUs,
  processes: {
    server: {
      totalUs: Object.values(server).reduce((a, b) => a + b, 0),
      threads: new Map(Object.entries(server).map(([tid, us]) => [tid, { name: tid, us }])),
    },
    redis: { totalUs: redisUs, threads: new Map() },
  },
});

describe("the bench's CPU split", () => {
  test('divides each part by the requests and names the busiest server thread', () => {
    const before = at(1_000_000, 500_000, { main: 100_000, worker: 200_000, writer: 50_000 }, 10_000);
    const after = at(1_000_000 + 400_000, 500_000 + 100_000, { main: 110_000, worker: 350_000, writer: 60_000 }, 10_000 + 60_000);
    const cpu = split(before, after, 10_000, 150_000, 2);
    expect(cpu.client).toBe(15);
    expect(cpu.server).toBe(17);
    expect(cpu.serverThread).toBe(15);
    expect(cpu.redis).toBe(6);
    expect(cpu.busy).toBe(40);
    expect(cpu.other).toBe(2);
    expect(cpu.idle).toBe(10);
    // Two cores busy 40 µs per request: 50 000 requests a second at most.
    expect(cpu.ceilingRps).toBe(50_000);
  });

  test('a thread that started during the run counts from zero', () => {
    const before = at(0, 0, { main: 100 }, 0);
    const after = at(2_000, 0, { main: 100, worker: 1_500 }, 0);
    expect(split(before, after, 100, 0, 2).serverThread).toBe(15);
  });

  test('reads real CPU time of this process from /proc, growing as it works', () => {
    const before = snapshot({ server: process.pid, redis: process.pid });
    // 50 ms of CPU, not of wall time: a busy machine may deschedule this process for a while.
    const start = process.cpuUsage();
    let spin = 0;
    for (let used = process.cpuUsage(start); used.user + used.system < 50_000; used = process.cpuUsage(start)) spin++;
    const after = snapshot({ server: process.pid, redis: process.pid });
    expect(spin).toBeGreaterThan(0);
    expect(after.processes.server!.totalUs).toBeGreaterThan(before.processes.server!.totalUs);
    expect(after.busyUs).toBeGreaterThan(before.busyUs);
    expect(after.processes.server!.threads.size).toBeGreaterThan(0);
  });
});

describe("the report's CPU targets", () => {
  const cpu = (server: number, serverThread: number, redis: number) =>
    ({ client: 0, server, serverThread, redis, other: 0, busy: 0, idle: 0, ceilingRps: 0 }) satisfies CpuSplit;
  const phase = (id: string, split: CpuSplit) =>
    ({ id, name: id, result: { requests: 1 } as LoadResult, ratio: 1, check: '', cpu: split }) satisfies Phase;
  const report = (purchase: CpuSplit, soldout: CpuSplit): Report => ({
    quick: true,
    when: '',
    seconds: 0,
    machine: '',
    micro: [],
    phases: [
      phase('baseline-durable', cpu(40, 35, 20)),
      phase('wrk-purchase', purchase),
      phase('baseline-wrk', cpu(15, 15, 0)),
      phase('wrk-soldout', soldout),
    ],
    memory: { warmMiB: 0, afterSpikeMiB: 0 },
    idle: [],
    failed: undefined,
  });
  const cpuTargets = (r: Report) => targets(r).filter((t) => t.id.includes('-cpu-'));

  test('compare a purchase with the naive server of the same run, and a sold-out answer with the bare server', () => {
    const met = cpuTargets(report(cpu(36, 28, 12), cpu(17, 17, 0)));
    expect(met.map((t) => [t.id, t.met])).toEqual([
      ['wrk-purchase-cpu-server', true],
      ['wrk-purchase-cpu-serverThread', true],
      ['wrk-purchase-cpu-redis', true],
      ['wrk-soldout-cpu-serverThread', true],
    ]);
    expect(met[0]!.measured).toBe('0.90 × (36.0 / 40.0 µs)');
  });

  test('a part past its ratio is missed, each on its own', () => {
    const missed = cpuTargets(report(cpu(37, 29, 12.5), cpu(18.5, 18.5, 0))).filter((t) => !t.met);
    expect(missed.map((t) => t.id)).toEqual([
      'wrk-purchase-cpu-server',
      'wrk-purchase-cpu-serverThread',
      'wrk-purchase-cpu-redis',
      'wrk-soldout-cpu-serverThread',
    ]);
  });
});
