/** `bun run start` as a child process, as an operator runs it, with its output kept for the test to read. */
import type { Subprocess } from 'bun';
import { join } from 'node:path';

const START = join(import.meta.dir, '..', '..', 'src', 'cli', 'start.ts');

export interface StartedSpike {
  readonly proc: Subprocess<'ignore', 'pipe', 'pipe'>;
  /** Everything it printed so far, stdout and stderr interleaved as they came. */
  output(): string;
  /** Waits until its output contains `text` (or throws after `ms`). */
  waitFor(text: string | RegExp, ms?: number): Promise<void>;
  /** SIGTERM, and its exit code. */
  stop(): Promise<number>;
}

/** Starts `bun src/cli/start.ts` with `env` on top of this process's environment; resolves once it is ready. */
export async function startSpikeProcess(env: Record<string, string>, args: string[] = []): Promise<StartedSpike> {
  const proc = Bun.spawn([process.execPath, START, ...args], {
    env: { ...process.env, ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  let text = '';
  const decoder = new TextDecoder();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += decoder.decode(chunk);
  };
  void drain(proc.stdout);
  void drain(proc.stderr);
  const started: StartedSpike = {
    proc,
    output: () => text,
    waitFor: async (wanted, ms = 30_000) => {
      const deadline = Date.now() + ms;
      const found = () => (typeof wanted === 'string' ? text.includes(wanted) : wanted.test(text));
      while (!found()) {
        if (proc.exitCode !== null) throw new Error(`spike exited (${proc.exitCode}) before printing ${wanted}:\n${text}`);
        if (Date.now() > deadline) throw new Error(`spike did not print ${wanted} within ${ms} ms:\n${text}`);
        await Bun.sleep(20);
      }
    },
    stop: async () => {
      proc.kill('SIGTERM');
      return proc.exited;
    },
  };
  await started.waitFor('ready:');
  return started;
}

/** Polls `ok` every 50 ms until it holds; returns how long that took (throws after `ms`). */
export async function until(what: string, ok: () => Promise<boolean>, ms = 60_000): Promise<number> {
  const started = Date.now();
  while (!(await ok().catch(() => false))) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(50);
  }
  return Date.now() - started;
}
