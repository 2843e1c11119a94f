import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { ipv6ClientMap, NGINX_TEMPLATE, renderNginxConf, weightedUpstreams } from '../../src/services/nginx.ts';

const template = readFileSync(NGINX_TEMPLATE, 'utf8');

describe('nginx.conf', () => {
  test('is the original weighted config: load_rule over 3001-3004 with weights 1-4, listen 80', () => {
    expect(template).toMatch(/upstream load_rule \{/);
    for (let i = 1; i <= 4; i++) expect(template).toMatch(new RegExp(`server 127\\.0\\.0\\.1:300${i} weight=${i}\\b`));
    expect(template).toMatch(/^\s*listen 80;/m);
    expect(template).toMatch(/server_name load_balance\.com www\.load_balance\.com;/);
    expect(template).toMatch(/proxy_pass http:\/\/load_rule;/);
  });

  test('keeps upstream connections alive and skips dead workers', () => {
    expect(template).toMatch(/^\s*keepalive \d+;/m);
    expect(template).toMatch(/proxy_http_version 1\.1;/);
    expect(template).toMatch(/proxy_set_header Connection "";/);
    expect(template).toMatch(/max_fails=\d+ fail_timeout=\d+s/);
    expect(template).toMatch(/proxy_next_upstream error timeout http_503;/);
  });

  test('the runtime copy swaps in ports, weights and listen address and keeps the failover settings', () => {
    const conf = renderNginxConf(template, {
      listen: '127.0.0.1:18080',
      upstreams: weightedUpstreams('127.0.0.1', [4001, 4002, 4003]),
      runtimeDir: '/tmp/spike-nginx',
    });
    const servers = [...conf.matchAll(/^\s*server (\S+) weight=(\d+) (max_fails=\d+ fail_timeout=\d+s);/gm)].map((m) => [m[1], m[2]]);
    expect(servers).toEqual([
      ['127.0.0.1:4001', '1'],
      ['127.0.0.1:4002', '2'],
      ['127.0.0.1:4003', '3'],
    ]);
    expect(conf).toMatch(/^\s*listen 127\.0\.0\.1:18080;/m);
    expect(conf).not.toMatch(/server 127\.0\.0\.1:300[1-4]/);
    expect(conf).toContain('proxy_temp_path /tmp/spike-nginx/temp/proxy;');
    expect(conf).toMatch(/keepalive \d+;/);
  });

  test('the runtime copy carries the configured per-address limits; a 0 drops a limit and loopback is exempt by default', () => {
    const base = { listen: '80', upstreams: weightedUpstreams('127.0.0.1', [3001]), runtimeDir: '/tmp/x' };
    expect(template).toMatch(/^\s*127\.0\.0\.0\/8 1;$/m);
    const conf = renderNginxConf(template, {
      ...base,
      limits: { rate: 7, burst: 3, conn: 12, exempt: ['10.0.0.0/8', '::1'], ipv6Prefix: 64 },
    });
    expect(conf.match(/rate=7r\/s;/g)).toHaveLength(3);
    expect(conf.match(/limit_req zone=spike_\w+ burst=3 nodelay;/g)).toHaveLength(3);
    expect(conf).toMatch(/^\s*limit_conn spike_conn 12;$/m);
    expect(conf).toMatch(/geo \$spike_exempt \{\n\s*default 0;\n\s*10\.0\.0\.0\/8 1;\n\s*::1 1;\n\s*\}/);
    expect(conf).not.toContain('127.0.0.0/8');
    const off = renderNginxConf(template, { ...base, limits: { rate: 0, burst: 3, conn: 0, exempt: [], ipv6Prefix: 64 } });
    expect(off).not.toMatch(/^\s*limit_req zone=/m);
    expect(off).not.toMatch(/^\s*limit_conn spike_conn/m);
    expect(off).toMatch(/geo \$spike_exempt \{\n\s*default 0;\n\s*\}/);
  });

  test('the runtime copy lets each nginx worker hold as many connections as the node has open files', () => {
    const base = { listen: '80', upstreams: weightedUpstreams('127.0.0.1', [3001]), runtimeDir: '/tmp/x' };
    expect(template).toMatch(/^worker_rlimit_nofile \d+;$/m);
    const conf = renderNginxConf(template, { ...base, openFiles: 20_000 });
    expect(conf).toMatch(/^worker_rlimit_nofile 20000;$/m);
    expect(conf).toMatch(/^\s*worker_connections 19968;$/m);
    expect(conf).toMatch(/^\s*keepalive 4096;$/m);
    expect(renderNginxConf(template, base)).toMatch(/^worker_rlimit_nofile 8192;$/m);
  });

  test('refuses to render without upstreams', () => {
    expect(() => renderNginxConf(template, { listen: '80', upstreams: [], runtimeDir: '/tmp/x' })).toThrow(/at least one upstream/);
  });

  // 60 addresses of one /64 passed 300 of 300 purchases when nginx keyed its limits by address.
  test('an IPv6 client is its /64 however nginx writes the address; an IPv4 client its address', () => {
    const patterns = ipv6ClientMap(64).map((line) => {
      const [, regex, value] = /^\s*"~(\S+)" (\S+);$/.exec(line)!;
      return { regex: new RegExp(regex!), value: value! };
    });
    const client = (address: string) => {
      for (const { regex, value } of patterns) {
        const match = regex.exec(address);
        if (match) return value.replace(/\$(\w+)/g, (_, name) => match.groups?.[name] ?? '');
      }
      return address;
    };
    for (let n = 0; n < 2000; n++) {
      const groups = Array.from({ length: 8 }, () => (Math.random() < 0.4 ? 0 : Math.floor(Math.random() * 65536)));
      expect(client(shortForm(groups))).toBe(
        `${groups
          .slice(0, 4)
          .map((g) => g.toString(16))
          .join(':')}::/64`,
      );
    }
    expect(client('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(client('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(client('192.0.2.7')).toBe('192.0.2.7');
    const rendered = renderNginxConf(template, {
      listen: '[::]:8080',
      upstreams: weightedUpstreams('127.0.0.1', [3001]),
      runtimeDir: '/tmp/x',
    });
    expect(rendered).toMatch(/^\s*listen \[::\]:8080;$/m);
    expect(rendered).toContain('"~^::ffff:(?<v4>[0-9.]+)$" $v4;');
  });
});

/** An IPv6 address as nginx writes it: hex groups without leading zeros, the longest run of two or more zero groups as `::`. */
function shortForm(groups: number[]): string {
  let best = [-1, 0];
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best[1]! && j - i >= 2) best = [i, j - i];
    i = j;
  }
  const text = groups.map((g) => g.toString(16));
  if (best[0]! < 0) return text.join(':');
  return `${text.slice(0, best[0]).join(':')}::${text.slice(best[0]! + best[1]!).join(':')}`;
}
