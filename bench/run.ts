/**
 * `bun run bench [-- --quick] [-- --json]`: micro-benchmarks, then every HTTP phase against the
 * real system (own Redis, supervisor with four workers, nginx) and a bare-Bun baseline measured
 * in the same run, checking the sale's invariants after each phase.
 */
import { ab, wrk, type LoadResult } from './lib/load.ts';
import { checkSale, readSale } from './lib/check.ts';
import { snapshot, split, type CpuSplit } from './lib/cpu.ts';
import { durability, waitCost } from './lib/durability.ts';
import { writeReport, type Phase, type Report } from './lib/report.ts';
import { startSystem, type System } from './lib/system.ts';
import { runMicro } from './micro.ts';
import { parseCommandLine, usageError } from '../src/cli/args.ts';

const USAGE = `usage: bun run bench [-- --quick] [-- --json]
  --quick   every phase, small (about two minutes; what CI runs); without it, the full run
            (a few minutes) that writes bench/results/latest.*
  --json    print the whole report as JSON on stdout at the end, for machines
  --help    this text`;

const { values, positionals } = parseCommandLine(Bun.argv.slice(2), { quick: { type: 'boolean' }, json: { type: 'boolean' } }, USAGE);
if (positionals.length > 0) usageError(`unexpected argument ${positionals[0]}`, USAGE);
const quick = values.quick ?? false;
const json = values.json ?? false;

/** Sizes: the full run is the published one; --quick is the same phases, small, for CI. */
const SIZE = quick
  ? { warmSeconds: 1, abRequests: 2000, abTickets: 2000, wrkSeconds: 1, spikeUsers: 40_000, spikeTickets: 1000, nginxAbRequests: 1000 }
  : {
      warmSeconds: 2,
      abRequests: 10_000,
      abTickets: 10_000,
      wrkSeconds: 8,
      spikeUsers: 1_000_000,
      spikeTickets: 10_000,
      nginxAbRequests: 1000,
    };

const say = (line: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

async function main(): Promise<number> {
  const started = Date.now();
  say(`${quick ? 'quick' : 'full'} run on ${navigator.hardwareConcurrency} cores`);
  const system = await startSystem(say);
  const phases: Phase[] = [];
  const memory = { warmMiB: 0, afterSpikeMiB: 0 };
  let micro: Awaited<ReturnType<typeof runMicro>> = [];
  let failed: Error | undefined;
  try {
    say('micro-benchmarks (mitata)');
    micro = await runMicro(system.redisUrl, json || quick);

    const record = (phase: Omit<Phase, 'ratio'>, baseline: LoadResult | undefined) => {
      const full: Phase = { ...phase, ratio: baseline ? phase.result.rps / baseline.rps : 1 };
      phases.push(full);
      const { tool, rps, p50Ms, p99Ms } = phase.result;
      const ratio = baseline ? `, ${full.ratio.toFixed(2)}× baseline` : '';
      say(`${phase.name} [${tool}]: ${Math.round(rps)} req/s, p50 ${p50Ms} ms, p99 ${p99Ms} ms${ratio} — ${phase.check}`);
    };

    say(`warm-up, not measured: ${SIZE.warmSeconds} s of wrk on the baseline, then on every worker buying and answering sold out`);
    await warmUp(system, SIZE.warmSeconds);

    say('baseline: bare Bun.serve');
    const abBase = await ab(`${system.baselineUrl}/buy/ticket`, SIZE.abRequests, 100);
    record({ name: 'baseline: bare Bun.serve', result: abBase, check: 'ceiling' }, undefined);
    const { result: wrkBase, cpu: baseCpu } = await withCpu(system, system.baselinePid, () =>
      wrk(system.baselineUrl, { connections: 100, seconds: SIZE.wrkSeconds, anonymous: true }),
    );
    record({ name: 'baseline: bare Bun.serve', result: wrkBase, check: 'ceiling', cpu: baseCpu }, undefined);

    say(`original run 1: ab -n ${SIZE.abRequests} -c 100 on one worker, fresh ${SIZE.abTickets}-ticket sale`);
    await system.newSale(SIZE.abTickets);
    const abOne = await ab(`${system.workerUrls[0]}/buy/ticket`, SIZE.abRequests, 100);
    const abOneCheck = checkSale(await readSale(system.redis), { min: abOne.requests - abOne.failures, max: abOne.requests }, false);
    record({ name: 'ab, one worker, fresh sale', result: abOne, check: abOneCheck }, abBase);

    say(`original run 2: ab -n ${SIZE.nginxAbRequests} -c 100 through nginx`);
    await system.newSale(100_000);
    const before = await system.stock();
    const abNginx = await ab(`${system.nginxUrl}/buy/ticket`, SIZE.nginxAbRequests, 100);
    const after = await system.stock();
    const split = after.map((s, i) => s.local.sales - before[i]!.local.sales);
    const nginxCheck = checkSale(await readSale(system.redis), { min: abNginx.requests, max: abNginx.requests }, false);
    record({ name: 'ab through nginx', result: abNginx, check: `${nginxCheck}; split ${split.join('/')}` }, abBase);
    const weights = [1, 2, 3, 4];
    const splitOk = split.every((n, i) => Math.abs(n / abNginx.requests - weights[i]! / 10) <= 0.01);
    if (!splitOk) throw new Error(`correctness check failed: nginx split ${split.join('/')} is not 1:2:3:4`);

    say('wrk: purchase path (more tickets than requests: every request goes to Redis)');
    await system.newSale(50_000_000);
    const { result: buy, cpu: buyCpu } = await withCpu(system, system.supervisorPid, () =>
      wrk(system.workerUrls[0]!, { connections: 100, seconds: SIZE.wrkSeconds, userPrefix: 'p' }),
    );
    const buyCheck = checkSale(await readSale(system.redis), { min: buy.requests - buy.failures, max: buy.requests + 100 }, true);
    // The writer yields to buyers (nice 10), so it ends behind; the next phase starts once it caught up.
    const catchUp = await system.writerCaughtUp();
    record(
      {
        name: 'wrk purchase path, one worker',
        result: buy,
        check: `${buyCheck}; order writer caught up ${catchUp.toFixed(1)} s after`,
        cpu: buyCpu,
      },
      wrkBase,
    );

    say('wrk: sold-out path (finished sale: every request answered from shared memory)');
    await system.finishSale();
    const soldBefore = await readSale(system.redis);
    const { result: soldOut, cpu: soldOutCpu } = await withCpu(system, system.supervisorPid, () =>
      wrk(system.workerUrls[0]!, { connections: 100, seconds: SIZE.wrkSeconds, userPrefix: 's' }),
    );
    const soldAfter = await readSale(system.redis);
    if (soldAfter.sold !== soldBefore.sold)
      throw new Error(`correctness check failed: a finished sale sold ${soldAfter.sold - soldBefore.sold} more`);
    record({ name: 'wrk sold-out path, one worker', result: soldOut, check: `sold stays ${soldAfter.sold}`, cpu: soldOutCpu }, wrkBase);
    memory.warmMiB = system.rssMiB();
    say(`supervisor RSS after warm-up: ${memory.warmMiB.toFixed(1)} MiB`);

    say(`the spike, direct: ${SIZE.spikeUsers} distinct users for ${SIZE.spikeTickets} tickets over the four workers`);
    await system.newSale(SIZE.spikeTickets);
    const direct = await spikeDirect(system, SIZE.spikeUsers);
    const directCheck = checkSale(
      await readSale(system.redis),
      { min: direct.requests - direct.failures, max: direct.requests + 100 },
      true,
    );
    record({ name: 'spike direct to 4 workers', result: direct, check: directCheck }, wrkBase);

    say(`the spike, through nginx: ${SIZE.spikeUsers} distinct users for ${SIZE.spikeTickets} tickets`);
    await system.newSale(SIZE.spikeTickets);
    const viaNginx = await wrk(system.nginxUrl, { connections: 100, seconds: 300, requests: SIZE.spikeUsers, userPrefix: 'n' });
    const nginxSpikeCheck = checkSale(
      await readSale(system.redis),
      { min: viaNginx.requests - viaNginx.failures, max: viaNginx.requests + 100 },
      true,
    );
    record({ name: 'spike through nginx', result: viaNginx, check: nginxSpikeCheck }, wrkBase);
    await Bun.sleep(500);
    memory.afterSpikeMiB = system.rssMiB();
    say(`supervisor RSS after the spikes: ${memory.afterSpikeMiB.toFixed(1)} MiB`);

    for (const mode of ['everysec', 'always'] as const) {
      const result = await durability(mode, SIZE.wrkSeconds, say);
      record(
        {
          name: `purchase path, appendfsync ${mode}`,
          result: result.purchase,
          check: `SIGKILL mid-sale: ${result.lost} of ${result.acknowledged} acknowledged sales lost`,
        },
        wrkBase,
      );
      if (mode === 'always' && result.lost > 0)
        throw new Error(`correctness check failed: appendfsync always lost ${result.lost} acknowledged sales`);
    }
    say('purchase path with a replica confirming every sale (SPIKE_WAIT_REPLICAS=1)');
    record(
      {
        name: 'purchase path, WAIT for 1 replica',
        result: await waitCost(SIZE.wrkSeconds),
        check: 'a sale is answered only once a replica holds it',
      },
      wrkBase,
    );
  } catch (error) {
    failed = error instanceof Error ? error : new Error(String(error));
  } finally {
    await system.stop();
  }

  const report: Report = {
    quick,
    when: new Date().toISOString(),
    seconds: (Date.now() - started) / 1000,
    machine: machine(),
    micro,
    phases,
    memory,
    failed: failed?.message,
  };
  const paths = writeReport(report);
  if (json) console.log(JSON.stringify(report, null, 2));
  say(`results: ${paths.join(', ')}`);
  if (failed) {
    console.error(`\nBENCH FAILED: ${failed.message}`);
    return 1;
  }
  return 0;
}

/**
 * Every server gets the same warm-up before anything is measured: JavaScriptCore compiles hot
 * code only after it ran a while, and each worker thread compiles its own. Without it the
 * first phase (ab, 10 000 requests, under a second) measured the interpreter, not the service.
 */
async function warmUp(system: System, seconds: number): Promise<void> {
  const each = (prefix: string) =>
    Promise.all(system.workerUrls.map((url, i) => wrk(url, { connections: 25, seconds, userPrefix: `${prefix}${i}-` })));
  await wrk(system.baselineUrl, { connections: 100, seconds, anonymous: true });
  await system.newSale(100_000_000);
  await each('warm-buy');
  await system.finishSale();
  await each('warm-soldout');
  // Nothing of the warm-up may still run (the writer copying its orders, an AOF rewrite) while the baseline is measured.
  await system.writerCaughtUp();
  await system.aofQuiet();
}

/** Runs one wrk phase and splits the machine's CPU time over its requests: wrk, `serverPid`, Redis, the rest. */
async function withCpu(
  system: System,
  serverPid: number,
  run: () => Promise<LoadResult>,
): Promise<{ result: LoadResult; cpu: CpuSplit | undefined }> {
  const pids = { server: serverPid, redis: system.redisPid };
  const before = snapshot(pids);
  const result = await run();
  const after = snapshot(pids);
  const cpu =
    result.clientCpuUs === undefined ? undefined : split(before, after, result.requests, result.clientCpuUs, navigator.hardwareConcurrency);
  return { result, cpu };
}

/** Four wrk processes, one per worker port, a quarter of the users each, at once. */
async function spikeDirect(system: System, users: number): Promise<LoadResult> {
  const started = performance.now();
  const each = Math.ceil(users / system.workerUrls.length);
  const runs = await Promise.all(
    system.workerUrls.map((url, i) => wrk(url, { connections: 25, seconds: 300, requests: each, userPrefix: `d${i}-` })),
  );
  const seconds = (performance.now() - started) / 1000;
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  return {
    tool: 'wrk',
    requests,
    seconds,
    rps: requests / seconds,
    // wrk reports percentiles per process; the median of their p50s and the worst p99.
    p50Ms: runs.map((r) => r.p50Ms).sort((a, b) => a - b)[Math.floor(runs.length / 2)]!,
    p99Ms: Math.max(...runs.map((r) => r.p99Ms)),
    failures: runs.reduce((n, r) => n + r.failures, 0),
  };
}

function machine(): string {
  const cpu = (() => {
    try {
      return /model name\s*:\s*(.+)/.exec(require('node:fs').readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?';
    } catch {
      return '?';
    }
  })();
  return `${navigator.hardwareConcurrency} cores (${cpu}), Bun ${Bun.version}`;
}

process.exit(await main());
