/**
 * Test hosts on one machine: a network namespace per host, each with a veth into a bridge the
 * test owns, on a private test subnet. Needs root and iproute2; `startTestNet` throws (with the
 * reason) where namespaces are not permitted, so the caller can fall back to loopback.
 */
import type { Subprocess } from 'bun';

export interface TestHost {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
}

export interface TestNet {
  /** The bridge's own address: how hosts reach the test process (the root namespace). */
  readonly gateway: string;
  readonly hosts: ReadonlyMap<string, TestHost>;
  /** Starts `cmd` inside `host`'s namespace. */
  spawn(host: string, cmd: string[], env?: Record<string, string | undefined>): Subprocess<'ignore', 'pipe', 'pipe'>;
  /** `host` can no longer reach `target` (a blackhole route); everything else still works. */
  cut(host: string, target: string): void;
  heal(host: string, target: string): void;
  close(): void;
}

function ip(...args: string[]): void {
  const run = Bun.spawnSync(['ip', ...args], { stderr: 'pipe' });
  if (run.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${run.stderr.toString().trim()}`);
}

/** Creates one namespace per name on a /24 of its own (10.213.N.0), bridged to the root namespace. */
export function startTestNet(names: readonly string[]): TestNet {
  const tag = String(process.pid % 10_000);
  const subnet = `10.213.${(process.pid % 250) + 1}`;
  const bridge = `spkbr${tag}`;
  const made: string[] = [];
  const hosts = new Map<string, TestHost>();
  const close = () => {
    for (const ns of made) Bun.spawnSync(['ip', 'netns', 'del', ns]);
    Bun.spawnSync(['ip', 'link', 'del', bridge]);
  };
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    ip('addr', 'add', `${subnet}.254/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    names.forEach((name, i) => {
      const ns = `spk${tag}-${name}`;
      const outside = `sv${tag}x${i}`;
      const inside = `sv${tag}y${i}`;
      ip('netns', 'add', ns);
      made.push(ns);
      ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
      ip('link', 'set', inside, 'netns', ns);
      ip('link', 'set', outside, 'master', bridge);
      ip('link', 'set', outside, 'up');
      ip('-n', ns, 'addr', 'add', `${subnet}.${i + 1}/24`, 'dev', inside);
      ip('-n', ns, 'link', 'set', inside, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      hosts.set(name, { name, ns, ip: `${subnet}.${i + 1}` });
    });
  } catch (error) {
    close();
    throw error;
  }
  const host = (name: string) => {
    const h = hosts.get(name);
    if (!h) throw new Error(`no test host ${name}`);
    return h;
  };
  return {
    gateway: `${subnet}.254`,
    hosts,
    spawn: (name, cmd, env) =>
      Bun.spawn(['ip', 'netns', 'exec', host(name).ns, ...cmd], { env: { ...process.env, ...env }, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' }),
    cut: (name, target) => ip('-n', host(name).ns, 'route', 'add', 'blackhole', `${host(target).ip}/32`),
    heal: (name, target) => ip('-n', host(name).ns, 'route', 'del', 'blackhole', `${host(target).ip}/32`),
    close,
  };
}
