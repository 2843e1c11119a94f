/** Runs ab and wrk against loopback addresses and reads their results. */
import { join } from 'node:path';
import type { CrowdResult } from './crowd.ts';

export interface LoadResult {
  readonly tool: 'ab' | 'wrk' | 'crowd';
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Non-2xx answers and connection errors: the real failures. */
  readonly failures: number;
  /** ab only: answers whose length differed from the first ("Failed requests (Length)"). */
  readonly lengthChanges?: number;
  /** wrk only: the CPU time the load tool itself used, in µs (user + system). */
  readonly clientCpuUs?: number;
}

function loopbackOnly(url: string): void {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost') throw new Error(`benchmarks target loopback only, not ${host}`);
}

function number(text: string, pattern: RegExp, fallback?: number): number {
  const match = pattern.exec(text);
  if (!match) {
    if (fallback !== undefined) return fallback;
    throw new Error(`cannot read ${pattern} from:\n${text}`);
  }
  return Number(match[1]);
}

/** `ab -n N -c C url`, exactly as the original ran it. */
export async function ab(url: string, requests: number, concurrency: number): Promise<LoadResult> {
  loopbackOnly(url);
  const proc = Bun.spawn(['ab', '-q', '-n', String(requests), '-c', String(concurrency), url], { stdout: 'pipe', stderr: 'pipe' });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`ab failed (${code}): ${err}${out}`);
  return {
    tool: 'ab',
    requests: number(out, /Complete requests:\s+(\d+)/),
    seconds: number(out, /Time taken for tests:\s+([\d.]+)/),
    rps: number(out, /Requests per second:\s+([\d.]+)/),
    p50Ms: number(out, /^\s+50%\s+(\d+)/m),
    p99Ms: number(out, /^\s+99%\s+(\d+)/m),
    failures: number(out, /Non-2xx responses:\s+(\d+)/, 0) + number(out, /Exceptions: (\d+)/, 0) + number(out, /Connect: (\d+)/, 0),
    lengthChanges: number(out, /Length: (\d+)/, 0),
  };
}

export interface WrkOptions {
  readonly connections: number;
  /** Upper bound on the run; with `requests` it normally ends earlier. */
  readonly seconds: number;
  /** Stop after this many answers (0: run for `seconds`). */
  readonly requests?: number;
  readonly userPrefix?: string;
  /** No user parameter at all. */
  readonly anonymous?: boolean;
  /** wrk threads (default 1); several are needed to open thousands of connections quickly. */
  readonly threads?: number;
  /** Spread the buyers over this many sales `bs0`…, made by the bench (0: the default sale). */
  readonly sales?: number;
}

const USERS_LUA = join(import.meta.dir, 'users.lua');

/** `wrk -t1 -c C` with users.lua: a distinct user per request, optionally a fixed request count. */
export async function wrk(url: string, options: WrkOptions): Promise<LoadResult> {
  loopbackOnly(url);
  const threads = `-t${options.threads ?? 1}`;
  const proc = Bun.spawn(['wrk', threads, `-c${options.connections}`, `-d${options.seconds}s`, '--timeout', '10s', '-s', USERS_LUA, url], {
    env: {
      ...process.env,
      SPIKE_REQUESTS: String(options.requests ?? 0),
      SPIKE_USER_PREFIX: options.userPrefix ?? 'w',
      SPIKE_ANONYMOUS: options.anonymous ? '1' : '0',
      SPIKE_SALES: String(options.sales ?? 0),
    },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  let out = '';
  let signalled = false;
  const decoder = new TextDecoder();
  for await (const chunk of proc.stdout) {
    out += decoder.decode(chunk);
    if (!signalled && out.includes('LIMIT')) {
      signalled = true;
      proc.kill('SIGINT');
    }
  }
  const code = await proc.exited;
  const json = out.split('\n').find((line) => line.startsWith('{"requests"'));
  if (!json) throw new Error(`wrk failed (${code}): ${await new Response(proc.stderr).text()}${out}`);
  const r = JSON.parse(json) as { requests: number; duration_us: number; non2xx: number; errors: number; p50_us: number; p99_us: number };
  const seconds = r.duration_us / 1e6;
  const cpu = proc.resourceUsage()?.cpuTime;
  return {
    tool: 'wrk',
    requests: r.requests,
    seconds,
    rps: r.requests / seconds,
    p50Ms: r.p50_us / 1000,
    p99Ms: r.p99_us / 1000,
    failures: r.non2xx + r.errors,
    clientCpuUs: cpu ? Number(cpu.total) : undefined,
  };
}

/** A crowd run (crowd.ts, its own process); its progress lines go to `say`. */
export async function crowd(
  mode: 'queue' | 'plain',
  urls: readonly string[],
  { users, connections, sale, prefix }: { users: number; connections: number; sale: string; prefix: string },
  say: (line: string) => void,
): Promise<LoadResult & { crowd: CrowdResult }> {
  for (const url of urls) loopbackOnly(url);
  const proc = Bun.spawn(
    [process.execPath, join(import.meta.dir, 'crowd.ts'), mode, String(users), String(connections), sale, prefix, urls.join(',')],
    { stdout: 'pipe', stderr: 'pipe' },
  );
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) for (const line of decoder.decode(chunk).split('\n')) if (line.trim()) say(line.trim());
  })();
  const out = await new Response(proc.stdout).text();
  const code = await proc.exited;
  const json = out.split('\n').find((line) => line.startsWith('{"users"'));
  if (!json) throw new Error(`crowd failed (${code}): ${out}`);
  const result = JSON.parse(json) as CrowdResult;
  const cpu = proc.resourceUsage()?.cpuTime;
  return {
    tool: 'crowd',
    requests: result.requests,
    seconds: result.seconds,
    rps: result.requests / result.seconds,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    failures: result.failures,
    clientCpuUs: cpu ? Number(cpu.total) : undefined,
    crowd: result,
  };
}
