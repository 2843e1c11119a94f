/** `bun run stats [-- --sale ID | --all] [-- --dir DIR]`: tallies the stat logs per sale, port and result, like grepping the original's stat.log. */
import { STAT_RESULTS, tallyStats } from '../http/stat-log.ts';
import { parseCommandLine, usageError } from './args.ts';

const USAGE = `usage: bun run stats [-- --sale ID | -- --all] [-- --dir DIR]
  --sale ID   one sale (the default sale is ticket_hash_key)
  --all       every sale, each with its own total (the default)
  --dir DIR   where the workers wrote stat-<port>.log (default: SPIKE_LOG_DIR, else ./logs);
              rotated files (stat-<port>.log.1, …) are counted too
  --help      this text`;

const { values, positionals } = parseCommandLine(
  Bun.argv.slice(2),
  { dir: { type: 'string' }, sale: { type: 'string' }, all: { type: 'boolean' } },
  USAGE,
);
if (positionals.length > 0) usageError(`unexpected argument ${positionals[0]}`, USAGE);
if (values.sale !== undefined && values.all) usageError('--sale and --all: give one', USAGE);
const dir = values.dir ?? (Bun.env.SPIKE_LOG_DIR || './logs');
const { sales } = tallyStats(dir);
if (sales.length === 0) {
  console.error(`no stat logs in ${dir} (start the system and send some requests, or give --dir / SPIKE_LOG_DIR)`);
  process.exit(1);
}
if (values.sale !== undefined && !sales.includes(values.sale)) {
  console.error(`stats: no request of sale ${values.sale} in ${dir}; the logs hold ${sales.join(', ')}`);
  process.exit(2);
}

/** One sale's table: a row per port, then its total (a sale's own: summing sales read as an oversell). */
function table(sale: string): void {
  const { ports, unparsed } = tallyStats(dir, sale);
  const rows = ports.map((p) => [
    String(p.port),
    String(p.requests),
    ...STAT_RESULTS.map((r) => String(p.results[r] ?? 0)),
    String(p.localSales),
  ]);
  const sum = (i: number) => String(rows.reduce((n, row) => n + Number(row[i]), 0));
  rows.push(['total', ...Array.from({ length: STAT_RESULTS.length + 2 }, (_, i) => sum(i + 1))]);
  const header = ['port', 'requests', ...STAT_RESULTS, 'localSales'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const print = (cells: string[]) => console.log(cells.map((c, i) => c.padStart(widths[i]!)).join('  '));
  console.log(`sale ${sale}`);
  print(header);
  for (const row of rows) print(row);
  if (unparsed) console.log(`(${unparsed} lines could not be read)`);
}

for (const [i, sale] of (values.sale !== undefined ? [values.sale] : sales).entries()) {
  if (i > 0) console.log('');
  table(sale);
}
