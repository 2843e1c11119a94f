// A node as a systemd service (deploy/systemd): the unit passes systemd's own checks, its example
// environment file names every setting and is accepted as it stands, and the node tells systemd
// it is ready only once it sells (Type=notify), and that it is stopping.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { Subprocess } from 'bun';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, SETTINGS } from '../../src/config.ts';
import { freePorts, startTestRedis, tempDir, type TestRedis } from '../helpers/servers.ts';
import { startSpikeProcess } from '../helpers/process.ts';

setDefaultTimeout(60_000);

const DEPLOY = join(import.meta.dir, '..', '..', 'deploy', 'systemd');
const UNITS = ['spike.service'];

describe('deploy/systemd', () => {
  for (const unit of UNITS) {
    test(`systemd-analyze verify accepts ${unit} with nothing on stderr`, () => {
      const run = Bun.spawnSync(['systemd-analyze', 'verify', join(DEPLOY, unit)], { stdout: 'pipe', stderr: 'pipe' });
      expect(run.stderr.toString()).toBe('');
      expect(run.exitCode).toBe(0);
    });

    test(`systemd-analyze security rates ${unit} 4.0 or lower`, () => {
      const run = Bun.spawnSync(['systemd-analyze', 'security', '--offline=yes', join(DEPLOY, unit)], { stdout: 'pipe', stderr: 'pipe' });
      const level = /Overall exposure level for \S+: (\d+\.\d)/.exec(run.stdout.toString());
      expect(level).not.toBeNull();
      expect(Number(level![1])).toBeLessThanOrEqual(4.0);
    });
  }

  test('spike.service waits for the node to say it is ready, stops it gracefully and keeps it in its folders', () => {
    const unit = readFileSync(join(DEPLOY, 'spike.service'), 'utf8');
    for (const line of [
      'Type=notify',
      'KillSignal=SIGTERM',
      'KillMode=mixed',
      'Restart=on-failure',
      'EnvironmentFile=/etc/spike/spike.env',
    ])
      expect(unit).toContain(`\n${line}\n`);
    expect(unit).toMatch(/\nReadWritePaths=\/var\/lib\/spike \/var\/log\/spike\n/);
    expect(unit).toMatch(/\nUser=spike\n/);
  });

  test('spike.env names every setting, refuses to start on its placeholders, and accepts its values once they are filled in', () => {
    const text = readFileSync(join(DEPLOY, 'spike.env'), 'utf8');
    const named = new Set([...text.matchAll(/^#?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!));
    expect(SETTINGS.filter((name) => !named.has(name))).toEqual([]);
    expect([...named].filter((name) => !(SETTINGS as readonly string[]).includes(name))).toEqual([]);
    const set = Object.fromEntries([...text.matchAll(/^([A-Z][A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    // As copied, the example's secrets are placeholders: a node started on them would be open to anyone who read it.
    expect(() => loadConfig(set, [])).toThrow(/the example's placeholder/);
    const filled = Object.fromEntries(Object.entries(set).map(([k, v]) => [k, v.startsWith('change-me') ? crypto.randomUUID() : v]));
    const config = loadConfig(filled, []);
    expect(config.redisSentinel?.master).toBe('spike');
    expect(config.nginx).toBe('off');
  });
});

describe('under systemd (Type=notify)', () => {
  let redis: TestRedis;
  let socat: Subprocess<'ignore', 'pipe', 'pipe'>;
  let dir: string;
  let received = '';

  beforeAll(async () => {
    redis = await startTestRedis();
    dir = tempDir('notify');
    // socat receives datagrams on a Unix socket as systemd's NOTIFY_SOCKET does.
    socat = Bun.spawn(['socat', '-u', `UNIX-RECV:${join(dir, 'notify.sock')}`, '-'], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
    void (async () => {
      for await (const chunk of socat.stdout) received += `${new TextDecoder().decode(chunk)}\n`;
    })();
    while (!existsSync(join(dir, 'notify.sock'))) await Bun.sleep(20);
  });
  afterAll(async () => {
    socat?.kill();
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the node says READY=1 once its workers sell, and STOPPING=1 when told to stop', async () => {
    const ports = await freePorts(2);
    const spike = await startSpikeProcess({
      NOTIFY_SOCKET: join(dir, 'notify.sock'),
      REDIS_URL: redis.url,
      SPIKE_PORTS: ports.join(','),
      SPIKE_NGINX: '0',
      SPIKE_ADMIN_PORT: '0',
      SPIKE_TOTAL: '10',
      SPIKE_RESET: 'force',
      SPIKE_DATA_DIR: join(dir, 'data'),
      SPIKE_LOG_DIR: join(dir, 'logs'),
    });
    const deadline = Date.now() + 10_000;
    while (!received.includes('READY=1') && Date.now() < deadline) await Bun.sleep(20);
    expect(received).toContain('READY=1');
    expect(received).toContain(`STATUS=selling on ports ${ports.join(', ')}`);
    expect(received).not.toContain('STOPPING=1');
    const answer = (await (await fetch(`http://127.0.0.1:${ports[0]}/buy/ticket?user=unit`)).json()) as { code: number };
    expect(answer.code).toBe(1);
    expect(await spike.stop()).toBe(0);
    expect(received).toContain('STOPPING=1');
  });
});
