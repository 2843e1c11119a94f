import { describe, expect, test } from 'bun:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { localStockFor } from '../../src/stock/refill.ts';

describe('configuration', () => {
  test('defaults match the original design: four workers on 3001-3004 and 10 000 tickets', () => {
    const config = loadConfig({}, []);
    expect(config.ports).toEqual([3001, 3002, 3003, 3004]);
    expect(config.total).toBe(10_000);
    expect(config.redisUrl).toBeUndefined();
    expect(config.nginx).toBe('auto');
    expect(config.reset).toBe(false);
    expect(Object.isFrozen(config)).toBe(true);
  });

  test('local stock defaults to the fair share plus the buffer, so the sum exceeds the total', () => {
    const config = loadConfig({ SPIKE_TOTAL: '10000', SPIKE_BUFFER: '0.2' }, []);
    expect(config.localStock).toBeUndefined();
    const policy = { workers: config.ports.length, buffer: config.buffer, localStock: config.localStock };
    expect(localStockFor(policy, config.total)).toBe(3000);
    expect(localStockFor(policy, config.total) * config.ports.length).toBeGreaterThan(config.total);
    expect(loadConfig({ SPIKE_LOCAL_STOCK: '7' }, []).localStock).toBe(7);
  });

  test.each([
    ['SPIKE_TOTAL', 'lots', /SPIKE_TOTAL=lots .*0 to 1000000000/],
    ['SPIKE_TOTAL', '-5', /SPIKE_TOTAL/],
    ['SPIKE_PORTS', '3001,3001', /SPIKE_PORTS=3001,3001 .*distinct/],
    ['SPIKE_PORTS', '3001,70000', /SPIKE_PORTS/],
    ['SPIKE_BUFFER', 'much', /SPIKE_BUFFER=much .*0 to 10/],
    ['SPIKE_LOCAL_STOCK', '0', /SPIKE_LOCAL_STOCK=0 is out of range/],
    ['SPIKE_NGINX', 'yes', /SPIKE_NGINX=yes .*1 .*0 .*auto/],
    ['REDIS_URL', 'http://x', /REDIS_URL=http:\/\/x .*redis:\/\//],
    ['SPIKE_SYNC_MS', '1', /SPIKE_SYNC_MS=1 is out of range; accepted: 10 to 60000/],
    ['SPIKE_RESET', 'true', /SPIKE_RESET=true .*1 or 0, or force/],
    ['SPIKE_WRITER_NICE', '20', /SPIKE_WRITER_NICE=20 is out of range; accepted: 0 to 19/],
    ['SPIKE_WRITER_MAX_LAG', '-1', /SPIKE_WRITER_MAX_LAG=-1 .*0 to 3600/],
    ['SPIKE_NGINX_LISTEN', 'eighty', /SPIKE_NGINX_LISTEN=eighty/],
    ['SPIKE_HOST', 'notanip', /SPIKE_HOST=notanip .*IP address/],
    ['SPIKE_LOG_FORMAT', 'xml', /SPIKE_LOG_FORMAT=xml .*text \(default\) or json/],
  ])('rejects %s=%s with a message naming the setting and what it accepts', (name, value, message) => {
    expect(() => loadConfig({ [name]: value }, [])).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value }, [])).toThrow(message);
  });

  test('edge limits: defaults exempt loopback; a bad address, block or number is refused by name', () => {
    const config = loadConfig({}, []);
    expect(config.nginxLimits).toEqual({ rate: 10, burst: 20, conn: 50, exempt: ['127.0.0.0/8', '::1'], ipv6Prefix: 64 });
    expect(config.userAttempts).toBe(30);
    expect(config.userWindowMs).toBe(10_000);
    expect(loadConfig({ SPIKE_NGINX_EXEMPT: 'none' }, []).nginxLimits.exempt).toEqual([]);
    expect(loadConfig({ SPIKE_NGINX_EXEMPT: '10.1.0.0/16, 192.0.2.7,fd00::/8' }, []).nginxLimits.exempt).toEqual([
      '10.1.0.0/16',
      '192.0.2.7',
      'fd00::/8',
    ]);
    for (const bad of ['10.1.0.0/33', 'example.com', '10.0.0.0/8/1', '::1/129'])
      expect(() => loadConfig({ SPIKE_NGINX_EXEMPT: bad }, [])).toThrow(/SPIKE_NGINX_EXEMPT/);
    expect(() => loadConfig({ SPIKE_NGINX_RATE: '-1' }, [])).toThrow(/SPIKE_NGINX_RATE/);
    expect(() => loadConfig({ SPIKE_USER_ATTEMPTS: 'lots' }, [])).toThrow(/SPIKE_USER_ATTEMPTS/);
    expect(() => loadConfig({ SPIKE_USER_WINDOW: '0' }, [])).toThrow(/SPIKE_USER_WINDOW/);
  });

  // SPIKE_TOTL=5 was ignored (the sale started with 10 000), SPIKE_LOG_FORMAT=JSON crashed with a
  // stack trace, SPIKE_PORTS=1,2 bound ports 1 and 2 as root without a word.
  test('refuses an unknown SPIKE_ variable naming the closest setting, and ports below 1024 unless allowed', () => {
    expect(() => loadConfig({ SPIKE_TOTL: '5' }, [])).toThrow('SPIKE_TOTL is not a setting; did you mean SPIKE_TOTAL?');
    expect(() => loadConfig({ SPIKE_ADMIN_TOKN: 'x' }, [])).toThrow('did you mean SPIKE_ADMIN_TOKEN?');
    expect(() => loadConfig({ SPIKE_LOG_FORMAT: 'JSON' }, [])).toThrow(/SPIKE_LOG_FORMAT=JSON .*text \(default\) or json/);
    expect(() => loadConfig({ SPIKE_PORTS: '1,2' }, [])).toThrow(/SPIKE_PORTS has port 1, below 1024/);
    expect(() => loadConfig({ SPIKE_ADMIN_PORT: '80' }, [])).toThrow(/SPIKE_ADMIN_PORT=80 is below 1024/);
    expect(loadConfig({ SPIKE_PORTS: '81', SPIKE_ALLOW_LOW_PORTS: '1' }, []).ports).toEqual([81]);
    expect(loadConfig({ SPIKE_SCREENSHOTS: '1' }, []).ports).toHaveLength(4);
  });

  test('Sentinel: REDIS_SENTINELS with the master name spike by default; one Redis setting at most; a misspelt name is refused', () => {
    const config = loadConfig({ REDIS_SENTINELS: '10.0.0.21:26379, 10.0.0.22:26379' }, []);
    expect(config.redisSentinel).toEqual({ sentinels: ['10.0.0.21:26379', '10.0.0.22:26379'], master: 'spike' });
    expect(loadConfig({ REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_MASTER: 'tickets' }, []).redisSentinel?.master).toBe('tickets');
    expect(() => loadConfig({ REDIS_SENTINELS: 'a:1', REDIS_URL: 'redis://b:2' }, [])).toThrow(
      /REDIS_SENTINELS and REDIS_URL are both set/,
    );
    expect(() => loadConfig({ REDIS_SENTINELS: 'a:1', REDIS_CLUSTER: 'b:2' }, [])).toThrow(/REDIS_SENTINELS and REDIS_CLUSTER/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'a' }, [])).toThrow(/REDIS_SENTINELS=a is not accepted/);
    expect(() => loadConfig({ REDIS_SENTINEL_MASTER: 'spike' }, [])).toThrow(/without REDIS_SENTINELS/);
    // A misspelt REDIS_SENTINELS would have started a private Redis on every node: each its own sale.
    expect(() => loadConfig({ REDIS_SENTINEL: 'a:1' }, [])).toThrow('REDIS_SENTINEL is not a setting; did you mean REDIS_SENTINELS?');
  });
  test('--reset (with --force to wipe orders) are the only flags; anything else is refused', () => {
    expect(loadConfig({}, ['--reset'])).toMatchObject({ reset: true, resetForce: false });
    expect(loadConfig({}, ['--reset', '--force'])).toMatchObject({ reset: true, resetForce: true });
    expect(loadConfig({ SPIKE_RESET: 'force' }, [])).toMatchObject({ reset: true, resetForce: true });
    expect(() => loadConfig({}, ['--force'])).toThrow(/--force goes with --reset/);
    expect(() => loadConfig({}, ['--fast'])).toThrow(/unknown argument --fast/);
  });

  // A stranger's first afternoon: the example file's placeholders opened the admin API, a token of
  // 16 spaces could never be sent, an empty SPIKE_TOTAL= meant 10 000, and a catch-all range said nothing.
  test.each([
    ['SPIKE_ADMIN_TOKEN', 'change-me-to-32-random-characters', /SPIKE_ADMIN_TOKEN is the example's placeholder/],
    ['SPIKE_QUEUE_SECRET', 'change-me-to-32-random-characters', /SPIKE_QUEUE_SECRET is the example's placeholder/],
    ['SPIKE_ADMIN_TOKEN', ' '.repeat(16), /SPIKE_ADMIN_TOKEN holds spaces/],
    ['SPIKE_ADMIN_TOKEN', 'short', /SPIKE_ADMIN_TOKEN is too short/],
    ['SPIKE_ADMIN_TOKENS', 'ann:change-me-please-0123456789', /SPIKE_ADMIN_TOKENS \(ann\) is the example's placeholder/],
    ['SPIKE_TOTAL', '', /SPIKE_TOTAL is set but empty; accepted: a whole number from 0 to 1000000000, or leave it unset/],
    ['SPIKE_BUFFER', ' ', /SPIKE_BUFFER is set but empty/],
    ['SPIKE_PAY_WINDOW', '-5', /SPIKE_PAY_WINDOW=-5 is not accepted; accepted: a whole number from 0 to 86400/],
  ])('%s=%p is refused, saying what to give', (name, value, message) => {
    expect(() => loadConfig({ [name]: value }, [])).toThrow(message);
  });

  test('a catch-all range is allowed, and said as a warning', () => {
    expect(loadConfig({}, []).warnings).toEqual([]);
    const config = loadConfig({ SPIKE_TRUSTED_PROXIES: '0.0.0.0/0', SPIKE_NGINX_EXEMPT: '10.0.0.0/8,::/0' }, []);
    expect(config.warnings).toHaveLength(2);
    expect(config.warnings[0]).toMatch(/^SPIKE_TRUSTED_PROXIES=0\.0\.0\.0\/0 holds every address/);
    expect(config.warnings[1]).toMatch(/^SPIKE_NGINX_EXEMPT=10\.0\.0\.0\/8,::\/0 holds every address \(::\/0\): nobody is ever limited/);
  });
});
