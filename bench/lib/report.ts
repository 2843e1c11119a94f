/** Turns a bench run into a terminal table, JSON, Markdown and an SVG chart under bench/results/. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CpuSplit } from './cpu.ts';
import type { LoadResult } from './load.ts';

export interface Phase {
  readonly name: string;
  readonly result: LoadResult;
  /** req/s over the baseline measured with the same tool in the same run. */
  readonly ratio: number;
  /** What the correctness check saw. */
  readonly check: string;
  /** Where the CPU time went, per request (the one-worker wrk phases and their baseline). */
  readonly cpu?: CpuSplit;
}

export interface Report {
  readonly quick: boolean;
  readonly when: string;
  readonly seconds: number;
  readonly machine: string;
  readonly micro: readonly { name: string; avgNs: number; p99Ns: number }[];
  readonly phases: readonly Phase[];
  readonly memory: { warmMiB: number; afterSpikeMiB: number };
  readonly failed: string | undefined;
}

export interface Target {
  readonly what: string;
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

const find = (report: Report, name: string, tool: string) => report.phases.find((p) => p.name === name && p.result.tool === tool);

/** The issue's targets, judged on this run's numbers. */
export function targets(report: Report): Target[] {
  const out: Target[] = [];
  const ratio = (name: string, tool: string, goal: number) => {
    const p = find(report, name, tool);
    if (p) out.push({ what: `${name} (${tool})`, goal: `≥ ${goal} × baseline`, measured: `${p.ratio.toFixed(2)} ×`, met: p.ratio >= goal });
  };
  const time = (name: string, goal: number) => {
    const p = find(report, name, 'wrk');
    if (p)
      out.push({
        what: `${name}, ${p.result.requests} requests`,
        goal: `≤ ${goal} s`,
        measured: `${p.result.seconds.toFixed(1)} s`,
        met: p.result.seconds <= goal,
      });
  };
  ratio('ab, one worker, fresh sale', 'ab', 0.85);
  ratio('wrk sold-out path, one worker', 'wrk', 0.85);
  ratio('wrk purchase path, one worker', 'wrk', 0.55);
  if (!report.quick) {
    time('spike direct to 4 workers', 15);
    time('spike through nginx', 40);
  }
  const { warmMiB, afterSpikeMiB } = report.memory;
  if (warmMiB && afterSpikeMiB) {
    out.push({
      what: 'supervisor RSS after the spikes',
      goal: '≤ 1.3 × after warm-up',
      measured: `${afterSpikeMiB.toFixed(0)} / ${warmMiB.toFixed(0)} MiB = ${(afterSpikeMiB / warmMiB).toFixed(2)} ×`,
      met: afterSpikeMiB <= 1.3 * warmMiB,
    });
  }
  return out;
}

function rows(report: Report): string[][] {
  return report.phases.map((p) => [
    p.name,
    p.result.tool,
    String(p.result.requests),
    p.result.seconds.toFixed(2),
    String(Math.round(p.result.rps)),
    p.result.p50Ms.toFixed(2),
    p.result.p99Ms.toFixed(2),
    `${p.ratio.toFixed(2)}×`,
    String(p.result.failures) + (p.result.lengthChanges ? ` (+${p.result.lengthChanges} length)` : ''),
    p.check,
  ]);
}

const CPU_HEADER = [
  'phase',
  'req/s',
  'wrk',
  'server',
  'its busiest thread',
  'Redis',
  'other',
  'busy',
  'idle',
  'ceiling req/s',
  'ceiling vs baseline',
];

/** µs of CPU per request for each phase that measured it, and the req/s the busy part allows on every core. */
function cpuRows(report: Report): string[][] {
  const baseline = find(report, 'baseline: bare Bun.serve', 'wrk')?.result.rps;
  const us = (n: number) => n.toFixed(1);
  return report.phases
    .filter((p) => p.cpu)
    .map(({ name, result, cpu }) => [
      name,
      String(Math.round(result.rps)),
      us(cpu!.client),
      us(cpu!.server),
      us(cpu!.serverThread),
      us(cpu!.redis),
      us(cpu!.other),
      us(cpu!.busy),
      us(cpu!.idle),
      String(Math.round(cpu!.ceilingRps)),
      baseline ? `${(cpu!.ceilingRps / baseline).toFixed(2)}×` : '',
    ]);
}

const CPU_NOTE =
  'µs of CPU time per request, summed over all cores, read from /proc around each wrk run; "server" is the bare Bun.serve ' +
  'for the baseline and the supervisor (all its threads) otherwise, "its busiest thread" the worker thread that served ' +
  'the phase; "other" is the rest of the machine (the bench, nginx, the kernel outside these processes). "ceiling" is ' +
  'the req/s this busy time per request would give if every core were busy with it and nothing stayed idle: a phase ' +
  'cannot beat its ceiling by scheduling better, only by needing less CPU per request.';

const HEADER = ['phase', 'tool', 'requests', 's', 'req/s', 'p50 ms', 'p99 ms', 'vs baseline', 'failures', 'correctness'];

function table(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

function markdown(report: Report): string {
  const md = (cells: string[][]) =>
    cells.map((r, i) => `| ${r.join(' | ')} |${i === 0 ? `\n|${r.map(() => '---').join('|')}|` : ''}`).join('\n');
  const t = targets(report);
  return [
    `# spike bench (${report.quick ? 'quick' : 'full'} run)`,
    '',
    `${report.when}, ${report.machine}, ${report.seconds.toFixed(0)} s in all.${report.failed ? ` **FAILED: ${report.failed}**` : ''}`,
    '',
    md([HEADER, ...rows(report)]),
    '',
    '"failures" are real failures (non-2xx, connection errors); "length" is ab counting answers whose length differs from ' +
      'the first (a sale and a sold-out answer differ, and so do order ids of different lengths), which are not failures.',
    '',
    'Before the first phase every server had the same warm-up, not measured: wrk on the baseline, then on each worker, ' +
      'buying and then answering sold out (JavaScriptCore compiles hot code only after it ran a while, per thread). ' +
      'Each phase starts once Redis is not rewriting its AOF, and the sold-out phase once the order writer has caught up.',
    '',
    'For comparison (measured on the same kind of machine, see bench/README.md): the original Go service ran the first ab ' +
      'phase at ~8 000 req/s and sold 10 001 of 10 000; its published 4 275 req/s run answered sold out to every request.',
    '',
    '## Targets',
    '',
    md([['target', 'goal', 'measured', 'met'], ...t.map((x) => [x.what, x.goal, x.measured, x.met ? 'yes' : '**no**'])]),
    '',
    '## Where the CPU time goes',
    '',
    md([CPU_HEADER, ...cpuRows(report)]),
    '',
    CPU_NOTE,
    '',
    '## Micro-benchmarks (mitata)',
    '',
    md([['bench', 'avg', 'p99'], ...report.micro.map((m) => [m.name, ns(m.avgNs), ns(m.p99Ns)])]),
    '',
  ].join('\n');
}

function ns(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)} ms`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(2)} µs`;
  return `${value.toFixed(1)} ns`;
}

/** Horizontal bars of req/s per phase, each tool's baseline drawn first in grey. */
function svg(report: Report): string {
  const runKind = `${report.quick ? 'quick' : 'full'} run`;
  const bars = report.phases;
  const max = Math.max(1, ...bars.map((p) => p.result.rps));
  const rowH = 26;
  const left = 290;
  const width = 900;
  const height = 50 + bars.length * rowH;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const body = bars
    .map((p, i) => {
      const y = 36 + i * rowH;
      const w = ((width - left - 120) * p.result.rps) / max;
      const base = p.name.startsWith('baseline');
      return [
        `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${esc(`${p.name} (${p.result.tool})`)}</text>`,
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${base ? '#9aa0a6' : '#1a73e8'}"/>`,
        `<text x="${(left + w + 6).toFixed(1)}" y="${y + 15}">${Math.round(p.result.rps)} req/s${base ? '' : ` · ${p.ratio.toFixed(2)}×`}</text>`,
      ].join('');
    })
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-weight="bold">${esc(`spike: req/s per phase against a bare Bun.serve baseline (${runKind}, ${report.machine})`)}</text>
${body}
</svg>
`;
}

/** Prints the table and targets, writes results/<latest|quick>.{json,md,svg}; returns the paths. */
export function writeReport(report: Report): string[] {
  console.log(`\n${table([HEADER, ...rows(report)])}\n`);
  console.log(`CPU µs per request (ceiling: req/s with every core busy and none idle)\n${table([CPU_HEADER, ...cpuRows(report)])}\n`);
  for (const t of targets(report)) console.log(`${t.met ? 'met ' : 'MISS'}  ${t.what}: ${t.measured} (goal ${t.goal})`);
  const dir = join(import.meta.dir, '..', 'results');
  mkdirSync(dir, { recursive: true });
  const base = join(dir, report.quick ? 'quick' : 'latest');
  writeFileSync(`${base}.json`, JSON.stringify({ ...report, targets: targets(report) }, null, 2));
  writeFileSync(`${base}.md`, markdown(report));
  writeFileSync(`${base}.svg`, svg(report));
  return [`${base}.json`, `${base}.md`, `${base}.svg`];
}
