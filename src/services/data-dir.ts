/**
 * One spike per data folder. A second start in a folder a running spike uses stops at once, naming
 * it (it said "a redis-server is already using …/data", never that spike ran there); what a killed
 * run left behind (its redis-server and nginx, which outlive a SIGKILL of the supervisor) is stopped
 * with a WARN line naming it, instead of blocking the next start or serving the old config.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isAlive } from './child.ts';

/** What the folder's record says of the spike that uses it. */
export interface DataDirRecord {
  readonly pid: number;
  readonly ports: readonly number[];
  readonly adminPort: number;
  readonly startedAt: string;
}

const RECORD = 'spike.json';

/** The command line of `pid` (Linux), or '' when it is gone. */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function readPid(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

function readRecord(dir: string): DataDirRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, RECORD), 'utf8')) as DataDirRecord;
  } catch {
    return undefined;
  }
}

/** A spike already running in `dir`: a live process, started by `start.ts`, other than this one. */
export function runningSpike(dir: string): DataDirRecord | undefined {
  const record = readRecord(resolve(dir));
  if (!record || record.pid === process.pid || !isAlive(record.pid)) return undefined;
  return commandLine(record.pid).includes('start.ts') ? record : undefined;
}

/** Stops `pid` with `signal`, then SIGKILL after 5 s; resolves once it is gone. */
async function stop(pid: number, signal: NodeJS.Signals): Promise<void> {
  process.kill(pid, signal);
  const deadline = Date.now() + 5000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) process.kill(pid, 'SIGKILL');
    await Bun.sleep(50);
  }
}

/**
 * Stops the redis-server and nginx a killed run left in `dir`: each named by the pid file it wrote
 * there, alive, and its command line naming the program: a pid reused by another program is left
 * alone. Returns a line for each, for the WARN it is said in.
 */
export async function stopLeftovers(dir: string): Promise<string[]> {
  const folder = resolve(dir);
  const said: string[] = [];
  for (const [what, file, signal] of [
    ['redis-server', join(folder, 'redis.pid'), 'SIGTERM'],
    ['nginx', join(folder, 'nginx', 'nginx.pid'), 'SIGQUIT'],
  ] as const) {
    const pid = readPid(file);
    if (pid <= 0 || !isAlive(pid)) continue;
    const line = commandLine(pid);
    // redis-server renames its process (`redis-server 127.0.0.1:PORT`): its name, and the pid file it wrote here, say it is ours.
    if (!line.includes(what)) continue;
    await stop(pid, signal);
    rmSync(file, { force: true });
    said.push(`${what} (pid ${pid})`);
  }
  return said;
}

/** Records this process as the folder's spike; the returned function removes the record (if still ours). */
export function claim(dir: string, record: Omit<DataDirRecord, 'pid' | 'startedAt'>): () => void {
  const folder = resolve(dir);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, RECORD), `${JSON.stringify({ pid: process.pid, ...record, startedAt: new Date().toISOString() })}\n`);
  return () => {
    if (readRecord(folder)?.pid === process.pid) rmSync(join(folder, RECORD), { force: true });
  };
}

/** Whether `dir` holds a record at all (a run's, live or not). */
export const hasRecord = (dir: string) => existsSync(join(resolve(dir), RECORD));
