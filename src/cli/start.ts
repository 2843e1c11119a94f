/** `bun run start [-- --reset [--force]]`: runs the supervisor until a signal stops it. */
import { log } from '../log.ts';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { resolve } from 'node:path';
import { claim, runningSpike, stopLeftovers } from '../services/data-dir.ts';
import { notifySystemd } from '../services/systemd.ts';
import { startSupervisor, type Supervisor } from '../supervisor/supervisor.ts';
import { parseCommandLine, usageError } from './args.ts';

const USAGE = `usage: bun run start [-- --reset [--force]]
  --reset   wipe the default sale (counts, buyers, orders; its database rows move to
            orders_archive) and start it again with SPIKE_TOTAL tickets; refused while
            it holds reserved or paid orders, unless
  --force   is given too
  --help    this text
Settings are environment variables (README, Settings), e.g. SPIKE_TOTAL=500 bun run start`;

/** A start that failed because of a setting stops with exit 2, like a bad value; anything else with 1. */
function exitOnStartFailure(error: unknown): never {
  const setting = error instanceof ConfigError;
  console.error(`spike: cannot start: ${error instanceof Error ? error.message : error}`);
  process.exit(setting ? 2 : 1);
}

/**
 * One stop request may arrive as several signals: Ctrl-C reaches the whole foreground process
 * group, and `bun run` forwards it too. Signals within this long of the first are that same
 * request; a later one means "exit now".
 */
const SAME_REQUEST_MS = 2000;

async function main(): Promise<void> {
  const { positionals } = parseCommandLine(Bun.argv.slice(2), { reset: { type: 'boolean' }, force: { type: 'boolean' } }, USAGE);
  if (positionals.length > 0) usageError(`unexpected argument ${positionals[0]}`, USAGE);
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`spike: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  for (const warning of config.warnings) log.warn(warning);
  const release = await claimDataDir(config);
  // The handlers come first: a signal during the start waits for it, then stops what it started
  // (without them, a SIGTERM at that moment killed the process and left its children running).
  let starting: Promise<Supervisor> | undefined;
  let firstAt = 0;
  const shutdown = async (signal: string) => {
    if (firstAt > 0) {
      if (Date.now() - firstAt < SAME_REQUEST_MS) return;
      log.error(`spike: ${signal} again, exiting now`);
      process.exit(1);
    }
    firstAt = Date.now();
    log.info(`spike: ${signal}: stopping (in-flight requests finish first)`);
    notifySystemd(Bun.env, 'STOPPING=1', `STATUS=stopping (${signal})`);
    const running = await starting?.catch(() => undefined);
    await running?.stop();
    release();
    log.info('spike: stopped');
    process.exit(0);
  };
  // A closed terminal (SIGHUP) stops it like Ctrl-C: the children are never left behind.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void shutdown(signal));
  let supervisor: Supervisor | undefined;
  starting = startSupervisor(config, {
    onFatal: (error) => {
      // During the start the failure also rejects startSupervisor, which stops what it started.
      if (!supervisor) return;
      log.error(`spike: ${error.message}; stopping`);
      void supervisor.stop().then(() => {
        release();
        process.exit(1);
      });
    },
  });
  try {
    supervisor = await starting;
    // Under systemd (deploy/systemd/spike.service, Type=notify): the node sells from now on.
    if (firstAt === 0) notifySystemd(Bun.env, 'READY=1', `STATUS=selling on ports ${config.ports.join(', ')}`);
  } catch (error) {
    release();
    if (firstAt === 0) exitOnStartFailure(error);
  }
}

/**
 * The data folder for this run: refused while another spike runs in it (exit 2, naming it), and
 * cleared of what a killed run left running there (its redis-server and nginx, said at WARN).
 * Returns the release of the folder's record.
 */
async function claimDataDir(config: Config): Promise<() => void> {
  const dir = resolve(config.dataDir);
  const running = runningSpike(dir);
  if (running) {
    console.error(
      `spike: spike is already running in ${dir} (pid ${running.pid}: workers on ${running.ports.join(', ')}${running.adminPort ? `, admin API on port ${running.adminPort}` : ''}); stop it first (kill ${running.pid}), or give this one its own SPIKE_DATA_DIR`,
    );
    process.exit(2);
  }
  const left = await stopLeftovers(dir);
  if (left.length > 0)
    log.warn(`an earlier spike in ${dir} was killed and left ${left.join(' and ')} running: stopped, so this start takes over`);
  return claim(dir, { ports: config.ports, adminPort: config.adminPort });
}

if (import.meta.main) await main();
