// The README's shell examples, run in order as a new user would, against `bun run start` itself:
// each ```sh block's lines are executed as written, in a folder of their own (a copy of the
// checkout by symlinks, so `data/`, `logs/` and `.env` are the example's). Only the ports differ:
// tests never take 80 or 3001, so the example's addresses are pointed at free ones. A `bun run
// start` line stops the running spike (Ctrl-C) and starts it as the line says. Before, the
// waiting-room example was refused after the quick start and its "403" line sold a ticket.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { freePort } from '../../src/services/free-port.ts';
import { freePorts, tempDir } from '../helpers/servers.ts';

setDefaultTimeout(240_000);

const ROOT = join(import.meta.dir, '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** What each command the README shows must print (stdout and stderr); a command missing here fails the test. */
const EXPECTED: [command: RegExp, output: RegExp][] = [
  [/^curl 'http:\/\/127\.0\.0\.1\/buy\/ticket\?user=alice'$/, /"code":1,.*"orderId":"\d+-\d+"/],
  [/\/orders\/<orderId>\/pay\?user=alice'$/, /"state":"paid"/],
  [/\/orders\/<orderId>\/ticket\?user=alice'$/, /"code":"SPK1\.[^"]+","qr":"<svg/],
  [/^bun run ticket -- verify <code>$/, /^valid: sale ticket_hash_key, order \d+-\d+, user alice, general/m],
  [/^curl 'http:\/\/127\.0\.0\.1:3001\/buy\/ticket'$/, /"code":1,.*"secret":"/],
  [/^bun run audit$/, /clean/],
  [/^bun run stats$/, /^sale ticket_hash_key\n\s+port\s+requests/m],
  [/^echo "SPIKE_ADMIN_TOKEN=\$\(openssl rand -hex 32\)" >> \.env$/, /^$/],
  [/^bun run sale -- create concert/, /concert/],
  [/\/buy\/ticket\?sale=concert&user=alice'$/, /"code":1,/],
  [/^curl 'http:\/\/127\.0\.0\.1\/buy\/ticket\?user=bob'$/, /"error":"not_admitted"/],
  [/^T=\$\(curl -s -X POST 'http:\/\/127\.0\.0\.1\/queue\/join\?user=bob'/, /^$/],
  [/^until curl .*\/queue\/status' \| grep -q admitted; do sleep 1; done$/, /^$/],
  [/-H "X-Queue-Ticket: \$T" 'http:\/\/127\.0\.0\.1\/buy\/ticket\?user=bob'$/, /"code":1,/],
];
/** Lines not run: the test command is this suite itself. */
const NOT_RUN = /^npx -y bun@\S+ run test$/;
/** A start, as the README writes one: optional VAR=value settings, then `bun run start` (or its npx form). */
const START = /^((?:[A-Z_]+=\S+\s+)*)(?:npx -y bun@\S+|bun) run start(?: -- (.*))?$/;

/** Every ```sh block of the README, as lines without their comments. */
function blocks(): string[][] {
  return [...README.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) =>
    m[1]!
      .split('\n')
      .map((line) => line.replace(/\s+# .*$/, '').trim())
      .filter(Boolean),
  );
}

let dir: string;
let ports: number[];
let admin: number;
let edge: number;
let spike: Subprocess<'ignore', 'pipe', 'pipe'> | undefined;
let output = '';
const seen = { orderId: '', code: '' };

/** The environment of every command: nothing of this test's own, the ports free ones. */
function env(extra: Record<string, string> = {}): Record<string, string> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SPIKE_') && k !== 'REDIS_URL'));
  return {
    ...(clean as Record<string, string>),
    SPIKE_PORTS: ports.join(','),
    SPIKE_ADMIN_PORT: String(admin),
    SPIKE_NGINX_LISTEN: `127.0.0.1:${edge}`,
    ...extra,
  };
}

/** The line with the example's addresses on this test's ports, and what earlier answers gave for its placeholders. */
function localize(line: string): string {
  return line
    .replaceAll('http://127.0.0.1/', `http://127.0.0.1:${edge}/`)
    .replaceAll('127.0.0.1:3001', `127.0.0.1:${ports[0]}`)
    .replaceAll('<orderId>', seen.orderId)
    .replaceAll('<code>', seen.code);
}

async function stop(): Promise<void> {
  if (!spike) return;
  spike.kill('SIGINT');
  expect(await spike.exited).toBe(0);
  spike = undefined;
}

/** `bun run start` as the line gives it; resolves at its `ready:` line. */
async function start(settings: string, args: string | undefined): Promise<void> {
  await stop();
  const extra = Object.fromEntries(
    settings.trim()
      ? settings
          .trim()
          .split(/\s+/)
          .map((kv) => kv.split('=', 2) as [string, string])
      : [],
  );
  const proc = Bun.spawn([process.execPath, 'run', 'start', ...(args ? ['--', ...args.split(/\s+/)] : [])], {
    cwd: dir,
    env: env(extra),
    stdout: 'pipe',
    stderr: 'pipe',
  });
  spike = proc;
  output = '';
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output += decoder.decode(chunk);
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  while (!output.includes(' ready: ')) {
    if (proc.exitCode !== null) throw new Error(`bun run start exited ${proc.exitCode}:\n${output}`);
    await Bun.sleep(50);
  }
}

/** One line in bash, as a shell would run it; an assignment (`T=$(…)`) keeps its value for the next lines. */
function run(line: string, vars: Record<string, string>): { code: number; out: string } {
  const assignment = /^([A-Za-z_]\w*)=(\$\(.*\))$/.exec(line);
  const script = assignment ? `printf %s ${assignment[2]}` : line;
  const done = Bun.spawnSync(['timeout', '60', 'bash', '-o', 'pipefail', '-c', localize(script)], {
    cwd: dir,
    env: env(vars),
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const stdout = done.stdout.toString();
  if (assignment) {
    vars[assignment[1]!] = stdout;
    return { code: done.exitCode ?? 1, out: '' };
  }
  const out = `${stdout}${done.stderr.toString()}`;
  seen.orderId = /"orderId":"(\d+-\d+)"/.exec(stdout)?.[1] ?? seen.orderId;
  seen.code = /"code":"(SPK1\.[^"]+)"/.exec(stdout)?.[1] ?? seen.code;
  return { code: done.exitCode ?? 1, out };
}

beforeAll(async () => {
  dir = tempDir('readme');
  // The checkout, but with the example's own data, logs and .env.
  for (const entry of readdirSync(ROOT))
    if (!['data', 'logs', '.env', '.git'].includes(entry)) symlinkSync(join(ROOT, entry), join(dir, entry));
  ports = await freePorts(4);
  [admin, edge] = [await freePort(), await freePort()];
});
afterAll(async () => {
  await stop().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

describe("the README's examples", () => {
  test('run as written, in order, on one machine', async () => {
    const vars: Record<string, string> = {};
    let ran = 0;
    for (const block of blocks())
      for (const line of block) {
        if (NOT_RUN.test(line)) continue;
        const started = START.exec(line);
        if (started) {
          await start(started[1]!, started[2]);
          continue;
        }
        const expected = EXPECTED.find(([command]) => command.test(line));
        if (!expected) throw new Error(`the README shows a command this test does not check yet: ${line}`);
        const { code, out } = run(line, vars);
        if (code !== 0 || !expected[1].test(out)) throw new Error(`${line}\nexited ${code}, printed:\n${out}\nspike said:\n${output}`);
        ran++;
      }
    expect(ran).toBe(EXPECTED.length);
    expect(vars.T).toMatch(/^[\w-]+\.[\w-]+$/);
  });
});
