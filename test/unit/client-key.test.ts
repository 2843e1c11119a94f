// Who a buyer is for the per-client holds (src/http/client-key.ts). A worker on loopback with all of
// loopback trusted reads only nginx's header: a shortcut on the purchase path that must never let
// a peer the block list would not trust name its own client.
import { describe, expect, test } from 'bun:test';
import type { Server } from 'bun';
import { CLIENT_HEADER, clientKey, loopbackTrusted } from '../../src/http/client-key.ts';

/** A server whose requestIP answers `address`, counting the calls. */
function peer(address: string) {
  const server = {
    calls: 0,
    requestIP: () => {
      server.calls += 1;
      return { address, family: address.includes(':') ? 'IPv6' : 'IPv4', port: 1 };
    },
  };
  return server as typeof server & Server<unknown>;
}
const request = (client?: string) => new Request('http://w/buy/ticket', { headers: client ? { [CLIENT_HEADER]: client } : {} });

describe('the client key of a request', () => {
  test('on a loopback worker trusting all of loopback: the header alone, the peer never asked', () => {
    const key = clientKey({ trusted: ['127.0.0.0/8', '::1'], ipv6Prefix: 64, host: '127.0.0.1' });
    const server = peer('127.0.0.9');
    expect(key(request('203.0.113.7'), server)).toBe('203.0.113.7');
    expect(key(request(), server)).toBe('');
    expect(server.calls).toBe(0);
  });

  test('a worker on another address believes the header only from a trusted peer, and keys the rest by address or /64', () => {
    const key = clientKey({ trusted: ['10.0.0.1'], ipv6Prefix: 64, host: '0.0.0.0' });
    expect(key(request('203.0.113.7'), peer('10.0.0.1'))).toBe('203.0.113.7');
    expect(key(request('203.0.113.7'), peer('10.0.0.2'))).toBe('10.0.0.2');
    expect(key(request('203.0.113.7'), peer('2001:db8:1:2:3:4:5:6'))).toBe('2001:db8:1:2::/64');
    expect(key(request(), peer('::ffff:192.0.2.1'))).toBe('192.0.2.1');
    // Asked twice: the same key from memory.
    expect(key(request('x'), peer('10.0.0.2'))).toBe('10.0.0.2');
  });

  test('a loopback worker that trusts only part of loopback still asks for the peer', () => {
    const key = clientKey({ trusted: ['127.0.0.1'], ipv6Prefix: 64, host: '127.0.0.1' });
    const server = peer('127.0.0.2');
    expect(key(request('203.0.113.7'), server)).toBe('127.0.0.2');
    expect(server.calls).toBe(1);
  });

  test.each([
    ['127.0.0.1', ['127.0.0.0/8'], true],
    ['127.0.0.1', ['0.0.0.0/0'], true],
    ['127.0.0.1', ['64.0.0.0/2'], true],
    ['127.0.0.1', ['127.0.0.1'], false],
    ['127.0.0.1', ['128.0.0.0/1'], false],
    ['127.0.0.1', [], false],
    ['::1', ['::1'], true],
    ['::1', ['127.0.0.0/8'], false],
    ['0.0.0.0', ['127.0.0.0/8'], false],
    ['10.0.0.1', ['10.0.0.0/8'], false],
  ] as const)('a worker on %s trusting %j hears only trusted peers: %p', (host, trusted, expected) => {
    expect(loopbackTrusted(host, trusted)).toBe(expected);
  });
});
