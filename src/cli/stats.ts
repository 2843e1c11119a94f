/** `bun run stats`: tallies the stat logs per port and result, like grepping the original's stat.log. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PortTally {
  port: number;
  requests: number;
  results: Record<string, number>;
  /** Highest localSales seen: what this port's worker sold. */
  localSales: number;
}

/** Reads every `stat-*.log` in `dir`, and the rotated `stat-*.log.N` beside them; lines it cannot parse are counted, not silently dropped. */
export function tallyStats(dir: string): { ports: PortTally[]; unparsed: number } {
  const byPort = new Map<number, PortTally>();
  let unparsed = 0;
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => /^stat-\d+\.log(\.\d+)?$/.test(f));
  } catch {
    files = [];
  }
  for (const file of files) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (!line) continue;
      const match = /port=(\d+) result=(\w+) code=(-?\d+) localSales=(\d+)/.exec(line);
      if (!match) {
        unparsed++;
        continue;
      }
      const port = Number(match[1]);
      const tally = byPort.get(port) ?? { port, requests: 0, results: {}, localSales: 0 };
      tally.requests++;
      tally.results[match[2]!] = (tally.results[match[2]!] ?? 0) + 1;
      tally.localSales = Math.max(tally.localSales, Number(match[4]));
      byPort.set(port, tally);
    }
  }
  return { ports: [...byPort.values()].sort((a, b) => a.port - b.port), unparsed };
}

if (import.meta.main) {
  const dir = Bun.env.SPIKE_LOG_DIR || './logs';
  const { ports, unparsed } = tallyStats(dir);
  if (ports.length === 0) {
    console.error(`no stat logs in ${dir} (set SPIKE_LOG_DIR to where the workers wrote them)`);
    process.exit(1);
  }
  const results = ['sold', 'soldout', 'held', 'unavailable', 'nosale', 'closed'];
  const rows = ports.map((p) => [String(p.port), String(p.requests), ...results.map((r) => String(p.results[r] ?? 0)), String(p.localSales)]);
  const sum = (i: number) => String(rows.reduce((n, row) => n + Number(row[i]), 0));
  rows.push(['total', ...Array.from({ length: results.length + 2 }, (_, i) => sum(i + 1))]);
  const header = ['port', 'requests', ...results, 'localSales'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const print = (cells: string[]) => console.log(cells.map((c, i) => c.padStart(widths[i]!)).join('  '));
  print(header);
  for (const row of rows) print(row);
  if (unparsed) console.log(`(${unparsed} lines could not be read)`);
}
