// Every command a user types answers --help and refuses a flag it does not know. `bun run bench
// -- --quik` once started the full two-minute run, and `bun run audit -- --help` said "unknown
// argument".
import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';

setDefaultTimeout(60_000);

const ROOT = join(import.meta.dir, '..', '..');
const COMMANDS = ['start', 'audit', 'stats', 'nginx-conf', 'bench', 'sale', 'ticket'] as const;

/** `bun run <script> -- <args>`, exactly as the README shows it. */
const run = (script: string, ...args: string[]) =>
  Bun.spawnSync([process.execPath, 'run', script, '--', ...args], {
    cwd: ROOT,
    stdout: 'pipe',
    stderr: 'pipe',
    env: { ...process.env, REDIS_URL: '' },
  });

describe('every command', () => {
  test.each(COMMANDS)('bun run %s -- --help prints its usage and every flag, and exits 0', (script) => {
    const help = run(script, '--help');
    expect(help.exitCode).toBe(0);
    const text = help.stdout.toString();
    expect(text).toStartWith(`usage: bun run ${script}`);
    expect(text).toContain('--help');
  });

  test.each(COMMANDS)('bun run %s -- --quik is refused with exit 2 and the usage', (script) => {
    const wrong = run(script, '--quik');
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr.toString()).toContain(`usage: bun run ${script}`);
  });
});

describe("a stranger's mistakes", () => {
  // A misspelt flag got Node's own message and a stack trace; the usage lines' own form
  // (`-- --users 5000 -- --quick`) ended in ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL.
  test('an unknown flag names the closest one in one line, and the usage lines can be followed as printed', () => {
    const wrong = run('bench', '--quik');
    expect(wrong.stderr.toString()).toContain('\nunknown flag --quik; did you mean --quick?\nusage: bun run bench');
    expect(wrong.stderr.toString()).not.toContain('    at ');
    const asShown = Bun.spawnSync([process.execPath, 'run', 'rehearse', '--', '--users', '5000', '--', '--quick', '--', '--help'], {
      cwd: ROOT,
      stdout: 'pipe',
      stderr: 'pipe',
    });
    expect(asShown.exitCode).toBe(0);
    expect(asShown.stdout.toString()).toStartWith('usage: bun run rehearse');
  });

  test('stats refuses a sale its logs do not hold, and shows each sale with its own total', async () => {
    const dir = join(ROOT, 'node_modules', '.cache', `stats-${process.pid}`);
    await Bun.write(
      join(dir, 'stat-3001.log'),
      [
        '2026-01-01T00:00:00.000Z port=3001 result=sold code=1 localSales=1 user=a order=1-0',
        '2026-01-01T00:00:00.000Z port=3001 result=sold code=1 localSales=1 user=b order=2-0 sale=concert',
        '2026-01-01T00:00:00.000Z port=3001 result=soldout code=-1 localSales=1 user=c sale=concert',
        '',
      ].join('\n'),
    );
    const stats = (...args: string[]) => run('stats', '--dir', dir, ...args);
    const all = stats().stdout.toString();
    expect(all).toMatch(/^sale concert\n.*\n +3001 +2 +1 +1 /m);
    expect(all).toMatch(/^sale ticket_hash_key\n.*\n +3001 +1 +1 +0 /m);
    const one = stats('--sale', 'concert');
    expect(one.stdout.toString()).not.toContain('ticket_hash_key');
    const none = stats('--sale', 'nosuch');
    expect(none.exitCode).toBe(2);
    expect(none.stderr.toString()).toContain('no request of sale nosuch');
  });
});
