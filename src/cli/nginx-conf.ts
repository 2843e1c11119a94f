/**
 * `bun run nginx-conf -- --upstream host:port:weight,... [--listen 80] [--out FILE]`: renders an
 * nginx config for many nodes from the same template as nginx.conf (keep-alive, failover).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { makeRuntimeDirs, NGINX_TEMPLATE, renderNginxConf, type Upstream } from '../services/nginx.ts';

/** Parses `host:port:weight,...` (weight optional, default 1); throws with the bad part named. */
export function parseUpstreams(spec: string): Upstream[] {
  const upstreams = spec.split(',').map((part) => {
    const match = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})(?::(\d{1,3}))?$/.exec(part.trim());
    const port = Number(match?.[2]);
    const weight = Number(match?.[3] ?? 1);
    if (!match || port < 1 || port > 65535 || weight < 1) throw new Error(`--upstream part "${part}" is not host:port[:weight] (port 1-65535, weight 1-999)`);
    return { host: match[1]!, port, weight };
  });
  if (upstreams.length === 0) throw new Error('--upstream needs at least one host:port[:weight]');
  return upstreams;
}

function main(argv: string[]): number {
  const options: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (!name || !['--upstream', '--listen', '--out', '--runtime-dir'].includes(name) || value === undefined) {
      console.error('usage: bun run nginx-conf -- --upstream host:port:weight,... [--listen 80] [--runtime-dir DIR] [--out FILE]');
      return 2;
    }
    options[name.slice(2)] = value;
  }
  if (!options.upstream) {
    console.error('nginx-conf: --upstream is required, e.g. --upstream 10.0.0.1:3001:1,10.0.0.2:3001:1');
    return 2;
  }
  let conf: string;
  try {
    conf = renderNginxConf(readFileSync(NGINX_TEMPLATE, 'utf8'), {
      listen: options.listen ?? '80',
      upstreams: parseUpstreams(options.upstream),
      runtimeDir: options['runtime-dir'] ?? '/var/lib/spike-nginx',
    });
  } catch (error) {
    console.error(`nginx-conf: ${error instanceof Error ? error.message : error}`);
    return 2;
  }
  const runtimeDir = options['runtime-dir'] ?? '/var/lib/spike-nginx';
  try {
    makeRuntimeDirs(runtimeDir);
  } catch (error) {
    console.error(`nginx-conf: could not create ${runtimeDir}/temp/* (${error instanceof Error ? error.message : error}); create them before starting nginx`);
  }
  if (options.out) writeFileSync(options.out, conf);
  else process.stdout.write(conf);
  return 0;
}

if (import.meta.main) process.exit(main(Bun.argv.slice(2)));
