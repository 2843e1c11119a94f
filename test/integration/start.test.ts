// `bun run start` as a user runs it: a separate process with its own private Redis and nginx,
// configured only by environment variables, stopped by a signal.
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../../src/services/child.ts';
import { freePort } from '../../src/services/free-port.ts';
import { freePorts, tempDir } from '../helpers/servers.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

const SUPERVISOR = join(import.meta.dir, '..', '..', 'src', 'supervisor.ts');
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function run(env: Record<string, string>) {
  return Bun.spawn([process.execPath, SUPERVISOR], { env: { ...process.env, ...env }, stdout: 'pipe', stderr: 'pipe' });
}

/** Reads the process's stdout until a line contains `marker` (or the process ends). */
async function readUntil(proc: ReturnType<typeof run>, marker: string, ms = 20_000): Promise<string> {
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + ms;
  try {
    while (!text.includes(marker) && Date.now() < deadline) {
      const chunk = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => null)]);
      if (!chunk || chunk.done) break;
      text += decoder.decode(chunk.value);
    }
  } finally {
    reader.releaseLock();
  }
  return text;
}

describe('bun run start', () => {
  test('a bad setting stops it at once with exit code 2 and a message naming the setting', async () => {
    const proc = run({ SPIKE_TOTAL: 'many', REDIS_URL: '' });
    expect(await proc.exited).toBe(2);
    expect(await new Response(proc.stderr).text()).toContain('SPIKE_TOTAL=many is not a whole number; accepted: 0 to 1000000000');
  });

  test('without redis-server installed it says how to install it', async () => {
    const proc = Bun.spawn([process.execPath, SUPERVISOR], {
      env: { PATH: '/nonexistent', HOME: process.env.HOME ?? '/root', SPIKE_DATA_DIR: tempDir('nobin') },
      stderr: 'pipe',
      stdout: 'pipe',
    });
    expect(await proc.exited).toBe(1);
    expect(await new Response(proc.stderr).text()).toContain('redis-server is not installed; install it with: apt-get install -y redis-server');
  });

  test('starts its own Redis, four workers and nginx, sells, stops cleanly on SIGTERM, and continues after a restart', async () => {
    const dataDir = tempDir('data');
    const logDir = tempDir('logs');
    dirs.push(dataDir, logDir);
    const ports = await freePorts(4);
    const nginxPort = await freePort();
    const env = {
      REDIS_URL: '',
      SPIKE_DATA_DIR: dataDir,
      SPIKE_LOG_DIR: logDir,
      SPIKE_PORTS: ports.join(','),
      SPIKE_NGINX: '1',
      SPIKE_NGINX_LISTEN: `127.0.0.1:${nginxPort}`,
      SPIKE_TOTAL: '100',
      SPIKE_ADMIN_PORT: String(await freePort()),
    };
    const first = run(env);
    const out = await readUntil(first, 'ready:');
    expect(out).toMatch(/redis-server started on redis:\/\/127\.0\.0\.1:\d+/);
    for (const port of ports) expect(out).toContain(`listening on http://127.0.0.1:${port}`);
    expect(out).toContain(`nginx listening on 127.0.0.1:${nginxPort}`);
    expect(out).toContain('sale ticket_hash_key: 0 of 100 sold (new)');
    expect(out).toMatch(/ready: node [^,]+, 4 workers/);

    const bought = await (await fetch(`http://127.0.0.1:${nginxPort}/buy/ticket?user=first`)).json();
    expect(bought).toMatchObject({ code: 1 });
    const redisPid = Number(readFileSync(join(dataDir, 'redis.pid'), 'utf8'));
    const nginxPid = Number(readFileSync(join(dataDir, 'nginx', 'nginx.pid'), 'utf8'));
    expect(isAlive(redisPid) && isAlive(nginxPid)).toBe(true);

    // bun run audit finds the private Redis and the order database by itself.
    const audit = (extra: Record<string, string> = {}) =>
      Bun.spawnSync([process.execPath, join(import.meta.dir, '..', '..', 'src', 'audit.ts')], { env: { ...process.env, ...env, ...extra }, stdout: 'pipe', stderr: 'pipe' });
    const clean = audit();
    expect(clean.stdout.toString()).toContain('audit: clean');
    expect(clean.exitCode).toBe(0);
    const redisUrl = readFileSync(join(dataDir, 'redis.url'), 'utf8');
    const tamper = Bun.spawnSync(['redis-cli', '-u', redisUrl, 'HINCRBY', 'ticket_hash_key', 'ticket_sold_nums', '1']);
    expect(tamper.exitCode).toBe(0);
    const dirty = audit();
    expect(dirty.stdout.toString()).toContain('DIFF Redis: sold 2 != reserved 1 + paid 0');
    expect(dirty.exitCode).toBe(1);
    Bun.spawnSync(['redis-cli', '-u', redisUrl, 'HINCRBY', 'ticket_hash_key', 'ticket_sold_nums', '-1']);

    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(isAlive(redisPid)).toBe(false);
    expect(isAlive(nginxPid)).toBe(false);
    const logs = readdirSync(logDir).map((f) => readFileSync(join(logDir, f), 'utf8')).join('');
    expect(logs).toMatch(/result=sold code=1 localSales=1 user=first order=/);

    const second = run(env);
    try {
      const again = await readUntil(second, 'ready:');
      expect(again).toContain('sale ticket_hash_key: 1 of 100 sold (continuing)');
      const held = await (await fetch(`http://127.0.0.1:${ports[2]}/buy/ticket?user=first`)).json();
      expect(held).toMatchObject({ code: 2, orderId: (bought as { orderId: string }).orderId });
    } finally {
      second.kill('SIGINT');
      expect(await second.exited).toBe(0);
    }
    expect(existsSync(join(dataDir, 'appendonlydir'))).toBe(true);
  });
});
