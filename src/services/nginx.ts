/** Renders the runtime copy of nginx.conf and runs nginx with it. */
import type { Subprocess } from 'bun';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { EdgeLimits } from '../config.ts';
import { isAlive, ownSession, requireBinary, stopChild } from './child.ts';

export type { EdgeLimits } from '../config.ts';

export const NGINX_TEMPLATE = join(import.meta.dir, '..', '..', 'nginx.conf');

export interface Upstream {
  readonly host: string;
  readonly port: number;
  readonly weight: number;
}

export interface RenderOptions {
  /** nginx `listen` value: `80`, `127.0.0.1:8080`. */
  readonly listen: string;
  readonly upstreams: readonly Upstream[];
  /** Folder for the pid file, error log and temp files of this nginx. */
  readonly runtimeDir: string;
  /** The template's own limits when undefined. */
  readonly limits?: EdgeLimits;
  /** Open files per nginx worker (worker_rlimit_nofile; worker_connections a little below); the template's when undefined. */
  readonly openFiles?: number;
  /** Where nginx logs each answer's time, status and upstream statuses for the supervisor (edge-log.ts); none when undefined. */
  readonly edgeLog?: string;
}

/** `$msec $status $upstream_status`: when the last upstream status is not the status, nginx answered itself. */
export const EDGE_LOG_FORMAT = "log_format spike_edge '$msec $status $upstream_status';";

/** The original's weights, 1:2:3:4, for workers in port order (and 5, 6, … for more). */
export function weightedUpstreams(host: string, ports: readonly number[]): Upstream[] {
  return ports.map((port, i) => ({ host, port, weight: i + 1 }));
}

/**
 * The template with its `upstream load_rule` servers replaced (keeping their failover settings),
 * its `listen` replaced, and private temp paths added, so nothing is written outside `runtimeDir`.
 */
export function renderNginxConf(template: string, { listen, upstreams, runtimeDir, limits, openFiles, edgeLog }: RenderOptions): string {
  if (upstreams.length === 0) throw new Error('nginx needs at least one upstream');
  const serverLine = /^(\s*)server\s+[^\s;]+\s+weight=\d+([^;]*);\s*$/m;
  const first = serverLine.exec(template);
  if (!first) throw new Error('nginx.conf has no "server host:port weight=N ...;" line in upstream load_rule');
  const [, indent, options] = first;
  const servers = upstreams.map((u) => `${indent}server ${u.host}:${u.port} weight=${u.weight}${options};`).join('\n');
  const lines = template.split('\n');
  const kept = lines.filter((line) => !serverLine.test(line));
  const at = lines.findIndex((line) => serverLine.test(line));
  kept.splice(at, 0, servers);
  let conf = kept.join('\n');
  if (!/^\s*listen\s+80;/m.test(conf)) throw new Error('nginx.conf has no "listen 80;" line to replace');
  conf = conf.replace(/^(\s*)listen\s+80;/m, `$1listen ${listen};`);
  if (limits) conf = renderLimits(conf, limits);
  conf = swap(conf, /^(\s*)map \$remote_addr \$spike_client \{\n(\s*)default \$remote_addr;\n/m, (_, open, inner) =>
    [
      `${open}map $remote_addr $spike_client {`,
      `${inner}default $remote_addr;`,
      ...ipv6ClientMap(limits?.ipv6Prefix ?? 64, inner),
      '',
    ].join('\n'),
  );
  if (openFiles) {
    conf = swap(conf, /^worker_rlimit_nofile \d+;/m, `worker_rlimit_nofile ${openFiles};`);
    // Room for the log and listening files within the limit.
    conf = swap(conf, /^(\s*)worker_connections \d+;/m, (_, indent) => `${indent}worker_connections ${Math.max(512, openFiles - 32)};`);
    // Idle connections to the workers kept per nginx worker: a quarter of its files, at most 4096.
    conf = swap(
      conf,
      /^(\s*)keepalive \d+;/m,
      (_, indent) => `${indent}keepalive ${Math.min(4096, Math.max(64, Math.floor(openFiles / 4)))};`,
    );
  }
  if (edgeLog)
    conf = swap(
      conf,
      /^(\s*)access_log off;$/m,
      (_, indent) => `${indent}${EDGE_LOG_FORMAT}\n${indent}access_log ${resolve(edgeLog)} spike_edge buffer=32k flush=250ms;`,
    );
  const dir = resolve(runtimeDir);
  const temps = TEMP_KINDS.map((kind) => `    ${kind}_temp_path ${dir}/temp/${kind};`).join('\n');
  conf = conf.replace(/^http\s*\{\n/m, (open) => `${open}${temps}\n`);
  return conf;
}

/**
 * The `map $remote_addr $spike_client` lines that make an IPv6 client its network: the first
 * `prefix` bits (a multiple of 16), written `a:b:c:d::/64`. nginx writes an IPv6 address in its
 * short form (a run of zero groups as `::`), so there is one pattern per way the first groups can
 * be written: L groups, `::`, R groups. An IPv4-mapped address is its IPv4 address.
 */
export function ipv6ClientMap(prefix: number, indent = '        '): string[] {
  const keep = prefix / 16;
  const hex = (name: string) => `(?<${name}>[0-9a-f]{1,4})`;
  // Quoted: nginx reads `{` in a bare pattern as the start of a block.
  const lines = [`${indent}"~^::ffff:(?<v4>[0-9.]+)$" $v4;`];
  // Every form without a run of zeros, then with one: l groups before it, r after (l + r <= 7).
  const out = (group: (i: number) => string) => Array.from({ length: keep }, (_, i) => group(i + 1)).join(':');
  if (keep >= 8) return lines;
  lines.push(`${indent}"~^${Array.from({ length: 8 }, (_, i) => hex(`g${i + 1}`)).join(':')}$" ${out((i) => `$g${i}`)}::/${prefix};`);
  for (let l = 0; l <= 7; l++) {
    for (let r = 0; l + r <= 7; r++) {
      const left = Array.from({ length: l }, (_, i) => hex(`g${i + 1}`)).join(':');
      const right = Array.from({ length: r }, (_, i) => hex(`h${i + 1}`)).join(':');
      const group = (i: number) => (i <= l ? `$g${i}` : i <= 8 - r ? '0' : `$h${i - (8 - r)}`);
      lines.push(`${indent}"~^${left}::${right}$" ${out(group)}::/${prefix};`);
    }
  }
  return lines;
}

/** One rewrite of the template; throws when its line is gone, so a template edit cannot silently drop a limit. */
function swap(conf: string, pattern: RegExp, by: string | ((...match: string[]) => string)): string {
  if (!pattern.test(conf)) throw new Error(`nginx.conf has no line matching ${pattern}; cannot apply the rate limits`);
  return conf.replace(pattern, by as string);
}

/** The template's limit lines with `limits`' values; a 0 drops the limit, an empty list exempts no one. */
function renderLimits(template: string, { rate, burst, conn, exempt }: EdgeLimits): string {
  let conf = swap(template, /rate=\d+r\/s;/g, `rate=${Math.max(rate, 1)}r/s;`);
  conf = swap(conf, /burst=\d+/g, `burst=${burst}`);
  if (rate === 0) conf = swap(conf, /^\s*limit_req zone=.*\n/gm, '');
  conf = swap(conf, /^(\s*limit_conn spike_conn )\d+;\n/m, (_, head) => (conn === 0 ? '' : `${head}${conn};\n`));
  return swap(conf, /^(\s*)geo \$spike_exempt \{\n\s*default 0;\n(?:\s*[0-9a-fA-F.:/]+ 1;\n)*/m, (_, indent) =>
    [`${indent}geo $spike_exempt {`, `${indent}    default 0;`, ...exempt.map((net) => `${indent}    ${net} 1;`), ''].join('\n'),
  );
}

export interface Nginx {
  readonly confPath: string;
  readonly process: Subprocess;
  /** When it started, and so read its config (ms). */
  readonly startedAt: number;
  stop(): Promise<void>;
}

export function nginxInstalled(): boolean {
  try {
    requireBinary('nginx', 'nginx');
    return true;
  } catch {
    return false;
  }
}

const TEMP_KINDS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'] as const;

/** Creates the temp folders a rendered config names; nginx -t fails without them. */
export function makeRuntimeDirs(runtimeDir: string): void {
  for (const kind of TEMP_KINDS) mkdirSync(`${resolve(runtimeDir)}/temp/${kind}`, { recursive: true });
}

/** Writes the runtime copy, checks it with `nginx -t`, starts nginx in the foreground. */
export async function startNginx(options: RenderOptions & { template?: string }): Promise<Nginx> {
  const binary = requireBinary('nginx', 'nginx');
  const dir = resolve(options.runtimeDir);
  makeRuntimeDirs(dir);
  const confPath = `${dir}/nginx.conf`;
  writeFileSync(confPath, renderNginxConf(readFileSync(options.template ?? NGINX_TEMPLATE, 'utf8'), options));
  const args = ['-p', dir, '-e', `${dir}/error.log`, '-c', confPath, '-g', `daemon off; pid ${dir}/nginx.pid;`];
  const check = Bun.spawnSync([binary, '-t', ...args], { stdout: 'pipe', stderr: 'pipe' });
  if (check.exitCode !== 0) throw new Error(`nginx rejected ${confPath}:\n${check.stderr.toString().trim()}`);
  const pidFile = `${dir}/nginx.pid`;
  const leftover = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
  if (leftover > 0 && isAlive(leftover)) {
    throw new Error(
      `an nginx from an earlier run (pid ${leftover}) still uses ${dir} and its port; stop it (kill ${leftover}) and start again`,
    );
  }
  rmSync(pidFile, { force: true });
  const child = Bun.spawn(ownSession([binary, ...args]), { stdout: 'ignore', stderr: 'pipe' });
  // nginx writes its pid file only once it holds its listening sockets; a port in use makes it
  // retry bind() for 2.5 s and then exit. So: listening = the pid file appeared while it runs.
  const deadline = Date.now() + 10_000;
  while (child.exitCode === null && !existsSync(pidFile) && Date.now() < deadline) await Bun.sleep(20);
  if (child.exitCode !== null || !existsSync(pidFile)) {
    await stopChild(child, 'SIGQUIT', 1000);
    const log = existsSync(`${dir}/error.log`) ? readFileSync(`${dir}/error.log`, 'utf8').trim().split('\n').slice(-2).join('\n') : '';
    const err = (await new Response(child.stderr).text()).trim();
    throw new Error(`nginx could not listen on ${options.listen}:\n${err || log}`);
  }
  // SIGQUIT: graceful shutdown, in-flight requests finish.
  return { confPath, process: child, startedAt: Date.now(), stop: () => stopChild(child, 'SIGQUIT', 5000) };
}
