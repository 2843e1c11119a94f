// Every command a user types answers --help and refuses a flag it does not know. `bun run bench
// -- --quik` once started the full two-minute run, and `bun run audit -- --help` said "unknown
// argument".
import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';

setDefaultTimeout(60_000);

const ROOT = join(import.meta.dir, '..', '..');
const COMMANDS = ['start', 'audit', 'stats', 'nginx-conf', 'bench', 'sale'] as const;

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
