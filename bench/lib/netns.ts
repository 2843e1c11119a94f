/**
 * Test hosts on one machine (the tests and bun run rehearse): a network namespace per host, each with a veth into a bridge the
 * test owns, on a private test subnet (needs root and iproute2). Where namespaces are not
 * permitted, `startTestNet` falls back to loopback — each host an address of its own in
 * 127.0.0.0/8, a cut made by a TCP proxy the test controls — and prints why.
 */
import type { Subprocess } from 'bun';

export interface TestHost {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
}

export interface TestNet {
  /** `namespaces`, or `loopback` where namespaces are not permitted. */
  readonly kind: 'namespaces' | 'loopback';
  readonly hosts: ReadonlyMap<string, TestHost>;
  /** An address of the test's own (root) namespace that every host reaches directly. */
  readonly gateway: string;
  /** The address `host` should use to reach `target`'s `port` (a cuttable proxy on loopback). */
  address(host: string, target: string, port: number): Promise<string>;
  /** Starts `cmd` inside `host`'s namespace. */
  spawn(host: string, cmd: string[], env?: Record<string, string | undefined>): Subprocess<'ignore', 'pipe', 'pipe'>;
  /**
   * Gives `host` `count` IPv6 addresses of one /64 (and the test's own side one of the same
   * network); answers them and the address the test listens on for that host.
   */
  addIpv6(host: string, count: number): { gateway: string; addresses: string[] };
  /** `host` can no longer reach `target` (a blackhole route); everything else still works. */
  cut(host: string, target: string): void;
  heal(host: string, target: string): void;
  close(): void;
}

function ip(...args: string[]): void {
  const run = Bun.spawnSync(['ip', ...args], { stderr: 'pipe' });
  if (run.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${run.stderr.toString().trim()}`);
}

/** Namespaces when permitted, else loopback (with the reason printed). */
export function startTestNet(names: readonly string[]): TestNet {
  try {
    if (Bun.env.SPIKE_TEST_NETNS === '0') throw new Error('SPIKE_TEST_NETNS=0');
    return namespaceNet(names);
  } catch (error) {
    console.log(
      `test hosts: network namespaces not available (${error instanceof Error ? error.message : error}); using loopback addresses and TCP proxies instead`,
    );
    return loopbackNet(names);
  }
}

/** Creates one namespace per name on a /24 of its own (10.213.N.0), bridged to the root namespace. */
function namespaceNet(names: readonly string[]): TestNet {
  const tag = String(process.pid % 10_000);
  const subnet = `10.213.${(process.pid % 250) + 1}`;
  const bridge = `spkbr${tag}`;
  const made: string[] = [];
  const hosts = new Map<string, TestHost>();
  const insides = new Map<string, string>();
  const net6 = `fd00:${tag}:${(process.pid % 250) + 1}:1`;
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
      insides.set(name, inside);
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
    kind: 'namespaces',
    hosts,
    gateway: `${subnet}.254`,
    address: async (_, target, port) => `${host(target).ip}:${port}`,
    addIpv6: (name, count) => {
      ip('-6', 'addr', 'add', `${net6}::fffe/64`, 'dev', bridge, 'nodad');
      const addresses = Array.from({ length: count }, (_, k) => `${net6}::${(k + 1).toString(16)}`);
      for (const address of addresses) ip('-n', host(name).ns, '-6', 'addr', 'add', `${address}/64`, 'dev', insides.get(name)!, 'nodad');
      return { gateway: `${net6}::fffe`, addresses };
    },
    spawn: (name, cmd, env) =>
      Bun.spawn(['ip', 'netns', 'exec', host(name).ns, ...cmd], {
        env: { ...process.env, ...env },
        stdin: 'ignore',
        stdout: 'pipe',
        stderr: 'pipe',
      }),
    cut: (name, target) => ip('-n', host(name).ns, 'route', 'add', 'blackhole', `${host(target).ip}/32`),
    heal: (name, target) => ip('-n', host(name).ns, 'route', 'del', 'blackhole', `${host(target).ip}/32`),
    close,
  };
}

/**
 * Every host on its own loopback address (127.0.N.i), no isolation; a connection from `host`
 * to `target` goes through a TCP proxy, which `cut` closes and refuses until `heal`.
 */
function loopbackNet(names: readonly string[]): TestNet {
  const subnet = `127.0.${(process.pid % 250) + 1}`;
  const hosts = new Map<string, TestHost>(names.map((name, i) => [name, { name, ns: '', ip: `${subnet}.${i + 1}` }]));
  const proxies = new Map<string, { cut: boolean; sockets: Set<{ end(): void }>; stop(): void }>();
  const key = (host: string, target: string) => `${host}->${target}`;
  return {
    kind: 'loopback',
    hosts,
    gateway: '127.0.0.1',
    address: async (host, target, port) => {
      const targetIp = hosts.get(target)!.ip;
      const state = { cut: false, sockets: new Set<{ end(): void }>(), stop: () => {} };
      type Pipe = { peer?: { write(data: Uint8Array): number; end(): void }; pending: Uint8Array[] };
      const listener = Bun.listen<Pipe>({
        hostname: hosts.get(host)!.ip,
        port: 0,
        socket: {
          open(client) {
            if (state.cut) return void client.end();
            client.data = { pending: [] };
            state.sockets.add(client);
            void Bun.connect<undefined>({
              hostname: targetIp,
              port,
              socket: {
                open(upstream) {
                  client.data.peer = upstream;
                  state.sockets.add(upstream);
                  for (const chunk of client.data.pending) upstream.write(chunk);
                  client.data.pending = [];
                },
                data: (_, chunk) => void client.write(chunk),
                close: () => void client.end(),
                error: () => void client.end(),
              },
            }).catch(() => void client.end());
          },
          data(client, chunk) {
            if (client.data.peer) client.data.peer.write(chunk);
            else client.data.pending.push(new Uint8Array(chunk));
          },
          close(client) {
            client.data?.peer?.end();
            state.sockets.delete(client);
          },
        },
      });
      state.stop = () => listener.stop(true);
      proxies.set(key(host, target), state);
      return `${hosts.get(host)!.ip}:${listener.port}`;
    },
    spawn: (_, cmd, env) => Bun.spawn(cmd, { env: { ...process.env, ...env }, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' }),
    addIpv6: (_, count) => {
      // Without namespaces: addresses of a test network on the loopback device.
      const net6 = `fd00:${process.pid % 10_000}:2:1`;
      const addresses = Array.from({ length: count }, (_, k) => `${net6}::${(k + 1).toString(16)}`);
      for (const address of [`${net6}::fffe`, ...addresses]) ip('-6', 'addr', 'add', `${address}/128`, 'dev', 'lo', 'nodad');
      return { gateway: `${net6}::fffe`, addresses };
    },
    cut: (host, target) => {
      const proxy = proxies.get(key(host, target));
      if (!proxy) throw new Error(`${host} does not reach ${target} through a proxy`);
      proxy.cut = true;
      for (const socket of proxy.sockets) socket.end();
      proxy.sockets.clear();
    },
    heal: (host, target) => {
      const proxy = proxies.get(key(host, target));
      if (proxy) proxy.cut = false;
    },
    close: () => {
      for (const proxy of proxies.values()) proxy.stop();
    },
  };
}
