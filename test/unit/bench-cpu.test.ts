import { describe, expect, test } from 'bun:test';
import { snapshot, split, type CpuSnapshot } from '../../bench/lib/cpu.ts';

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
