/**
 * `bun run bench -- --compare <ref>`: this code against a git ref's, on the hot path only, in one
 * run. The ref is checked out in a temporary worktree; each side runs its own Redis (the same
 * binary and settings) and its own supervisor, both up for the whole run, and the phases
 * alternate between them (this, ref; then ref, this) so a machine that slows down mid-run
 * slows both. Each side's sales are made by its own code (its keys.ts and sale.ts), so a ref
 * with another layout is compared fairly.
 */
import Redis from 'ioredis';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisServer, type RedisServer } from '../../src/services/redis-server.ts';
import { freePort } from '../../src/services/free-port.ts';
import { snapshot, split, type CpuSplit } from './cpu.ts';
import { ab, wrk, type LoadResult } from './load.ts';

const ROOT = join(import.meta.dir, '..', '..');

/** The hot-path phases, in the order each round runs them. */
export const COMPARE_PHASES = ['purchase', 'soldout', 'ab-fresh', 'sales-100'] as const;
export type ComparePhase = (typeof COMPARE_PHASES)[number];

export interface CompareSize {
  readonly warmSeconds: number;
  readonly wrkSeconds: number;
  readonly abRequests: number;
  readonly rounds: number;
}

export const COMPARE_QUICK: CompareSize = { warmSeconds: 2, wrkSeconds: 2, abRequests: 2000, rounds: 2 };
export const COMPARE_FULL: CompareSize = { warmSeconds: 5, wrkSeconds: 6, abRequests: 10_000, rounds: 2 };

/** One phase's run on one side: its rate and CPU per request (µs). */
export interface SideRun {
  readonly rps: number;
  readonly requests: number;
  readonly cpu?: CpuSplit;
  /** The supervisor's busiest threads: name and µs a request. */
  readonly threads?: string;
}

export interface CompareRow {
  readonly phase: ComparePhase;
  readonly what: string;
  readonly self: SideRun[];
  readonly ref: SideRun[];
}

export interface CompareReport {
  readonly ref: string;
  readonly refCommit: string;
  readonly self: string;
  readonly rows: CompareRow[];
  readonly seconds: number;
}

const WHAT: Record<ComparePhase, string> = {
  purchase: 'wrk -c100, one worker, every request a purchase',
  soldout: 'wrk -c100, one worker, a finished sale',
  'ab-fresh': 'ab -c100, one worker, a fresh sale as large as the run',
  'sales-100': 'wrk -c100, one worker, buyers spread over 100 sales',
};

type SaleModule = { ensureSale: (redis: never, keys: unknown, total: number, reset: boolean) => Promise<unknown> };
type KeysModule = {
  DEFAULT_SALE: string;
  SOLD_FIELD: string;
  TOTAL_FIELD: string;
  SALES_KEY: string;
  saleKeys: (id: string) => { sale: string; orders: string };
};
type AuditModule = { unwrittenEvents: (redis: never, keys: unknown) => Promise<number> };

/** One side: its code's root, its Redis and supervisor, and its own modules for making sales. */
class Side {
  readonly name: string;
  readonly root: string;
  readonly #dir: string;
  #redisServer?: RedisServer;
  #redis?: Redis;
  #supervisor?: Bun.Subprocess;
  #ports: number[] = [];
  #sale?: SaleModule;
  #keys?: KeysModule;
  #audit?: AuditModule;
  #salesMade = false;
  #prefix = 0;

  constructor(name: string, root: string) {
    this.name = name;
    this.root = root;
    this.#dir = mkdtempSync(join(tmpdir(), `spike-compare-${name}-`));
  }

  get url(): string {
    return `http://127.0.0.1:${this.#ports[0]}`;
  }

  get redisPid(): number {
    return this.#redisServer!.process.pid;
  }

  get supervisorPid(): number {
    return this.#supervisor!.pid;
  }

  /** A user prefix never used before on this side: every request of a purchase phase is a new buyer. */
  prefix(): string {
    return `${this.name[0]}${++this.#prefix}-`;
  }

  async start(): Promise<void> {
    this.#sale = (await import(join(this.root, 'src/redis/sale.ts'))) as SaleModule;
    this.#keys = (await import(join(this.root, 'src/redis/keys.ts'))) as KeysModule;
    this.#audit = (await import(join(this.root, 'src/orders/audit.ts'))) as AuditModule;
    this.#redisServer = await startRedisServer({ dir: join(this.#dir, 'redis') });
    this.#redis = new Redis(this.#redisServer.url, { enableAutoPipelining: true });
    this.#ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    // Only settings every version since the original knows: a ref refuses SPIKE_ names it does not.
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      REDIS_URL: this.#redisServer.url,
      SPIKE_PORTS: this.#ports.join(','),
      SPIKE_TOTAL: '10000',
      SPIKE_NGINX: '0',
      SPIKE_ADMIN_PORT: String(await freePort()),
      SPIKE_DATA_DIR: join(this.#dir, 'data'),
      SPIKE_LOG_DIR: join(this.#dir, 'logs'),
    };
    this.#supervisor = Bun.spawn([process.execPath, join(this.root, 'src', 'cli', 'start.ts')], {
      cwd: this.root,
      env,
      stdout: 'pipe',
      stderr: 'pipe',
    });
    await untilLine(this.#supervisor, 'ready:', 60_000, this.name);
  }

  async #stock(sale?: string): Promise<{ total: number; sold: number; soldOut: boolean }[]> {
    return Promise.all(
      this.#ports.map(async (p) => (await fetch(`http://127.0.0.1:${p}/stock${sale ? `?sale=${sale}` : ''}`)).json() as never),
    );
  }

  async #waitFor(what: string, ok: (all: { total: number; sold: number; soldOut: boolean }[]) => boolean, sale?: string) {
    const deadline = Date.now() + 70_000;
    while (!ok(await this.#stock(sale).catch(() => []))) {
      if (Date.now() > deadline) throw new Error(`${this.name}: workers did not see ${what} within 70 s`);
      await Bun.sleep(20);
    }
  }

  /** Tells the node a sale changed behind its back (read at once; a ref without the channel reads it on its own). */
  async #announce(...sales: string[]): Promise<void> {
    await this.#redis!.publish('spike:changed', `bench ${sales.join(' ')}`);
  }

  /** A fresh default sale of `total` tickets, seen by every worker. */
  async newSale(total: number): Promise<void> {
    const k = this.#keys!;
    await this.#sale!.ensureSale(this.#redis as never, k.saleKeys(k.DEFAULT_SALE), total, true);
    await this.#announce(k.DEFAULT_SALE);
    await this.#waitFor(
      `a new sale of ${total}`,
      (all) => all.length > 0 && all.every((s) => s.total === total && s.sold === 0 && !s.soldOut),
    );
  }

  /** The default sale sold out for good: total = sold. */
  async finishSale(): Promise<void> {
    const k = this.#keys!;
    const sold = Number(await this.#redis!.hget(k.DEFAULT_SALE, k.SOLD_FIELD));
    await this.#redis!.hset(k.DEFAULT_SALE, k.TOTAL_FIELD, sold);
    await this.#announce(k.DEFAULT_SALE);
    await this.#waitFor('the sale sold out', (all) => all.length > 0 && all.every((s) => s.soldOut));
  }

  /** 100 sales bs0…bs99 of 50 M tickets each, once; later rounds buy with new users. */
  async manySales(): Promise<void> {
    if (this.#salesMade) return;
    const k = this.#keys!;
    const ids = Array.from({ length: 100 }, (_, i) => `bs${i}`);
    for (const id of ids) await this.#sale!.ensureSale(this.#redis as never, k.saleKeys(id), 50_000_000, true);
    await this.#redis!.sadd(k.SALES_KEY, ...ids);
    await this.#announce('*sales*');
    await this.#announce(...ids);
    for (const id of ids) await this.#waitFor(`sale ${id}`, (all) => all.length > 0 && all.every((s) => s.total === 50_000_000), id);
    this.#salesMade = true;
  }

  /** Waits until the order writer wrote every order and Redis rewrites no AOF: nothing of a phase runs into the next. */
  async settle(): Promise<void> {
    const k = this.#keys!;
    const deadline = Date.now() + 180_000;
    for (const id of [k.DEFAULT_SALE, ...(this.#salesMade ? Array.from({ length: 100 }, (_, i) => `bs${i}`) : [])])
      while ((await this.#audit!.unwrittenEvents(this.#redis as never, k.saleKeys(id))) > 0) {
        if (Date.now() > deadline) throw new Error(`${this.name}: the order writer did not catch up within 180 s`);
        await Bun.sleep(50);
      }
    while (/aof_rewrite_in_progress:1|aof_rewrite_scheduled:1/.test(await this.#redis!.info('persistence'))) {
      if (Date.now() > deadline) throw new Error(`${this.name}: Redis was still rewriting its AOF after 180 s`);
      await Bun.sleep(50);
    }
  }

  async warmUp(seconds: number): Promise<void> {
    const each = (prefix: string) =>
      Promise.all(
        this.#ports.map((p, i) => wrk(`http://127.0.0.1:${p}`, { connections: 25, seconds, userPrefix: `${prefix}${this.prefix()}${i}-` })),
      );
    await this.newSale(100_000_000);
    await each('wb');
    await this.finishSale();
    await each('ws');
    await this.settle();
  }

  async stop(): Promise<void> {
    this.#supervisor?.kill('SIGTERM');
    await this.#supervisor?.exited;
    this.#redis?.disconnect();
    await this.#redisServer?.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Resolves when the child prints `marker`; keeps reading its output after, so a full pipe never blocks it. */
async function untilLine(child: Bun.Subprocess, marker: string, ms: number, name: string): Promise<void> {
  let text = '';
  let seen = false;
  const decoder = new TextDecoder();
  const read = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      if (!seen) text += decoder.decode(chunk);
      if (!seen && text.includes(marker)) seen = true;
    }
  };
  void read(child.stdout as ReadableStream<Uint8Array>);
  void read(child.stderr as ReadableStream<Uint8Array>);
  const deadline = Date.now() + ms;
  while (!seen) {
    if (child.exitCode !== null) throw new Error(`${name}: the supervisor exited (${child.exitCode}) before "${marker}":\n${text}`);
    if (Date.now() > deadline) throw new Error(`${name}: no "${marker}" within ${ms} ms:\n${text}`);
    await Bun.sleep(25);
  }
}

/** Runs `load` and splits the machine's CPU over its requests (cpu.ts); ab's own CPU is not known, so it counts as "other". */
async function measured(side: Side, load: () => Promise<LoadResult>): Promise<SideRun> {
  const pids = { server: side.supervisorPid, redis: side.redisPid };
  const before = snapshot(pids);
  const result = await load();
  const after = snapshot(pids);
  const cpu = split(before, after, result.requests, result.clientCpuUs ?? 0, navigator.hardwareConcurrency);
  if (result.failures > 0) throw new Error(`${side.name}: ${result.failures} of ${result.requests} requests failed`);
  const threads = [...(after.processes.server?.threads ?? [])]
    .map(([tid, t]) => ({ name: t.name, us: (t.us - (before.processes.server?.threads.get(tid)?.us ?? 0)) / Math.max(1, result.requests) }))
    .filter((t) => t.us >= 0.5)
    .sort((a, b) => b.us - a.us)
    .slice(0, 5)
    .map((t) => `${t.name} ${t.us.toFixed(1)}`)
    .join(', ');
  return { rps: result.rps, requests: result.requests, cpu, threads };
}

async function runPhase(side: Side, phase: ComparePhase, size: CompareSize): Promise<SideRun> {
  const url = side.url;
  const load = { connections: 100, seconds: size.wrkSeconds };
  let run: SideRun;
  switch (phase) {
    case 'purchase':
      await side.newSale(50_000_000);
      run = await measured(side, () => wrk(url, { ...load, userPrefix: side.prefix() }));
      break;
    case 'soldout':
      await side.finishSale();
      run = await measured(side, () => wrk(url, { ...load, userPrefix: side.prefix() }));
      break;
    case 'ab-fresh':
      await side.newSale(size.abRequests);
      run = await measured(side, () => ab(`${url}/buy/ticket`, size.abRequests, 100));
      break;
    case 'sales-100':
      await side.manySales();
      run = await measured(side, () => wrk(url, { ...load, userPrefix: side.prefix(), sales: 100 }));
      break;
  }
  await side.settle();
  return run;
}

/** A worktree of `ref` with its locked dependencies; removed by the returned function. */
async function checkout(ref: string, say: (line: string) => void): Promise<{ root: string; commit: string; remove: () => void }> {
  const git = (args: string[], cwd = ROOT) => {
    const r = Bun.spawnSync(['git', ...args], { cwd, stdout: 'pipe', stderr: 'pipe' });
    if (r.exitCode !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr.toString().trim()}`);
    return r.stdout.toString().trim();
  };
  const commit = git(['rev-parse', '--verify', `${ref}^{commit}`]);
  const root = mkdtempSync(join(tmpdir(), 'spike-ref-'));
  git(['worktree', 'add', '--detach', '--force', root, commit]);
  const remove = () => {
    try {
      git(['worktree', 'remove', '--force', root]);
    } catch {
      rmSync(root, { recursive: true, force: true });
    }
  };
  say(`${ref} is ${commit.slice(0, 9)}, checked out in ${root}; installing its locked dependencies`);
  const install = Bun.spawnSync([process.execPath, 'install', '--frozen-lockfile'], { cwd: root, stdout: 'pipe', stderr: 'pipe' });
  if (install.exitCode !== 0 || !existsSync(join(root, 'node_modules'))) {
    remove();
    throw new Error(`bun install in the worktree of ${ref} failed:\n${install.stderr.toString()}`);
  }
  return { root, commit, remove };
}

/**
 * Compares this working tree with `ref`, interleaved, `size.rounds` rounds. `base..head` compares
 * two commits instead (head as "this"), both checked out: how a bisect names each step's cost.
 */
export async function compare(spec: string, size: CompareSize, say: (line: string) => void): Promise<CompareReport> {
  const started = performance.now();
  const [ref, headRef] = spec.includes('..') ? (spec.split('..') as [string, string]) : [spec, undefined];
  const tree = await checkout(ref, say);
  const headTree =
    headRef === undefined
      ? undefined
      : await checkout(headRef, say).catch((e) => {
          tree.remove();
          throw e;
        });
  const self = new Side('this', headTree?.root ?? ROOT);
  const other = new Side('ref', tree.root);
  const sides = [self, other];
  const rows: CompareRow[] = COMPARE_PHASES.map((phase) => ({ phase, what: WHAT[phase], self: [], ref: [] }));
  try {
    for (const side of sides) {
      await side.start();
      say(`${side.name}: supervisor ${side.supervisorPid} on ${side.url}; warming up`);
    }
    // Warm up both before either is measured: each worker thread compiles its own hot code.
    for (const side of sides) await side.warmUp(size.warmSeconds);
    for (let round = 0; round < size.rounds; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const row of rows)
        for (const side of order) {
          const run = await runPhase(side, row.phase, size);
          (side === self ? row.self : row.ref).push(run);
          say(
            `round ${round + 1} ${row.phase} ${side.name}: ${Math.round(run.rps)} req/s, server ${us(run.cpu?.server)} µs a request (${run.threads})`,
          );
        }
    }
  } finally {
    for (const side of sides) await side.stop().catch(() => {});
    tree.remove();
    headTree?.remove();
  }
  return {
    ref,
    refCommit: tree.commit,
    self: headTree ? `${headRef} (${headTree.commit.slice(0, 9)})` : describeTree(),
    rows,
    seconds: (performance.now() - started) / 1000,
  };
}

/** This working tree: its commit, and whether it holds uncommitted changes. */
function describeTree(): string {
  const head = Bun.spawnSync(['git', 'rev-parse', '--short=9', 'HEAD'], { cwd: ROOT }).stdout.toString().trim();
  const dirty = Bun.spawnSync(['git', 'status', '--porcelain', '--untracked-files=no'], { cwd: ROOT }).stdout.toString().trim();
  return `${head}${dirty ? ' + uncommitted changes' : ''}`;
}

const us = (n: number | undefined) => (n === undefined ? '?' : n.toFixed(1));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** The per-phase means of one side: req/s, and CPU µs per request of the supervisor, its busiest thread, and Redis. */
function means(runs: SideRun[]) {
  return {
    rps: mean(runs.map((r) => r.rps)),
    server: mean(runs.map((r) => r.cpu?.server ?? 0)),
    thread: mean(runs.map((r) => r.cpu?.serverThread ?? 0)),
    redis: mean(runs.map((r) => r.cpu?.redis ?? 0)),
  };
}

/** The report as a Markdown table: one row per phase, this/ref of the mean rate, then CPU per request of each. */
export function compareTable(report: CompareReport): string {
  const lines = [
    `this ${report.self} vs ref ${report.ref} (${report.refCommit.slice(0, 9)}), ${report.rows[0]?.self.length ?? 0} rounds interleaved, ${report.seconds.toFixed(0)} s`,
    '',
    '| phase | this req/s | ref req/s | this/ref | rounds this/ref | µs a request, this: supervisor / worker thread / Redis | ref |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const row of report.rows) {
    const a = means(row.self);
    const b = means(row.ref);
    const perRound = row.self.map((s, i) => `${(s.rps / (row.ref[i]?.rps ?? Number.NaN)).toFixed(2)}×`).join(' ');
    lines.push(
      `| ${row.phase} | ${Math.round(a.rps)} | ${Math.round(b.rps)} | ${(a.rps / b.rps).toFixed(2)}× | ${perRound} | ${us(a.server)} / ${us(a.thread)} / ${us(a.redis)} | ${us(b.server)} / ${us(b.thread)} / ${us(b.redis)} |`,
    );
  }
  lines.push('', ...report.rows.map((r) => `${r.phase}: ${r.what}`));
  return lines.join('\n');
}
