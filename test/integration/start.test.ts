// `bun run start` as a user runs it: a separate process with its own private Redis and nginx,
// configured only by environment variables, stopped by a signal.
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from '../../src/services/child.ts';
import { freePort } from '../../src/services/free-port.ts';
import { freePorts, tempDir } from '../helpers/servers.ts';

// Real servers and thousands of requests: more than Bun's 5 s default per test.
setDefaultTimeout(120_000);

const SUPERVISOR = join(import.meta.dir, '..', '..', 'src', 'cli', 'start.ts');
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
    expect(await new Response(proc.stderr).text()).toContain(
      'SPIKE_TOTAL=many is not accepted; accepted: a whole number from 0 to 1000000000',
    );
  });

  test('without redis-server installed it says how to install it', async () => {
    const proc = Bun.spawn([process.execPath, SUPERVISOR], {
      env: { PATH: '/nonexistent', HOME: process.env.HOME ?? '/root', SPIKE_DATA_DIR: tempDir('nobin') },
      stderr: 'pipe',
      stdout: 'pipe',
    });
    expect(await proc.exited).toBe(1);
    expect(await new Response(proc.stderr).text()).toContain(
      'redis-server is not installed; install it with: apt-get install -y redis-server',
    );
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
      Bun.spawnSync([process.execPath, join(import.meta.dir, '..', '..', 'src', 'cli', 'audit.ts')], {
        env: { ...process.env, ...env, ...extra },
        stdout: 'pipe',
        stderr: 'pipe',
      });
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
    const logs = readdirSync(logDir)
      .map((f) => readFileSync(join(logDir, f), 'utf8'))
      .join('');
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

  // Ctrl-C reaches the whole foreground process group: `bun run`, which forwards it, and the
  // supervisor, which so saw it twice and took the second as "exit now", skipping the graceful
  // stop (stat log lines lost, exit 1); redis-server and nginx got it too and could stop first.
  test('a signal to the whole process group of `bun run start` stops it once, gracefully, nginx first and Redis last', async () => {
    const dataDir = tempDir('data');
    const logDir = tempDir('logs');
    dirs.push(dataDir, logDir);
    const ports = await freePorts(4);
    const nginxPort = await freePort();
    const env = {
      ...process.env,
      REDIS_URL: '',
      SPIKE_DATA_DIR: dataDir,
      SPIKE_LOG_DIR: logDir,
      SPIKE_PORTS: ports.join(','),
      SPIKE_NGINX: '1',
      SPIKE_NGINX_LISTEN: `127.0.0.1:${nginxPort}`,
      SPIKE_TOTAL: '100000',
      SPIKE_ADMIN_PORT: '0',
    };
    let answered = 0;
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGINT'] as const) {
      // setsid: `bun run start` leads a process group of its own, as in a terminal.
      const proc = Bun.spawn(['setsid', process.execPath, 'run', 'start'], {
        cwd: join(import.meta.dir, '..', '..'),
        env,
        stdout: 'pipe',
        stderr: 'pipe',
      });
      const ready = await readUntil(proc, 'ready:', 60_000);
      expect(ready).toContain('ready:');
      const answers = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          fetch(`http://127.0.0.1:${nginxPort}/buy/ticket?user=${signal}-${answered + i}`).then((r) => r.status),
        ),
      );
      expect(answers.filter((s) => s !== 200)).toEqual([]);
      answered += answers.length;
      process.kill(-proc.pid, signal);
      expect(await proc.exited).toBe(0);
      const out = await readUntil(proc, 'spike: stopped', 1000);
      const err = await new Response(proc.stderr).text();
      expect(err).not.toContain('exiting now');
      const order = ['stopped: nginx', 'stopped: workers', 'stopped: redis-server', 'spike: stopped'].map((line) => out.indexOf(line));
      expect(order.every((at) => at >= 0)).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      // redis-server was stopped by the supervisor (SIGTERM), not by the terminal's signal.
      expect(readFileSync(join(dataDir, 'redis.log'), 'utf8')).not.toContain('Received SIGINT');
    }
    const lines = readdirSync(logDir)
      .map((f) => readFileSync(join(logDir, f), 'utf8'))
      .join('')
      .split('\n')
      .filter(Boolean);
    expect(lines).toHaveLength(answered);
  });

  // Ctrl-C hung for 96 s while a dashboard was open: the admin server's stop waited for its
  // stream, which a browser keeps open for ever, and no line said what the stop waited for.
  test('a stop with a dashboard stream open and buyers buying ends the stream itself and exits 0', async () => {
    const dataDir = tempDir('data');
    const logDir = tempDir('logs');
    dirs.push(dataDir, logDir);
    const ports = await freePorts(4);
    const adminPort = await freePort();
    const token = 'token-for-the-stop-test-0123456789';
    const proc = run({
      REDIS_URL: '',
      SPIKE_DATA_DIR: dataDir,
      SPIKE_LOG_DIR: logDir,
      SPIKE_PORTS: ports.join(','),
      SPIKE_NGINX: '0',
      SPIKE_TOTAL: '100000',
      SPIKE_ADMIN_PORT: String(adminPort),
      SPIKE_ADMIN_TOKEN: token,
    });
    expect(await readUntil(proc, 'ready:', 60_000)).toContain('ready:');
    const events = await fetch(`http://127.0.0.1:${adminPort}/dashboard/events`, { headers: { Authorization: `Bearer ${token}` } });
    expect(events.status).toBe(200);
    const reader = events.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    // Buyers keep buying until the workers stop answering.
    let buying = true;
    const buyers = (async () => {
      let n = 0;
      while (buying) {
        const answered = await fetch(`http://127.0.0.1:${ports[n % 4]}/buy/ticket?user=stop${n++}`).catch(() => undefined);
        if (!answered) break;
      }
      return n;
    })();
    await Bun.sleep(200);
    proc.kill('SIGTERM');
    // The node ends the stream itself: the test's reader holds it open and never lets go.
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read());
    const exited = await Promise.race([proc.exited, Bun.sleep(30_000).then(() => 'still running')]);
    buying = false;
    expect(await buyers).toBeGreaterThan(0);
    if (exited === 'still running') proc.kill('SIGKILL');
    expect(exited).toBe(0);
    expect(await readUntil(proc, 'spike: stopped', 1000)).toContain('stopped: workers');
  });

  // A stranger's first afternoon: a second start said "a redis-server is already using …/data", not
  // that spike ran there; a start that failed on a taken port had already created the default sale
  // (the corrected start then ignored SPIKE_TOTAL=5); after a kill -9 the leftover nginx kept
  // serving the old config and outlived the next Ctrl-C.
  test('one spike per folder: a second start is refused naming the first, a failed start creates nothing, a killed one is taken over', async () => {
    const dataDir = tempDir('one-per-folder');
    dirs.push(dataDir);
    const ports = await freePorts(4);
    const nginxPort = await freePort();
    const env = {
      REDIS_URL: '',
      SPIKE_DATA_DIR: dataDir,
      SPIKE_LOG_DIR: tempDir('one-per-folder-logs'),
      SPIKE_PORTS: ports.join(','),
      SPIKE_NGINX: '1',
      SPIKE_NGINX_LISTEN: `127.0.0.1:${nginxPort}`,
      SPIKE_ADMIN_PORT: '0',
    };
    // A taken port: exit 2 before anything exists (no sale, no Redis left behind).
    const holder = Bun.listen({ hostname: '127.0.0.1', port: ports[2]!, socket: { data() {} } });
    const failed = run({ ...env, SPIKE_TOTAL: '7' });
    expect(await failed.exited).toBe(2);
    expect(await new Response(failed.stderr).text()).toContain(`SPIKE_PORTS: port ${ports[2]} on 127.0.0.1 is taken`);
    holder.stop(true);
    expect(existsSync(join(dataDir, 'redis.pid'))).toBe(false);

    const first = run({ ...env, SPIKE_TOTAL: '7' });
    const out = await readUntil(first, 'dashboard:', 60_000);
    expect(out).toContain('total 7,');
    expect(out).toMatch(
      new RegExp(`buyers: http://127\\.0\\.0\\.1:${nginxPort}/ \\(the sales on offer: http://127\\.0\\.0\\.1:${nginxPort}/sales\\)`),
    );
    const second = run(env);
    expect(await second.exited).toBe(2);
    expect(await new Response(second.stderr).text()).toContain(
      `spike is already running in ${dataDir} (pid ${first.pid}: workers on ${ports.join(', ')})`,
    );

    // kill -9: its redis-server and nginx stay; the next start stops them, says so, and serves.
    const redisPid = Number(readFileSync(join(dataDir, 'redis.pid'), 'utf8'));
    const nginxPid = Number(readFileSync(join(dataDir, 'nginx', 'nginx.pid'), 'utf8'));
    first.kill('SIGKILL');
    await first.exited;
    expect(isAlive(redisPid) && isAlive(nginxPid)).toBe(true);
    const next = run(env);
    expect(await readUntil(next, 'ready:', 60_000)).toContain('ready:');
    expect(isAlive(redisPid) || isAlive(nginxPid)).toBe(false);
    const buy = (await (await fetch(`http://127.0.0.1:${nginxPort}/buy/ticket?user=after-kill`)).json()) as { code: number };
    expect(buy.code).toBe(1);
    next.kill('SIGTERM');
    expect(await next.exited).toBe(0);
    const err = await new Response(next.stderr).text();
    expect(err).toMatch(
      new RegExp(
        `WARN {2}an earlier spike in ${dataDir} was killed and left redis-server \\(pid ${redisPid}\\) and nginx \\(pid ${nginxPid}\\) running: stopped`,
      ),
    );
  });

  test('a worker port already taken stops the start with exit 2 and one line naming SPIKE_PORTS', async () => {
    const ports = await freePorts(4);
    const taken = Bun.serve({ port: ports[2]!, hostname: '127.0.0.1', fetch: () => new Response('busy') });
    try {
      const proc = run({
        REDIS_URL: '',
        SPIKE_DATA_DIR: tempDir('taken'),
        SPIKE_LOG_DIR: tempDir('taken-logs'),
        SPIKE_PORTS: ports.join(','),
        SPIKE_NGINX: '0',
        SPIKE_ADMIN_PORT: '0',
      });
      expect(await proc.exited).toBe(2);
      const err = await new Response(proc.stderr).text();
      expect(err).toContain('SPIKE_PORTS');
      expect(err).toContain(String(ports[2]));
      expect(err).not.toContain('TypeError');
    } finally {
      taken.stop(true);
    }
  });

  // A second node on the same host once failed with Bun's "Is port 3100 in use?" and no setting named.
  test('an admin port already taken stops the start with exit 2 naming SPIKE_ADMIN_PORT', async () => {
    const adminPort = await freePort();
    const taken = Bun.serve({ port: adminPort, hostname: '127.0.0.1', fetch: () => new Response('busy') });
    try {
      const proc = run({
        REDIS_URL: '',
        SPIKE_DATA_DIR: tempDir('admin-taken'),
        SPIKE_LOG_DIR: tempDir('admin-taken-logs'),
        SPIKE_PORTS: (await freePorts(4)).join(','),
        SPIKE_NGINX: '0',
        SPIKE_ADMIN_PORT: String(adminPort),
      });
      expect(await proc.exited).toBe(2);
      expect(await new Response(proc.stderr).text()).toContain(
        `SPIKE_ADMIN_PORT=${adminPort}: the port on 127.0.0.1 is taken by another program`,
      );
    } finally {
      taken.stop(true);
    }
  });

  // Bun takes a .tsx file's JSX settings from the nearest tsconfig of the working folder, not
  // the file's: started from elsewhere the dashboard's JSX looked for React. The file says it itself.
  test('starts from any working folder', async () => {
    const dataDir = tempDir('elsewhere');
    dirs.push(dataDir);
    const proc = Bun.spawn([process.execPath, SUPERVISOR], {
      cwd: tmpdir(),
      env: {
        ...process.env,
        REDIS_URL: '',
        SPIKE_DATA_DIR: dataDir,
        SPIKE_LOG_DIR: join(dataDir, 'logs'),
        SPIKE_PORTS: (await freePorts(4)).join(','),
        SPIKE_NGINX: '0',
        SPIKE_ADMIN_PORT: '0',
      },
      stdout: 'pipe',
      stderr: 'pipe',
    });
    try {
      expect(await readUntil(proc, 'ready:')).toContain('ready:');
    } finally {
      proc.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    }
  });

  // A SIGTERM while it was still starting killed it outright (exit 143), before its handlers
  // existed, leaving its redis-server behind.
  test('a signal during the start stops it cleanly once started, leaving no child behind', async () => {
    const dataDir = tempDir('early');
    dirs.push(dataDir);
    const proc = run({
      REDIS_URL: '',
      SPIKE_DATA_DIR: dataDir,
      SPIKE_LOG_DIR: join(dataDir, 'logs'),
      SPIKE_PORTS: (await freePorts(4)).join(','),
      SPIKE_NGINX: '0',
      SPIKE_ADMIN_PORT: '0',
    });
    // The pid file can exist before its number is written (and pid 0 would name our own group).
    const pidOf = () => (existsSync(join(dataDir, 'redis.pid')) ? Number(readFileSync(join(dataDir, 'redis.pid'), 'utf8')) : 0);
    for (let i = 0; i < 500 && !(pidOf() > 0); i++) await Bun.sleep(10);
    const redisPid = pidOf();
    expect(redisPid).toBeGreaterThan(0);
    proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(isAlive(redisPid)).toBe(false);
  });

  test('a misspelt setting or a value in the wrong case stops the start with exit 2 and one line, no stack trace', async () => {
    for (const [env, said] of [
      [{ SPIKE_TOTL: '5' }, 'spike: SPIKE_TOTL is not a setting; did you mean SPIKE_TOTAL?'],
      [{ SPIKE_LOG_FORMAT: 'JSON' }, 'spike: SPIKE_LOG_FORMAT=JSON is not accepted; accepted: text (default) or json'],
    ] as const) {
      const proc = run({ ...env, REDIS_URL: '' });
      expect(await proc.exited).toBe(2);
      expect((await new Response(proc.stderr).text()).trim()).toBe(said);
    }
  });

  test('SPIKE_HOST that is not an address stops the start with exit 2', async () => {
    const proc = run({ SPIKE_HOST: 'notanip', REDIS_URL: '' });
    expect(await proc.exited).toBe(2);
    expect(await new Response(proc.stderr).text()).toContain('SPIKE_HOST=notanip is not accepted');
  });

  // A leftover nginx (after a SIGKILL of the supervisor) holds the port: the start must not claim
  // nginx is listening while its error log says bind() failed.
  test("with nginx's port held by someone else, SPIKE_NGINX=1 fails the start and auto warns in one line", async () => {
    const nginxPort = await freePort();
    const holder = Bun.serve({ port: nginxPort, hostname: '127.0.0.1', fetch: () => new Response('not nginx') });
    try {
      const base = {
        REDIS_URL: '',
        SPIKE_LOG_DIR: tempDir('held-logs'),
        SPIKE_NGINX_LISTEN: `127.0.0.1:${nginxPort}`,
        SPIKE_ADMIN_PORT: '0',
      };
      const strict = run({ ...base, SPIKE_DATA_DIR: tempDir('held'), SPIKE_PORTS: (await freePorts(4)).join(','), SPIKE_NGINX: '1' });
      expect(await strict.exited).toBe(1);
      expect(await new Response(strict.stderr).text()).toContain(`nginx could not listen on 127.0.0.1:${nginxPort}`);
      const auto = run({ ...base, SPIKE_DATA_DIR: tempDir('held2'), SPIKE_PORTS: (await freePorts(4)).join(','), SPIKE_NGINX: 'auto' });
      const out = await readUntil(auto, 'ready:');
      auto.kill('SIGTERM');
      await auto.exited;
      expect(out).toContain('nginx not started');
      expect(out).not.toContain('nginx listening');
    } finally {
      holder.stop(true);
    }
  });

  test('a leftover nginx from a SIGKILLed run is named by its pid', async () => {
    const dataDir = tempDir('leftover');
    dirs.push(dataDir);
    // A live process whose pid the earlier run's nginx.pid names (this test process stands in).
    mkdirSync(join(dataDir, 'nginx'), { recursive: true });
    writeFileSync(join(dataDir, 'nginx', 'nginx.pid'), `${process.pid}\n`);
    const proc = run({
      REDIS_URL: '',
      SPIKE_DATA_DIR: dataDir,
      SPIKE_LOG_DIR: tempDir('leftover-logs'),
      SPIKE_PORTS: (await freePorts(4)).join(','),
      SPIKE_NGINX: '1',
      SPIKE_NGINX_LISTEN: `127.0.0.1:${await freePort()}`,
      SPIKE_ADMIN_PORT: '0',
    });
    expect(await proc.exited).toBe(1);
    expect(await new Response(proc.stderr).text()).toContain(`an nginx from an earlier run (pid ${process.pid})`);
  });
});

describe('stopping and resetting safely', () => {
  const privateEnv = async (dataDir: string) => ({
    REDIS_URL: '',
    SPIKE_DATA_DIR: dataDir,
    SPIKE_LOG_DIR: join(dataDir, 'logs'),
    SPIKE_PORTS: (await freePorts(4)).join(','),
    SPIKE_NGINX: '0',
    SPIKE_ADMIN_PORT: '0',
  });
  const redisPidIn = (dataDir: string) => Number(readFileSync(join(dataDir, 'redis.pid'), 'utf8'));

  // A closed terminal sent SIGHUP, which killed the supervisor at once and left Redis running;
  // `bun run start | tee log` ended by Ctrl-C made the supervisor's next log line fail (EPIPE),
  // which killed it half-way through its stop.
  test('SIGHUP, and Ctrl-C with the reader of its output gone, stop it gracefully with nothing left behind', async () => {
    for (const how of ['SIGHUP', 'broken stdout'] as const) {
      const dataDir = tempDir('hup');
      dirs.push(dataDir);
      const proc = run(await privateEnv(dataDir));
      expect(await readUntil(proc, 'ready:')).toContain('ready:');
      const redisPid = redisPidIn(dataDir);
      if (how === 'SIGHUP') proc.kill('SIGHUP');
      else {
        await proc.stdout.cancel();
        proc.kill('SIGINT');
      }
      expect(await proc.exited).toBe(0);
      expect(isAlive(redisPid)).toBe(false);
    }
  });

  // SPIKE_RESET=1 left in the environment archived 50 paid orders at the next restart and sold
  // their seats again.
  test('a reset of a sale that holds paid or reserved orders is refused with exit 2 and the counts, unless forced', async () => {
    const dataDir = tempDir('reset-guard');
    dirs.push(dataDir);
    const env = await privateEnv(dataDir);
    const first = run(env);
    await readUntil(first, 'ready:');
    const port = env.SPIKE_PORTS.split(',')[0];
    for (const user of ['ann', 'bob', 'cy']) {
      const { orderId } = (await (await fetch(`http://127.0.0.1:${port}/buy/ticket?user=${user}`)).json()) as { orderId: string };
      if (user !== 'cy')
        expect((await fetch(`http://127.0.0.1:${port}/orders/${orderId}/pay?user=${user}`, { method: 'POST' })).status).toBe(200);
    }
    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const refused = run({ ...env, SPIKE_RESET: '1' });
    expect(await refused.exited).toBe(2);
    expect(await new Response(refused.stderr).text()).toContain(
      'SPIKE_RESET: sale ticket_hash_key holds 2 paid and 1 reserved orders; a reset would move them to the orders_archive table',
    );
    // A setting that cannot apply to an existing sale is said, not ignored.
    const kept = run({ ...env, SPIKE_TOTAL: '5' });
    const out = await readUntil(kept, 'ready:');
    expect(out).toContain('sale ticket_hash_key: 3 of 10000 sold (continuing)');
    kept.kill('SIGTERM');
    expect(await kept.exited).toBe(0);
    // A warning is a WARN line, on stderr.
    expect(await new Response(kept.stderr).text()).toMatch(
      /WARN {2}SPIKE_TOTAL=5 does not apply: sale ticket_hash_key exists with 10000 tickets/,
    );

    const forced = Bun.spawn([process.execPath, SUPERVISOR, '--reset', '--force'], {
      env: { ...process.env, ...env },
      stdout: 'pipe',
      stderr: 'pipe',
    });
    expect(await readUntil(forced, 'ready:')).toContain('sale ticket_hash_key: 0 of 10000 sold (reset)');
    forced.kill('SIGTERM');
    expect(await forced.exited).toBe(0);
  });
});
