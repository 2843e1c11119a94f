/**
 * Who a buyer is for the per-client holds (SPIKE_ADDRESS_HOLDS): the client nginx names in
 * X-Spike-Client (an IPv4 address, or an IPv6 network: every home connection has a whole /64),
 * believed only from a trusted proxy, since anyone else could send a new name with each request.
 * A request from a trusted proxy without the header is the proxy's own or an exempt client's
 * (ab and the bench on loopback), and is not counted; any other peer is its own address.
 */
import type { Server } from 'bun';
import { BlockList, isIP } from 'node:net';

export const CLIENT_HEADER = 'x-spike-client';

export interface ClientKeyOptions {
  /** Addresses and CIDR blocks whose X-Spike-Client is believed (SPIKE_TRUSTED_PROXIES). */
  readonly trusted: readonly string[];
  /** An IPv6 peer is its network of this many bits (SPIKE_NGINX_IPV6_PREFIX). */
  readonly ipv6Prefix: number;
  /** The address the worker listens on (SPIKE_HOST); a loopback one lets only this machine's peers in. */
  readonly host?: string;
}

/** Who a request is for the holds: `''` when nobody is to be counted. `server` is Bun's (none: `app.request` in tests). */
export type ClientOf = (req: Request, server: Server<unknown> | undefined) => string;

/** Peers remembered with their key (the proxy's own, or the client's): a buyer's request does not test the block list again. */
const REMEMBERED = 4096;

/** The client key of a request: `''` when nobody is to be counted. */
export function clientKey({ trusted, ipv6Prefix, host }: ClientKeyOptions): ClientOf {
  const proxies = blockList(trusted);
  // A worker on a loopback address hears only this machine: when every such peer is trusted, the
  // header alone names the client, and no request pays for its peer's address (~2.5 µs a purchase).
  const onlyHeader = (req: Request) => req.headers.get(CLIENT_HEADER) ?? '';
  if (host !== undefined && loopbackTrusted(host, trusted)) return onlyHeader;
  // Peer address → null for a trusted proxy (its header names the client), else the peer's key.
  const known = new Map<string, string | null>();
  const keyOf = (peer: string) => {
    const family = isIP(peer) === 6 ? 'ipv6' : 'ipv4';
    const key = proxies.check(peer, family) ? null : family === 'ipv6' ? networkOf(peer, ipv6Prefix) : peer;
    if (known.size >= REMEMBERED) known.clear();
    known.set(peer, key);
    return key;
  };
  return (req, server) => {
    const peer = server?.requestIP(req);
    if (!peer) return '';
    const key = known.get(peer.address);
    const found = key === undefined ? keyOf(peer.address) : key;
    return found ?? req.headers.get(CLIENT_HEADER) ?? '';
  };
}

/** Whether every peer that can reach a worker listening on `host` is in `trusted`: 127.0.0.0/8 for a 127.x host, ::1 for ::1. */
export function loopbackTrusted(host: string, trusted: readonly string[]): boolean {
  if (host === '::1') return blockList(trusted).check('::1', 'ipv6');
  if (!/^127\.\d+\.\d+\.\d+$/.test(host)) return false;
  // A peer may connect from any 127.x address: a trusted block must hold all of 127.0.0.0/8.
  return trusted.some((net) => {
    const [address, bits] = net.split('/') as [string, string | undefined];
    if (isIP(address) !== 4) return false;
    const prefix = bits === undefined ? 32 : Number(bits);
    if (prefix > 8) return false;
    const first = Number(address.split('.')[0]);
    const mask = prefix === 0 ? 0 : (0xff << (8 - prefix)) & 0xff;
    return (first & mask) === (127 & mask);
  });
}

function blockList(networks: readonly string[]): BlockList {
  const list = new BlockList();
  for (const net of networks) {
    const [address, bits] = net.split('/') as [string, string | undefined];
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(bits), family);
  }
  return list;
}

/** `address`'s network of `prefix` bits, as `a:b:c:d::/64`; an IPv4-mapped address is its IPv4 address. */
export function networkOf(address: string, prefix: number): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  const [head, tail] = address.toLowerCase().split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  if (prefix >= 128) return groups.map((g) => g.replace(/^0+(?=.)/, '')).join(':');
  return `${groups
    .slice(0, prefix / 16)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/${prefix}`;
}
