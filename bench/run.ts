/**
 * `bun run bench [-- --quick] [-- --json]`: micro-benchmarks, then every HTTP phase against the
 * real system (own Redis, supervisor with four workers, nginx) and a bare-Bun baseline measured
 * in the same run, checking the sale's invariants after each phase.
 */
import { wrk } from './lib/load.ts';
import {
  baselines,
  dashboards,
  durabilityPhases,
  idleSales,
  oneWorker,
  originalRuns,
  scaling,
  spikes,
  waitingRoom,
  type Bench,
  type Size,
} from './lib/phases.ts';
import type { IdleCost } from './lib/idle.ts';
import { writeReport, type Phase, type Report } from './lib/report.ts';
import { startSystem, type System } from './lib/system.ts';
import { runMicro } from './micro.ts';
import { compare, COMPARE_FULL, COMPARE_QUICK, compareTable } from './lib/compare.ts';
import { parseCommandLine, usageError } from '../src/cli/args.ts';

const USAGE = `usage: bun run bench [-- --quick] [-- --json] [-- --compare <git ref>]
  --quick          every phase, small (a few minutes; what CI runs); without it, the full run
                   (about a quarter of an hour) that writes bench/results/latest.*
  --json           print the whole report as JSON on stdout at the end, for machines
  --compare <ref>  only the hot path (purchase, sold out, ab on a fresh sale, 100 sales), this
                   working tree against <ref> (e.g. HEAD~1) built in a temporary worktree,
                   interleaved, two rounds; a table with this/ref per phase and CPU per request.
                   With --quick: under two minutes. <base>..<head> compares two commits
                   (head as "this"): a bisect's step
  --rounds <n>     with --compare: rounds instead of two (more rounds, less noise)
  --help           this text`;

const { values, positionals } = parseCommandLine(
  Bun.argv.slice(2),
  { quick: { type: 'boolean' }, json: { type: 'boolean' }, compare: { type: 'string' }, rounds: { type: 'string' } },
  USAGE,
);
if (positionals.length > 0) usageError(`unexpected argument ${positionals[0]}`, USAGE);
if (values.rounds !== undefined && values.compare === undefined) usageError('--rounds goes with --compare', USAGE);
const quick = values.quick ?? false;
const json = values.json ?? false;

/** Sizes: the full run is the published one; --quick is the same phases, small, for CI. */
const SIZE: Size = quick
  ? {
      warmSeconds: 1,
      abRequests: 2000,
      abTickets: 2000,
      wrkSeconds: 1,
      spikeUsers: 40_000,
      spikeTickets: 1000,
      nginxAbRequests: 1000,
      moreUsers: 160_000,
      crowdUsers: 40_000,
      connections: [1000],
      sales: [1, 10],
      idleSeconds: 3,
    }
  : {
      warmSeconds: 2,
      abRequests: 10_000,
      abTickets: 10_000,
      wrkSeconds: 8,
      spikeUsers: 1_000_000,
      spikeTickets: 10_000,
      nginxAbRequests: 1000,
      moreUsers: 4_000_000,
      crowdUsers: 1_000_000,
      connections: [1000, 10_000],
      sales: [1, 10, 100],
      idleSeconds: 10,
    };

const say = (line: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

async function main(): Promise<number> {
  const started = Date.now();
  say(`${quick ? 'quick' : 'full'} run on ${navigator.hardwareConcurrency} cores`);
  const system = await startSystem(say);
  const phases: Phase[] = [];
  const memory = { warmMiB: 0, afterSpikeMiB: 0 };
  const idle: IdleCost[] = [];
  let micro: Awaited<ReturnType<typeof runMicro>> = [];
  let failed: Error | undefined;
  const bench: Bench = {
    system,
    size: SIZE,
    say,
    memory,
    idle,
    phase: (id) => phases.find((p) => p.id === id),
    record: (phase) => {
      const base = phase.baseline ? phases.find((p) => p.id === phase.baseline) : undefined;
      const full: Phase = { ...phase, ratio: base ? phase.result.rps / base.result.rps : 1 };
      phases.push(full);
      const { tool, rps, p50Ms, p99Ms } = phase.result;
      const ratio = base ? `, ${full.ratio.toFixed(2)}× ${base.id}` : '';
      say(`${phase.id} [${tool}]: ${Math.round(rps)} req/s, p50 ${p50Ms} ms, p99 ${p99Ms} ms${ratio} — ${phase.check}`);
      return full;
    },
  };
  try {
    say('micro-benchmarks (mitata)');
    micro = await runMicro(system.redisUrl, json || quick);
    say(`warm-up, not measured: ${SIZE.warmSeconds} s of wrk on the baselines, then on every worker buying and answering sold out`);
    await warmUp(system, SIZE.warmSeconds);
    for (const group of [baselines, originalRuns, oneWorker, dashboards, spikes, waitingRoom, scaling, idleSales, durabilityPhases])
      await group(bench);
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
    idle,
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
  await wrk(system.nginxBaselineUrl, { connections: 100, seconds, anonymous: true });
  await system.newSale(100_000_000);
  await each('warm-buy');
  await system.finishSale();
  await each('warm-soldout');
  // Nothing of the warm-up may still run (the writer copying its orders, an AOF rewrite) while the baseline is measured.
  await system.writerCaughtUp();
  await system.aofQuiet();
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

/** --compare: the hot path of this tree against a ref's, and nothing else. */
async function compareMain(ref: string): Promise<number> {
  say(`comparing this working tree with ${ref}, ${quick ? 'quick' : 'full'}, on ${navigator.hardwareConcurrency} cores`);
  const size = quick ? COMPARE_QUICK : COMPARE_FULL;
  const rounds = values.rounds === undefined ? size.rounds : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20)
    usageError(`--rounds ${values.rounds} is not a whole number from 1 to 20`, USAGE);
  const report = await compare(ref, { ...size, rounds }, say);
  if (json) console.log(JSON.stringify(report, null, 2));
  else console.log(compareTable(report));
  return 0;
}

process.exit(values.compare === undefined ? await main() : await compareMain(values.compare));
