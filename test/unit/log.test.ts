// Operational lines once had no time and no level, and no machine-readable form.
import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { logLine } from '../../src/log.ts';

const LOG = join(import.meta.dir, '..', '..', 'src', 'log.ts');

/** Runs `log.<level>(msg, fields)` in a fresh process with SPIKE_LOG_FORMAT=format; returns stdout and stderr. */
function logged(format: string, code: string) {
  const proc = Bun.spawnSync([process.execPath, '-e', `import { log } from '${LOG}'; ${code}`], {
    env: { ...process.env, SPIKE_LOG_FORMAT: format },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  return { out: proc.stdout.toString(), err: proc.stderr.toString() };
}

describe('operational log lines', () => {
  test('as text: ISO time, level, message, then key=value fields', () => {
    expect(logLine('warn', 'Redis error', { sale: 'x', n: 2 })).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN {2}Redis error sale=x n=2$/,
    );
  });

  test('SPIKE_LOG_FORMAT=json makes each line one JSON object; info goes to stdout, warn and error to stderr', () => {
    const { out, err } = logged('json', `log.info('ready: node a', { workers: 4 }); log.error('worker crashed');`);
    const info = JSON.parse(out.trim());
    expect(info).toMatchObject({ level: 'info', msg: 'ready: node a', workers: 4 });
    expect(Number.isNaN(Date.parse(info.time))).toBe(false);
    expect(JSON.parse(err.trim())).toMatchObject({ level: 'error', msg: 'worker crashed' });
  });

  test('text is the default', () => {
    expect(logged('', `log.info('hello')`).out).toMatch(/^\S+Z INFO {2}hello\n$/);
  });
});
