/** Starting and stopping the server processes spike runs as children (redis-server, nginx). */
import { readFileSync } from 'node:fs';
import type { Subprocess } from 'bun';
import pkg from '../../package.json' with { type: 'json' };

/** `bun@X.Y.Z`: the Bun the project runs on; package.json's packageManager is its one source. */
export const BUN = pkg.packageManager;

/** The binary's path, or an error that says how to install it. */
export function requireBinary(name: string, aptPackage: string): string {
  const path = Bun.which(name) ?? Bun.which(name, { PATH: '/usr/sbin:/usr/local/sbin:/sbin' });
  if (!path) {
    throw new Error(
      `${name} is not installed; install it with: apt-get install -y ${aptPackage} (or run 'npx -y ${BUN} run start' as root, which installs it)`,
    );
  }
  return path;
}

/** Sends `signal`, waits up to `graceMs` for the exit, then kills. */
export async function stopChild(child: Subprocess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const exited = await Promise.race([child.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
  if (!exited) {
    child.kill('SIGKILL');
    await child.exited;
  }
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped: an orphan where the first process does not reap) is gone too.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/**
 * `cmd` run in a session of its own (setsid), so that a Ctrl-C in the terminal, or a signal to the
 * whole process group, reaches only the supervisor, which then stops its children in order
 * (nginx, the workers, Redis last). setsid execs without forking here (a spawned child is not a
 * group leader), so the child's pid is the server's own.
 */
export function ownSession(cmd: string[]): string[] {
  const setsid = Bun.which('setsid') ?? Bun.which('setsid', { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' });
  return setsid ? [setsid, ...cmd] : cmd;
}
