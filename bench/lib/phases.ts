/**
 * The bench's phases, in groups. Each records its result under a stable id with the id of its
 * baseline (the same work without spike's logic, measured in the same run), and checks the
 * sale's invariants against Redis; a failed check throws and fails the bench.
 */
import { DEFAULT_SALE, PAID_FIELD, SOLD_FIELD } from '../../src/redis/keys.ts';
import { checkSale, readSale } from './check.ts';
import { snapshot, split, type CpuSplit } from './cpu.ts';
import { durability, waitCost } from './durability.ts';
import { openStreams } from './dashboards.ts';
import { measureIdle, type IdleCost } from './idle.ts';
import { ab, crowd, wrk, type LoadResult } from './load.ts';
import type { Phase } from './report.ts';
import type { System } from './system.ts';

export interface Size {
  readonly warmSeconds: number;
  readonly abRequests: number;
  readonly abTickets: number;
  readonly wrkSeconds: number;
  readonly spikeUsers: number;
  readonly spikeTickets: number;
  readonly nginxAbRequests: number;
  /** The larger spike of "more users" (4 × spikeUsers). */
  readonly moreUsers: number;
  readonly crowdUsers: number;
  readonly connections: readonly number[];
  readonly sales: readonly number[];
  /** How long each idle measurement lasts (lib/idle.ts). */
  readonly idleSeconds: number;
}

export interface Bench {
  readonly system: System;
  readonly size: Size;
  readonly say: (line: string) => void;
  readonly memory: { warmMiB: number; afterSpikeMiB: number };
  readonly idle: IdleCost[];
  phase(id: string): Phase | undefined;
  record(phase: Omit<Phase, 'ratio'>): Phase;
}

/**
 * Runs `run`, printing every second the requests answered so far, their rate and the tickets
 * sold: from the workers' counters, the bare servers' counters, or (spread over many sales, a
 * purchase path where every request is a sale) the sales' sold counts.
 */
export async function withProgress<T>(
  b: Bench,
  label: string,
  source: 'workers' | 'baseline' | 'durable' | string[],
  run: () => Promise<T>,
): Promise<T> {
  const read = async () => {
    if (typeof source === 'string')
      return { done: await b.system.answered(source), sold: source === 'workers' ? (await readSale(b.system.redis)).sold : undefined };
    const sold = (await Promise.all(source.map((id) => b.system.redis.hget(id, SOLD_FIELD)))).reduce((sum, n) => sum + Number(n), 0);
    return { done: sold, sold };
  };
  const started = performance.now();
  const first = (await read()).done;
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const now = await read();
      const done = now.done - first;
      const seconds = (performance.now() - started) / 1000;
      const sold = now.sold === undefined ? '' : `, sold ${now.sold}`;
      b.say(`  ${label}: ${seconds.toFixed(0)} s, ${done} requests answered (${Math.round(done / seconds)}/s)${sold}`);
    } catch {}
    busy = false;
  }, 1000);
  try {
    return await run();
  } finally {
    clearInterval(timer);
  }
}

/** Runs one wrk phase and splits the machine's CPU time over its requests: wrk, `serverPid`, Redis, the rest. */
async function withCpu(system: System, serverPid: number, run: () => Promise<LoadResult>): Promise<{ result: LoadResult; cpu?: CpuSplit }> {
  const pids = { server: serverPid, redis: system.redisPid };
  const before = snapshot(pids);
  const result = await run();
  const after = snapshot(pids);
  if (result.clientCpuUs === undefined) return { result };
  return { result, cpu: split(before, after, result.requests, result.clientCpuUs, navigator.hardwareConcurrency) };
}

/** Bare Bun.serve, alone (ab and wrk) and behind nginx with the same rendered config (ab and wrk). */
export async function baselines(b: Bench): Promise<void> {
  const { system, size } = b;
  b.say('baselines: bare Bun.serve, and nginx in front of four of them');
  b.record({
    id: 'baseline-ab',
    name: 'baseline: bare Bun.serve',
    result: await ab(`${system.baselineUrl}/buy/ticket`, size.abRequests, 100),
    check: 'ceiling',
  });
  const { result, cpu } = await withProgress(b, 'baseline', 'baseline', () =>
    withCpu(system, system.baselinePid, () => wrk(system.baselineUrl, { connections: 100, seconds: size.wrkSeconds, anonymous: true })),
  );
  b.record({ id: 'baseline-wrk', name: 'baseline: bare Bun.serve', result, check: 'ceiling', cpu });
  const viaNginx = `${system.nginxBaselineUrl}/buy/ticket`;
  b.record({
    id: 'baseline-nginx-ab',
    name: 'baseline: nginx → 4 bare Bun.serve',
    result: await ab(viaNginx, size.nginxAbRequests, 100),
    check: 'ceiling',
  });
  const nginxWrk = await withProgress(b, 'baseline through nginx', 'baseline', () =>
    wrk(system.nginxBaselineUrl, { connections: 100, seconds: size.wrkSeconds, anonymous: true }),
  );
  b.record({ id: 'baseline-nginx-wrk', name: 'baseline: nginx → 4 bare Bun.serve', result: nginxWrk, check: 'ceiling' });
}

/** The original's two ab runs: one worker on a fresh sale, and through nginx (the 1:2:3:4 split). */
export async function originalRuns(b: Bench): Promise<void> {
  const { system, size } = b;
  b.say(`original run 1: ab -n ${size.abRequests} -c 100 on one worker, fresh ${size.abTickets}-ticket sale`);
  await system.newSale(size.abTickets);
  const one = await ab(`${system.workerUrls[0]}/buy/ticket`, size.abRequests, 100);
  const oneCheck = checkSale(await readSale(system.redis), { min: one.requests - one.failures, max: one.requests }, false);
  b.record({ id: 'ab-one-worker', name: 'ab, one worker, fresh sale', result: one, baseline: 'baseline-ab', check: oneCheck });

  b.say(`original run 2: ab -n ${size.nginxAbRequests} -c 100 through nginx`);
  await system.newSale(100_000);
  const before = await system.stock();
  const viaNginx = await ab(`${system.nginxUrl}/buy/ticket`, size.nginxAbRequests, 100);
  const after = await system.stock();
  const shares = after.map((s, i) => s.local.sales - before[i]!.local.sales);
  const check = checkSale(await readSale(system.redis), { min: viaNginx.requests, max: viaNginx.requests }, false);
  b.record({
    id: 'ab-nginx',
    name: 'ab through nginx',
    result: viaNginx,
    baseline: 'baseline-nginx-ab',
    check: `${check}; split ${shares.join('/')}`,
  });
  if (!shares.every((n, i) => Math.abs(n / viaNginx.requests - (i + 1) / 10) <= 0.01))
    throw new Error(`correctness check failed: nginx split ${shares.join('/')} is not 1:2:3:4`);
}

/**
 * The anchor of the purchase path: Bun + ioredis, one auto-pipelined Lua call per request doing
 * the same checks, count and XADD on the same Redis (appendfsync always), one process like one worker.
 */
async function durableBaseline(b: Bench): Promise<Phase> {
  const { system, size } = b;
  b.say('wrk: the durable baseline (Bun + ioredis, one Lua call per request; no local stock, no batching)');
  await system.aofQuiet();
  const durable = await withProgress(b, 'durable baseline', 'durable', () =>
    withCpu(system, system.durablePid, () => wrk(system.durableUrl, { connections: 100, seconds: size.wrkSeconds, userPrefix: 'd' })),
  );
  const sold = Number(await system.redis.hget('bench:durable', 'sold'));
  return b.record({
    id: 'baseline-durable',
    name: 'baseline: naive durable purchase (Bun + ioredis)',
    ...durable,
    baseline: 'baseline-wrk',
    check: `sold ${sold} of ${durable.result.requests} asked, one order each`,
  });
}

/** One worker under wrk: the purchase path, the sold-out path, and the sold-out path through nginx. */
export async function oneWorker(b: Bench): Promise<void> {
  const { system, size } = b;
  await durableBaseline(b);
  b.say('wrk: purchase path (more tickets than requests: every request goes to Redis)');
  await system.newSale(50_000_000);
  const buy = await withProgress(b, 'purchase path', 'workers', () =>
    withCpu(system, system.supervisorPid, () =>
      wrk(system.workerUrls[0]!, { connections: 100, seconds: size.wrkSeconds, userPrefix: 'p' }),
    ),
  );
  const buyCheck = checkSale(
    await readSale(system.redis),
    { min: buy.result.requests - buy.result.failures, max: buy.result.requests + 100 },
    true,
  );
  // The writer yields to buyers (nice 10), so it ends behind; the next phase starts once it caught up.
  const catchUp = await system.writerCaughtUp();
  const bare = b.phase('baseline-wrk')?.result.rps;
  const vsBare = bare ? `; ${(buy.result.rps / bare).toFixed(2)}× bare Bun.serve` : '';
  b.record({
    id: 'wrk-purchase',
    name: 'wrk purchase path, one worker',
    ...buy,
    baseline: 'baseline-durable',
    check: `${buyCheck}; order writer caught up ${catchUp.toFixed(1)} s after${vsBare}`,
  });

  b.say('wrk: sold-out path (finished sale: every request answered from shared memory)');
  await system.finishSale();
  const soldBefore = (await readSale(system.redis)).sold;
  const soldOut = await withProgress(b, 'sold-out path', 'workers', () =>
    withCpu(system, system.supervisorPid, () =>
      wrk(system.workerUrls[0]!, { connections: 100, seconds: size.wrkSeconds, userPrefix: 's' }),
    ),
  );
  const viaNginx = await withProgress(b, 'sold-out path through nginx', 'workers', () =>
    wrk(system.nginxUrl, { connections: 100, seconds: size.wrkSeconds, userPrefix: 'sn' }),
  );
  const soldAfter = (await readSale(system.redis)).sold;
  if (soldAfter !== soldBefore) throw new Error(`correctness check failed: a finished sale sold ${soldAfter - soldBefore} more`);
  b.record({
    id: 'wrk-soldout',
    name: 'wrk sold-out path, one worker',
    ...soldOut,
    baseline: 'baseline-wrk',
    check: `sold stays ${soldAfter}`,
  });
  b.record({
    id: 'wrk-soldout-nginx',
    name: 'wrk sold-out path through nginx',
    result: viaNginx,
    baseline: 'baseline-nginx-wrk',
    check: `sold stays ${soldAfter}`,
  });
  b.memory.warmMiB = system.rssMiB();
  b.say(`supervisor RSS after warm-up: ${b.memory.warmMiB.toFixed(1)} MiB`);
}

/** Four wrk processes, one per worker port, a quarter of the users each, at once. */
async function spikeDirect(system: System, users: number, prefix: string): Promise<LoadResult> {
  const started = performance.now();
  const each = Math.ceil(users / system.workerUrls.length);
  const runs = await Promise.all(
    system.workerUrls.map((url, i) => wrk(url, { connections: 25, seconds: 600, requests: each, userPrefix: `${prefix}${i}-` })),
  );
  const seconds = (performance.now() - started) / 1000;
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  return {
    tool: 'wrk',
    requests,
    seconds,
    rps: requests / seconds,
    // wrk reports percentiles per process; the median of their p50s and the worst p99.
    p50Ms: runs.map((r) => r.p50Ms).sort((a, c) => a - c)[Math.floor(runs.length / 2)]!,
    p99Ms: Math.max(...runs.map((r) => r.p99Ms)),
    failures: runs.reduce((n, r) => n + r.failures, 0),
  };
}

/** A spike of `users` distinct users direct to the four workers, with Redis' commands per sold ticket. */
async function directSpike(b: Bench, id: string, users: number, prefix: string): Promise<void> {
  const { system, size } = b;
  b.say(`the spike, direct: ${users} distinct users for ${size.spikeTickets} tickets over the four workers`);
  await system.newSale(size.spikeTickets);
  await system.resetCommands();
  const result = await withProgress(b, 'spike', 'workers', () => spikeDirect(system, users, prefix));
  const redis = await system.commands();
  const sale = await readSale(system.redis);
  const check = checkSale(sale, { min: result.requests - result.failures, max: result.requests + 100 }, true);
  const extra = { rssMiB: system.rssMiB(), commandsPerTicket: redis.calls / sale.sold, scriptCallsPerTicket: redis.scripts / sale.sold };
  const redisNote = `; Redis: ${extra.commandsPerTicket.toFixed(2)} commands and ${extra.scriptCallsPerTicket.toFixed(2)} script calls per sold ticket`;
  b.record({ id, name: `spike direct to 4 workers, ${users} users`, result, baseline: 'baseline-wrk', check: check + redisNote, extra });
}

/** The 1 M-user spike direct and through nginx, and the same spike with four times the users. */
export async function spikes(b: Bench): Promise<void> {
  const { system, size } = b;
  await directSpike(b, 'spike-direct', size.spikeUsers, 'd');
  b.say(`the spike, through nginx: ${size.spikeUsers} distinct users for ${size.spikeTickets} tickets`);
  await system.newSale(size.spikeTickets);
  const viaNginx = await withProgress(b, 'spike through nginx', 'workers', () =>
    wrk(system.nginxUrl, { connections: 100, seconds: 600, requests: size.spikeUsers, userPrefix: 'n' }),
  );
  const check = checkSale(await readSale(system.redis), { min: viaNginx.requests - viaNginx.failures, max: viaNginx.requests + 100 }, true);
  b.record({ id: 'spike-nginx', name: 'spike through nginx', result: viaNginx, baseline: 'baseline-nginx-wrk', check });
  await Bun.sleep(500);
  b.memory.afterSpikeMiB = system.rssMiB();
  b.say(`supervisor RSS after the spikes: ${b.memory.afterSpikeMiB.toFixed(1)} MiB`);
  await directSpike(b, 'users-4x', size.moreUsers, 'm');
}

/** The spike through the waiting room, and the plain spike with the same client, in the same run. */
export async function waitingRoom(b: Bench): Promise<void> {
  const { system, size } = b;
  const load = { users: size.crowdUsers, connections: 100, sale: DEFAULT_SALE };
  b.say(`the plain spike again, with the waiting room's client: ${size.crowdUsers} users, one request each`);
  await system.newSale(size.spikeTickets);
  const plain = await crowd('plain', system.workerUrls, { ...load, prefix: 'cp' }, b.say);
  const plainCheck = checkSale(await readSale(system.redis), { min: plain.requests, max: plain.requests }, true);
  b.record({
    id: 'spike-plain-crowd',
    name: 'spike direct, crowd client (one request a user)',
    result: plain,
    check: `${plainCheck}; every user's fate known in ${plain.seconds.toFixed(1)} s`,
  });

  b.say(`the spike through the waiting room: ${size.crowdUsers} users join, poll as told, buy when admitted, pay`);
  await system.newSale(size.spikeTickets);
  await system.queueSale(5000);
  await system.resetCommands();
  const queued = await crowd('queue', system.workerUrls, { ...load, prefix: 'cq' }, b.say);
  await Bun.sleep(500);
  const redis = await system.commands();
  const sale = await readSale(system.redis);
  const paid = Number(await system.redis.hget(DEFAULT_SALE, PAID_FIELD));
  const c = queued.crowd;
  // The stream holds a `created` and a `paid` event per order: every buyer paid.
  if (sale.sold !== sale.total || sale.buyers !== sale.sold || paid !== sale.sold || sale.orders !== 2 * sale.sold)
    throw new Error(
      `correctness check failed: sold ${sale.sold}/${sale.total}, buyers ${sale.buyers}, paid ${paid}, stream ${sale.orders}`,
    );
  if (c.bought !== sale.sold || c.bought + c.soldOut !== c.users)
    throw new Error(`correctness check failed: ${c.bought} bought + ${c.soldOut} told sold out of ${c.users} users, sold ${sale.sold}`);
  const check = `sold ${sale.sold}/${sale.total}, paid ${paid}, buyers ${sale.buyers}; ${c.bought} bought, ${c.soldOut} told sold out`;
  const extra = {
    commandsPerUser: redis.calls / c.users,
    requestsPerUser: c.requests / c.users,
    joinP99Ms: c.joinP99Ms,
    statusP99Ms: c.statusP99Ms,
  };
  b.record({
    id: 'spike-queue',
    name: 'spike through the waiting room (join, poll, buy, pay)',
    result: queued,
    baseline: 'spike-plain-crowd',
    check: `${check}; every user's fate known in ${c.seconds.toFixed(1)} s; ${extra.requestsPerUser.toFixed(2)} requests and ${extra.commandsPerUser.toFixed(2)} Redis commands a user; p99 join ${c.joinP99Ms} ms, status ${c.statusP99Ms} ms`,
    extra,
  });
}

/** How cost grows with open sales and with connections at once. */
export async function scaling(b: Bench): Promise<void> {
  const { system, size } = b;
  b.say(`idle: ${size.idleSeconds} s with the default sale only, nobody buying`);
  const one = await measureIdle(system, 1, size.idleSeconds);
  b.idle.push(one);
  b.say(`idle, 1 sale: supervisor ${one.cpuPct.toFixed(1)} % of a core; threads: ${one.threads}; Redis: ${one.commands}`);
  let before = system.rssMiB();
  let made = 0;
  for (const count of size.sales) {
    await system.addSales(count, 50_000_000);
    const rss = system.rssMiB();
    const perSaleKiB = count > made ? ((rss - before) * 1024) / (count - made) : 0;
    [before, made] = [rss, count];
    b.say(`purchase path with buyers spread over ${count} open sales (RSS ${rss.toFixed(1)} MiB)`);
    const ids = Array.from({ length: count }, (_, i) => `bs${i}`);
    await system.resetCommands();
    // CPU per purchase too: on this machine one phase's rate moves by a third between runs, and
    // the busy time per purchase (the ceiling) says what spreading over sales costs more steadily.
    const { result, cpu } = await withProgress(b, `${count} sales`, ids, () =>
      withCpu(system, system.supervisorPid, () =>
        wrk(system.workerUrls[0]!, { connections: 100, seconds: size.wrkSeconds, userPrefix: `ms${count}-`, sales: count }),
      ),
    );
    // What spreading buyers over sales costs Redis: the script's per-sale reads and writes, the sync's reads.
    const { calls, scripts } = await system.commands();
    const perPurchase = calls / Math.max(1, result.requests);
    b.record({
      id: `sales-${count}`,
      name: `purchase path, ${count} sales open`,
      result,
      baseline: 'sales-1',
      check: `RSS ${rss.toFixed(1)} MiB, ${perSaleKiB.toFixed(0)} KiB per added sale; Redis ${perPurchase.toFixed(2)} commands and ${(scripts / Math.max(1, result.requests)).toFixed(3)} script calls a purchase; busy ${cpu?.busy.toFixed(0) ?? '?'} µs a purchase`,
      extra: { rssMiB: rss, perSaleKiB, commandsPerPurchase: perPurchase },
      cpu,
    });
  }
  await system.finishSale();
  for (const connections of size.connections) await manyConnections(b, connections);
}

/**
 * The sold-out path with `connections` at once (wrk -t2), on one worker and through nginx, each
 * after the same load on its bare counterpart (the tail a bare Bun.serve has on this machine).
 */
async function manyConnections(b: Bench, connections: number): Promise<void> {
  const { system, size } = b;
  const load = { connections, seconds: size.wrkSeconds, threads: 2, anonymous: true };
  for (const [where, url, bare, suffix] of [
    ['one worker', system.workerUrls[0]!, system.baselineUrl, ''],
    ['through nginx', system.nginxUrl, system.nginxBaselineUrl, '-nginx'],
  ] as const) {
    b.say(
      `${connections} connections at once, ${where} (wrk -t2): the bare ${suffix ? 'nginx → Bun.serve' : 'Bun.serve'}, then the sold-out path`,
    );
    const base = await withProgress(b, `${connections} connections, bare`, 'baseline', () => wrk(bare, load));
    const baseId = `baseline-conn-${connections}${suffix}`;
    const bareName = suffix ? 'nginx → bare Bun.serve' : 'bare Bun.serve';
    b.record({
      id: baseId,
      name: `baseline: ${bareName}, ${connections} connections`,
      result: base,
      check: `${base.failures} errors`,
      extra: { connections },
    });
    const result = await withProgress(b, `${connections} connections`, 'workers', () => wrk(url, load));
    b.record({
      id: `conn-${connections}${suffix}`,
      name: `sold-out path, ${connections} connections, ${where}`,
      result,
      baseline: baseId,
      check: `${result.failures} errors; p99 ${(result.p99Ms / base.p99Ms).toFixed(2)} × the bare one's`,
      extra: { connections, bareP99Ms: base.p99Ms },
    });
  }
}

/** 1 000 sales on sale and nobody buying: what they cost Redis, the supervisor's CPU and memory. */
export async function idleSales(b: Bench): Promise<void> {
  const { system, size } = b;
  b.say('idle: 1000 sales on sale, nobody buying');
  await system.addSales(1000, 1000);
  // Idle is what the sales cost once they sit there: first the node reads each new one, makes its
  // buffers and tells its workers, and the JIT and the collector settle after that burst
  // (measureIdle waits until the node's CPU stops falling).
  const cost = await measureIdle(system, 1000, size.idleSeconds);
  b.idle.push(cost);
  b.say(
    `idle, 1000 sales (settled after ${cost.settledAfter.toFixed(0)} s): ${cost.commandsPerSec.toFixed(0)} Redis commands/s, supervisor ${cost.cpuPct.toFixed(1)} % of a core, Redis ${cost.redisCpuPct.toFixed(1)} %, RSS ${cost.rssMiB.toFixed(1)} MiB; threads: ${cost.threads}; Redis: ${cost.commands}`,
  );
}

/** The durability trade-off (SIGKILL mid-sale under each appendfsync) and the price of WAIT. */
export async function durabilityPhases(b: Bench): Promise<void> {
  for (const mode of ['everysec', 'always'] as const) {
    const result = await durability(mode, b.size.wrkSeconds, b.say);
    b.record({
      id: `appendfsync-${mode}`,
      name: `purchase path, appendfsync ${mode}`,
      result: result.purchase,
      baseline: 'baseline-durable',
      check: `SIGKILL mid-sale: ${result.lost} of ${result.acknowledged} acknowledged sales lost`,
    });
    if (mode === 'always' && result.lost > 0)
      throw new Error(`correctness check failed: appendfsync always lost ${result.lost} acknowledged sales`);
  }
  b.say('purchase path with a replica confirming every sale (SPIKE_WAIT_REPLICAS=1)');
  b.record({
    id: 'wait-replica',
    name: 'purchase path, WAIT for 1 replica',
    result: await waitCost(b.size.wrkSeconds),
    baseline: 'baseline-durable',
    check: 'a sale is answered only once a replica holds it',
  });
}

/** The purchase path on one worker for wrkSeconds: its result, and Redis' commands meanwhile (a second, and a request). */
async function purchaseWithCommands(
  b: Bench,
  label: string,
  prefix: string,
): Promise<{ result: LoadResult; perSecond: number; perRequest: number }> {
  const { system, size } = b;
  await system.newSale(50_000_000);
  await system.writerCaughtUp();
  await system.resetCommands();
  const started = performance.now();
  const result = await withProgress(b, label, 'workers', () =>
    wrk(system.workerUrls[0]!, { connections: 100, seconds: size.wrkSeconds, userPrefix: prefix }),
  );
  const { calls } = await system.commands();
  return { result, perSecond: calls / ((performance.now() - started) / 1000), perRequest: calls / Math.max(1, result.requests) };
}

/**
 * Dashboards while buyers buy: none, one open, then 2 000 asked for at once (the bench's node lets
 * 200 in, SPIKE_DASHBOARD_STREAMS, the rest get 429). What they cost the buyers (p50) and Redis, per
 * purchase, since Redis' commands a second follow the rate buyers happen to reach in each run.
 */
export async function dashboards(b: Bench): Promise<void> {
  const { system } = b;
  b.say('dashboards: the purchase path without, with one, then with 2 000 dashboards asked for');
  const without = await purchaseWithCommands(b, 'no dashboards', 'dn');
  const cost = (m: { perSecond: number; perRequest: number }) =>
    `Redis ${m.perSecond.toFixed(0)} commands/s, ${m.perRequest.toFixed(3)} a purchase`;
  b.record({ id: 'dashboards-0', name: 'purchase path, no dashboard open', result: without.result, check: cost(without) });
  for (const [id, asked] of [
    ['dashboards-1', 1],
    ['dashboards-2000', 2000],
  ] as const) {
    const streams = await openStreams(system.adminUrl, system.adminToken, asked);
    try {
      const during = await purchaseWithCommands(b, `${asked} dashboards asked for`, `d${asked}`);
      const p50 = during.result.p50Ms / without.result.p50Ms;
      const commands = during.perRequest / without.perRequest;
      b.record({
        id,
        name: `purchase path, ${asked} dashboard${asked > 1 ? 's' : ''} asked for`,
        result: during.result,
        baseline: 'dashboards-0',
        check: `${streams.open} open, ${streams.refused} refused (429), ${streams.other} other; ${cost(during)} (${commands.toFixed(2)} ×); p50 ${p50.toFixed(2)} ×`,
        extra: { open: streams.open, p50Ratio: p50, commandsRatio: commands },
      });
    } finally {
      streams.close();
    }
  }
}
