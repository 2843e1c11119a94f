/**
 * Who a buyer is for the per-client holds (SPIKE_ADDRESS_HOLDS): the client nginx names in
 * X-Spike-Client (an IPv4 address, or an IPv6 network: every home connection has a whole /64),
 * believed only from a trusted proxy, since anyone else could send a new name with each request.
 * A request from a trusted proxy without the header is the proxy's own or an exempt client's
 * (ab and the bench on loopback), and is not counted; any other peer is its own address.
 */
import type { Context } from 'hono';
import { getConnInfo } from 'hono/bun';
import { BlockList, isIP } from 'node:net';

export const CLIENT_HEADER = 'x-spike-client';

export interface ClientKeyOptions {
  /** Addresses and CIDR blocks whose X-Spike-Client is believed (SPIKE_TRUSTED_PROXIES). */
  readonly trusted: readonly string[];
  /** An IPv6 peer is its network of this many bits (SPIKE_NGINX_IPV6_PREFIX). */
  readonly ipv6Prefix: number;
}

/** The client key of a request: `''` when nobody is to be counted. */
export function clientKey({ trusted, ipv6Prefix }: ClientKeyOptions): (c: Context) => string {
  const proxies = blockList(trusted);
  return (c) => {
    const peer = peerAddress(c);
    if (peer === undefined) return '';
    const family = isIP(peer) === 6 ? 'ipv6' : 'ipv4';
    if (proxies.check(peer, family)) return c.req.header(CLIENT_HEADER) ?? '';
    return family === 'ipv6' ? networkOf(peer, ipv6Prefix) : peer;
  };
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

/** The peer's address; undefined when the app runs without a server (app.request in tests). */
function peerAddress(c: Context): string | undefined {
  if (!c.env || typeof (c.env as { requestIP?: unknown }).requestIP !== 'function') return undefined;
  return getConnInfo(c).remote.address;
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
