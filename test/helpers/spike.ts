/** Runs the real supervisor (four worker threads) in the test process, against a test Redis. */
import { rmSync } from 'node:fs';
import { loadConfig } from '../../src/config.ts';
import { startSupervisor, type Supervisor, type SupervisorOptions } from '../../src/supervisor/supervisor.ts';
import { freePorts, tempDir } from './servers.ts';

export interface TestSpike extends Supervisor {
  readonly ports: readonly number[];
  readonly logDir: string;
  /** The order writer's SQLite file. */
  readonly dbPath: string;
  /** `http://127.0.0.1:<port>` of worker `i`. */
  url(i: number): string;
  close(): Promise<void>;
}

/** Starts a supervisor on free ports with `env` on top of test defaults (no nginx, quiet). */
export async function startTestSpike(
  redisUrl: string,
  env: Record<string, string> = {},
  ports?: readonly number[],
  options: Omit<SupervisorOptions, 'say'> = {},
): Promise<TestSpike> {
  const portList = ports ?? (await freePorts(4));
  const logDir = env.SPIKE_LOG_DIR ?? tempDir('logs');
  const dataDir = env.SPIKE_DATA_DIR ?? tempDir('data');
  const config = loadConfig(
    {
      REDIS_URL: redisUrl,
      SPIKE_PORTS: portList.join(','),
      SPIKE_NGINX: '0',
      SPIKE_LOG_DIR: logDir,
      SPIKE_DATA_DIR: dataDir,
      SPIKE_ADMIN_PORT: '0',
      ...env,
    },
    [],
  );
  // SPIKE_TEST_SAY=1 prints what each supervisor says (its node id first): a failure's story.
  const say =
    Bun.env.SPIKE_TEST_SAY === '1' ? (line: string) => console.log(`[${config.nodeId}] ${new Date().toISOString()} ${line}`) : () => {};
  const supervisor = await startSupervisor(config, { say, ...options });
  return {
    ...supervisor,
    ports: portList,
    logDir,
    dbPath: config.dbPath,
    url: (i) => `http://127.0.0.1:${portList[i]}`,
    close: async () => {
      await supervisor.stop();
      if (!env.SPIKE_LOG_DIR) rmSync(logDir, { recursive: true, force: true });
      if (!env.SPIKE_DATA_DIR) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Waits until every worker of `spike` serves `sale` (a new sale reaches the worker threads by message). */
export async function servesSale(spike: TestSpike, sale: string): Promise<void> {
  for (let i = 0; i < spike.ports.length; i++) {
    const deadline = Date.now() + 5000;
    while ((await fetch(`${spike.url(i)}/stock?sale=${sale}`)).status !== 200) {
      if (Date.now() > deadline) throw new Error(`worker ${i} does not serve ${sale}`);
      await Bun.sleep(10);
    }
  }
}

/** `POST /sales` on the admin API at `admin` with `body`; the answer, for the test to check. */
export function adminCreateSale(admin: string, token: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${admin}/sales`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** Waits until every worker of `spike` runs `sale`'s waiting room (a status without a ticket is then a 400). */
export async function servesQueue(spike: TestSpike, sale: string): Promise<void> {
  for (let i = 0; i < spike.ports.length; i++) {
    const deadline = Date.now() + 5000;
    while ((await fetch(`${spike.url(i)}/queue/status?sale=${sale}`)).status !== 400) {
      if (Date.now() > deadline) throw new Error(`worker ${i} has no waiting room for ${sale}`);
      await Bun.sleep(20);
    }
  }
}

/** Waits until every worker reaches Redis again (after a restart under them): each worker's clients reconnect on their own time. */
export async function reachable(spike: TestSpike, workers = 4): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (let i = 0; i < workers; i++) {
    while ((await fetch(`${spike.url(i)}/healthz`)).status !== 200) {
      if (Date.now() > deadline) throw new Error(`worker ${i} does not reach Redis`);
      await Bun.sleep(50);
    }
  }
}
