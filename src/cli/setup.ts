/**
 * First step of `bun run start`, `bun run test`, `bun run bench` and `bun run rehearse`: installs what a fresh machine
 * lacks (the locked dependencies, and redis-server / nginx / ab / wrk from apt when run as root),
 * or says exactly what to install. Uses only Bun built-ins: it runs before the dependencies exist.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type Purpose = 'start' | 'test' | 'bench' | 'rehearse';

interface Need {
  readonly binary: string;
  readonly aptPackage: string;
  /** Optional needs are installed when we can, and otherwise only mentioned. */
  readonly optional: boolean;
}

/** Debian keeps PostgreSQL's server programs off the PATH, under /usr/lib/postgresql/<version>/bin. */
const postgresInstalled = () => Bun.spawnSync(['sh', '-c', 'ls /usr/lib/postgresql/*/bin/initdb']).exitCode === 0;

function needs(purpose: Purpose, env: Record<string, string | undefined>): Need[] {
  const need = (binary: string, aptPackage: string, optional = false): Need => ({ binary, aptPackage, optional });
  switch (purpose) {
    case 'start':
      return [
        ...(env.REDIS_URL || env.REDIS_SENTINELS || env.REDIS_CLUSTER ? [] : [need('redis-server', 'redis-server')]),
        ...(env.SPIKE_NGINX === '0' ? [] : [need('nginx', 'nginx', env.SPIKE_NGINX !== '1')]),
      ];
    case 'test':
      return [
        need('redis-server', 'redis-server'),
        need('nginx', 'nginx'),
        need('initdb', 'postgresql'),
        need('wrk', 'wrk'),
        need('promtool', 'prometheus'),
        need('chromium', 'chromium'),
        // The systemd unit's checks (systemd-analyze) and its readiness message (socat listens as systemd would).
        need('systemd-analyze', 'systemd'),
        need('socat', 'socat'),
        // The README's examples, run as written (test/integration/readme-examples.test.ts).
        need('curl', 'curl'),
        need('openssl', 'openssl'),
      ];
    case 'bench':
      return [need('redis-server', 'redis-server'), need('nginx', 'nginx'), need('ab', 'apache2-utils'), need('wrk', 'wrk')];
    case 'rehearse':
      return [need('redis-server', 'redis-server'), need('nginx', 'nginx'), need('initdb', 'postgresql'), need('ip', 'iproute2')];
  }
}

const SBIN = '/usr/sbin:/usr/local/sbin:/sbin';
const installed = (binary: string) =>
  binary === 'initdb' ? postgresInstalled() : Boolean(Bun.which(binary) ?? Bun.which(binary, { PATH: SBIN }));

function run(cmd: string[]): boolean {
  console.log(`setup: ${cmd.join(' ')}`);
  return (
    Bun.spawnSync(cmd, { stdout: 'inherit', stderr: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).exitCode === 0
  );
}

/**
 * `npx -y bun@X run start` puts Bun on the PATH of that command only: the README's next commands
 * (`bun run audit`, `bun run stats`) would then say "bun: command not found". So when no `bun` is
 * on the PATH outside npx's cache, install the same version with npm, as CI does.
 */
function ensureBunOnPath(root: string): void {
  const outsideNpx = (Bun.env.PATH ?? '')
    .split(':')
    .filter((dir) => dir && !dir.includes('_npx') && !dir.includes('/.npm/'))
    .join(':');
  if (Bun.which('bun', { PATH: outsideNpx })) return;
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { packageManager: string };
  const install = ['npm', 'install', '-g', '--no-fund', '--no-audit', pkg.packageManager];
  if (!Bun.which('npm') || !run(install)) console.log(`setup: 'bun' is not on your PATH; for the other commands run: ${install.join(' ')}`);
}

function main(): number {
  const usage =
    'usage: bun src/cli/setup.ts start|test|bench|rehearse\n  installs what `bun run start`, `bun run test`, `bun run bench` or `bun run rehearse` needs (they run it first)';
  const purpose = Bun.argv[2] as Purpose;
  if (Bun.argv[2] === '--help' || Bun.argv[2] === '-h') {
    console.log(usage);
    return 0;
  }
  if (!['start', 'test', 'bench', 'rehearse'].includes(purpose) || Bun.argv.length > 3) {
    console.error(usage);
    return 2;
  }
  const root = join(import.meta.dir, '..', '..');
  ensureBunOnPath(root);
  const deps = Bun.spawnSync([process.execPath, 'install', '--frozen-lockfile'], { cwd: root, stdout: 'pipe', stderr: 'pipe' });
  if (deps.exitCode !== 0) {
    console.error(`setup: 'bun install --frozen-lockfile' failed:\n${deps.stderr.toString()}${deps.stdout.toString()}`);
    return 1;
  }

  const missing = needs(purpose, process.env).filter((n) => !installed(n.binary));
  if (missing.length === 0) return 0;
  const packages = [...new Set(missing.map((n) => n.aptPackage))];
  const isRoot = process.getuid?.() === 0;
  if (isRoot && installed('apt-get')) {
    if (run(['apt-get', 'update', '-qq']) && run(['apt-get', 'install', '-y', '-qq', ...packages])) return 0;
    console.error(`setup: apt-get could not install ${packages.join(' ')}`);
  }
  const required = missing.filter((n) => !n.optional);
  const how = installed('apt-get')
    ? `sudo apt-get install -y ${packages.join(' ')}`
    : `install ${packages.join(', ')} with your package manager`;
  if (required.length === 0) {
    console.log(`setup: ${missing.map((n) => n.binary).join(', ')} not installed; running without (${how} to add)`);
    return 0;
  }
  console.error(
    `setup: ${required.map((n) => n.binary).join(', ')} ${required.length > 1 ? 'are' : 'is'} needed for '${purpose}' but not installed.\nInstall with: ${how}`,
  );
  return 1;
}

process.exit(main());
