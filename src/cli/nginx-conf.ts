/**
 * `bun run nginx-conf -- --upstream host:port:weight,... [--listen 80] [--out FILE]`: renders an
 * nginx config for many nodes from the same template as nginx.conf (keep-alive, failover).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { makeRuntimeDirs, NGINX_TEMPLATE, renderNginxConf, type Upstream } from '../services/nginx.ts';
import { nginxLimits } from '../config.ts';
import { parseCommandLine, usageError } from './args.ts';

/** Parses `host:port:weight,...` (weight optional, default 1); throws with the bad part named. */
export function parseUpstreams(spec: string): Upstream[] {
  const upstreams = spec.split(',').map((part) => {
    const match = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})(?::(\d{1,3}))?$/.exec(part.trim());
    const port = Number(match?.[2]);
    const weight = Number(match?.[3] ?? 1);
    if (!match || port < 1 || port > 65535 || weight < 1)
      throw new Error(`--upstream part "${part}" is not host:port[:weight] (port 1-65535, weight 1-999)`);
    return { host: match[1]!, port, weight };
  });
  if (upstreams.length === 0) throw new Error('--upstream needs at least one host:port[:weight]');
  return upstreams;
}

const USAGE = `usage: bun run nginx-conf -- --upstream host:port[:weight],... [--listen 80] [--runtime-dir DIR] [--out FILE]
  --upstream LIST     the workers of every node, e.g. 10.0.0.1:3001:1,10.0.0.2:3001:1 (weight default 1)
  --listen ADDR       nginx's listen value (default 80)
  --runtime-dir DIR   where this nginx keeps its pid file, error log and temp files (default /var/lib/spike-nginx)
  --out FILE          write the config there (default: standard output)
  --help              this text
The per-address limits come from SPIKE_NGINX_RATE, _BURST, _CONN and _EXEMPT, as for bun run start.
Then run it with: nginx -p DIR -c FILE (nginx -t -p DIR -c FILE checks it first)`;

/**
 * The config as a file of its own: a header saying what it is and how to run it, and the pid
 * file and error log in the runtime folder (the runtime copy `bun run start` makes gets those
 * from nginx's command line instead).
 */
export function standaloneConf(conf: string, upstreams: readonly Upstream[], runtimeDir: string): string {
  const body = conf.replace(/^(#.*\n)+\n?/, '');
  const header = [
    `# spike: nginx in front of ${upstreams.length} worker${upstreams.length === 1 ? '' : 's'}, weighted round-robin:`,
    `#   ${upstreams.map((u) => `${u.host}:${u.port} weight=${u.weight}`).join(', ')}`,
    '# Made by `bun run nginx-conf` from nginx.conf. Run it with:',
    `#   nginx -p ${runtimeDir} -c <this file>`,
    '',
    `pid ${runtimeDir}/nginx.pid;`,
    `error_log ${runtimeDir}/error.log;`,
    '',
  ].join('\n');
  return header + body;
}

function main(argv: string[]): number {
  const { values, positionals } = parseCommandLine(
    argv,
    { upstream: { type: 'string' }, listen: { type: 'string' }, 'runtime-dir': { type: 'string' }, out: { type: 'string' } },
    USAGE,
  );
  if (positionals.length > 0) usageError(`unexpected argument ${positionals[0]}`, USAGE);
  if (!values.upstream) usageError('nginx-conf: --upstream is required, e.g. --upstream 10.0.0.1:3001:1,10.0.0.2:3001:1', USAGE);
  const runtimeDir = resolve(values['runtime-dir'] ?? '/var/lib/spike-nginx');
  let conf: string;
  try {
    const upstreams = parseUpstreams(values.upstream);
    conf = standaloneConf(
      renderNginxConf(readFileSync(NGINX_TEMPLATE, 'utf8'), {
        listen: values.listen ?? '80',
        upstreams,
        runtimeDir,
        limits: nginxLimits(Bun.env),
      }),
      upstreams,
      runtimeDir,
    );
  } catch (error) {
    console.error(`nginx-conf: ${error instanceof Error ? error.message : error}`);
    return 2;
  }
  try {
    makeRuntimeDirs(runtimeDir);
  } catch (error) {
    console.error(
      `nginx-conf: could not create ${runtimeDir}/temp/* (${error instanceof Error ? error.message : error}); create them before starting nginx`,
    );
  }
  if (values.out) writeFileSync(values.out, conf);
  else process.stdout.write(conf);
  return 0;
}

if (import.meta.main) process.exit(main(Bun.argv.slice(2)));
