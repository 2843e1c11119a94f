/** The one place that reads spike's settings: environment variables and flags, validated at start. */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';

export type NginxMode = 'auto' | 'on' | 'off';

export interface Config {
  /** Settings allowed but rarely meant, said at the start as WARN lines. */
  readonly warnings: readonly string[];
  /** This node's name among the nodes sharing one Redis (writer consumer name, logs). */
  readonly nodeId: string;
  /** Redis to use; `undefined` means: start a private redis-server under `dataDir`. */
  readonly redisUrl: string | undefined;
  /** Seed nodes (`host:port`) of a Redis Cluster; when set, REDIS_URL is not used and no Redis is started. */
  readonly redisCluster: readonly string[] | undefined;
  /** Sentinels (`host:port`) and the name of the master they watch; when set, no Redis is started. */
  readonly redisSentinel: { readonly sentinels: readonly string[]; readonly master: string } | undefined;
  /** Replicas that must confirm a sale (Redis WAIT) before the buyer is told; 0: do not wait. */
  readonly waitReplicas: number;
  /** Longest wait for them; a sale not confirmed in time answers 503 (a retry shows the order). */
  readonly waitMs: number;
  /**
   * `appendfsync` of the private redis-server: always (the default: a sale is on disk before the
   * buyer is told) or everysec (faster; a kill can lose up to ~2 s of acknowledged sales).
   */
  readonly appendfsync: 'everysec' | 'always';
  /** One worker thread per port. */
  readonly ports: readonly number[];
  /** Address the workers bind. */
  readonly host: string;
  /** Tickets of the default sale when it does not exist yet. */
  readonly total: number;
  /** Whether SPIKE_TOTAL was given (for an existing sale it cannot apply, and the start says so). */
  readonly totalGiven: boolean;
  /** Whether SPIKE_QUEUE was set at all (0 turns an earlier waiting room of the default sale off). */
  readonly queueGiven: boolean;
  /** Extra local stock over the fair share, as a ratio (0.2 = 20 % more). */
  readonly buffer: number;
  /** A fixed local stock per worker for every sale; undefined: each sale's fair share plus the buffer (stock/refill.ts). */
  readonly localStock: number | undefined;
  readonly nginx: NginxMode;
  /** nginx `listen` value for the runtime copy of nginx.conf. */
  readonly nginxListen: string;
  /** nginx's per-address limits (SPIKE_NGINX_RATE, _BURST, _CONN, _EXEMPT). */
  readonly nginxLimits: EdgeLimits;
  /** Most unpaid orders and waiting-room places one client (address, IPv6 network) holds per sale; 0: no limit. */
  readonly addressHolds: number;
  /** Peers whose X-Spike-Client header names the client (nginx on this host); others are their own address. */
  readonly trustedProxies: readonly string[];
  /** The app's own cap: attempts per user per sale in each window (0: none), and the window. */
  readonly userAttempts: number;
  readonly userWindowMs: number;
  readonly logDir: string;
  /** Size at which a worker's stat log is rotated, and how many rotated files are kept. */
  readonly statLogMaxBytes: number;
  readonly statLogKeep: number;
  readonly dataDir: string;
  /** How often the supervisor reads the global stock and tops up dry workers. */
  readonly syncMs: number;
  /** A Redis command slower than this fails the request with 503. */
  readonly redisTimeoutMs: number;
  /** Wipe the default sale and start it again with `total` tickets. */
  readonly reset: boolean;
  /** A reset may wipe a sale that holds reserved or paid orders (`--reset --force`, SPIKE_RESET=force). */
  readonly resetForce: boolean;
  /** Time to pay a reserved order, in ms; 0: orders never expire. */
  readonly payWindowMs: number;
  /** How often the reaper looks for orders past their deadline. */
  readonly reapMs: number;
  /** Run the order writer (stream → database) in this supervisor. */
  readonly writer: boolean;
  /** Nice value added to the order writer's thread, so buyers get the CPU first during a spike. */
  readonly writerNice: number;
  /** How far the order writer may fall behind while it shaves a spike's peak, in ms; 0: never shave. */
  readonly writerMaxLagMs: number;
  /** The SQLite file the order writer writes (when no DATABASE_URL is given). */
  readonly dbPath: string;
  /** PostgreSQL for the order writer: postgres://user:password@host:port/db. */
  readonly databaseUrl: string | undefined;
  /** Bearer token of the admin API; undefined: the admin API refuses every call. */
  readonly adminToken: string | undefined;
  /**
   * Every operator's token, by name (SPIKE_ADMIN_TOKENS, and SPIKE_ADMIN_TOKEN as `admin`): each
   * action through the admin API is logged with the name of the token that made it.
   */
  readonly adminTokens: readonly { readonly name: string; readonly token: string }[];
  /** Most dashboard streams at once; the next is refused with 429. */
  readonly dashboardStreams: number;
  /** Port of the admin API; 0: do not serve it. */
  readonly adminPort: number;
  readonly adminHost: string;
  /** Where `bun run sale` finds the admin API: SPIKE_ADMIN_URL, or this node's own. */
  readonly adminUrl: string;
  /** The token Prometheus sends for GET /metrics; undefined: the admin token. */
  readonly metricsToken: string | undefined;
  /** HS256 secret of signed users; undefined: the `user` parameter names the buyer. */
  readonly jwtSecret: string | undefined;
  /** Operational log lines as text or JSON (src/log.ts). */
  readonly logFormat: LogFormat;
  /** Put the default sale behind a waiting room (src/queue/), with these settings. */
  readonly queue: boolean;
  /** The default sale's display name for buyers (SPIKE_SALE_NAME); undefined: keep the one it has. */
  readonly saleName: string | undefined;
  readonly queueAdmissionMs: number;
  readonly queueRate: number;
  /** The secret of waiting-room tickets; undefined: one generated into `dataDir` (fine for one node). */
  readonly queueSecret: string | undefined;
}

export type LogFormat = 'text' | 'json';

/** Per-client-address limits at the edge (nginx.conf's limit_req / limit_conn). */
export interface EdgeLimits {
  /** Requests per second per address to /buy/ticket and /queue/join; 0: no limit. */
  readonly rate: number;
  /** Requests over the rate let through at once before the 429s start. */
  readonly burst: number;
  /** Connections at once per address; 0: no limit. */
  readonly conn: number;
  /** Addresses and CIDR blocks never limited. */
  readonly exempt: readonly string[];
  /** An IPv6 client is its network of this many bits (a multiple of 16; 128: each address). */
  readonly ipv6Prefix: number;
}

/** SPIKE_NGINX_RATE, _BURST, _CONN and _EXEMPT: also read by `bun run nginx-conf`. */
export function nginxLimits(env: Env): EdgeLimits {
  const exempt = networks(env, 'SPIKE_NGINX_EXEMPT');
  return Object.freeze({
    rate: integer(env, 'SPIKE_NGINX_RATE', 10, 0, 1_000_000),
    burst: integer(env, 'SPIKE_NGINX_BURST', 20, 0, 1_000_000),
    conn: integer(env, 'SPIKE_NGINX_CONN', 50, 0, 1_000_000),
    exempt,
    ipv6Prefix: ipv6Prefix(env),
  });
}

/**
 * What a start says at WARN about settings that are allowed but rarely meant: a list of networks
 * holding a block of every address (0.0.0.0/0, ::/0) trusts, or exempts, the whole internet.
 */
function catchAll(lists: Record<string, readonly string[]>): string[] {
  return Object.entries(lists)
    .filter(([, nets]) => nets.some((net) => /\/0$/.test(net)))
    .map(
      ([name, nets]) =>
        `${name}=${nets.join(',')} holds every address (${nets.filter((n) => /\/0$/.test(n)).join(', ')}): ${name === 'SPIKE_NGINX_EXEMPT' ? 'nobody is ever limited' : 'any client may name itself in X-Spike-Client and take every hold'}; name your proxies' addresses instead`,
    );
}

/** A list of addresses and CIDR blocks (default loopback), or `none`. */
function networks(env: Env, name: string): readonly string[] {
  const raw = (env[name] ?? '').trim();
  const list = raw === '' ? ['127.0.0.0/8', '::1'] : raw === 'none' ? [] : raw.split(',').map((net) => net.trim());
  for (const net of list) {
    const [address, bits, extra] = net.split('/');
    const max = isIP(address ?? '') === 6 ? 128 : 32;
    if (isIP(address ?? '') === 0 || extra !== undefined || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= max)))
      throw new ConfigError(
        `${name}=${raw} is not accepted; accepted: addresses or CIDR blocks, comma-separated (default 127.0.0.0/8,::1), or none`,
      );
  }
  return Object.freeze(list);
}

function ipv6Prefix(env: Env): number {
  const prefix = integer(env, 'SPIKE_NGINX_IPV6_PREFIX', 64, 16, 128);
  if (prefix % 16 !== 0)
    throw new ConfigError(`SPIKE_NGINX_IPV6_PREFIX=${prefix} is not accepted; accepted: 16, 32, 48, 64 (default), 80, 96, 112 or 128`);
  return prefix;
}

/** SPIKE_LOG_FORMAT: how operational lines are written (src/log.ts). */
export function logFormat(env: Env): LogFormat {
  const raw = (env.SPIKE_LOG_FORMAT ?? '').trim();
  if (raw === '' || raw === 'text') return 'text';
  if (raw === 'json') return 'json';
  throw new ConfigError(`SPIKE_LOG_FORMAT=${raw} is not accepted; accepted: text (default) or json`);
}

/** Every setting spike reads (a unit test keeps this list and the code in step). */
export const SETTINGS = [
  'DATABASE_URL',
  'REDIS_CLUSTER',
  'REDIS_SENTINEL_MASTER',
  'REDIS_SENTINELS',
  'REDIS_URL',
  'SPIKE_ADDRESS_HOLDS',
  'SPIKE_ADMIN_HOST',
  'SPIKE_ADMIN_PORT',
  'SPIKE_ADMIN_TOKEN',
  'SPIKE_ADMIN_TOKENS',
  'SPIKE_ADMIN_URL',
  'SPIKE_ALLOW_LOW_PORTS',
  'SPIKE_APPENDFSYNC',
  'SPIKE_BUFFER',
  'SPIKE_DASHBOARD_STREAMS',
  'SPIKE_DATA_DIR',
  'SPIKE_DB_PATH',
  'SPIKE_HOST',
  'SPIKE_JWT_SECRET',
  'SPIKE_LOCAL_STOCK',
  'SPIKE_LOG_DIR',
  'SPIKE_LOG_FORMAT',
  'SPIKE_METRICS_TOKEN',
  'SPIKE_NGINX',
  'SPIKE_NGINX_BURST',
  'SPIKE_NGINX_CONN',
  'SPIKE_NGINX_EXEMPT',
  'SPIKE_NGINX_IPV6_PREFIX',
  'SPIKE_NGINX_LISTEN',
  'SPIKE_NGINX_RATE',
  'SPIKE_NODE_ID',
  'SPIKE_PAY_WINDOW',
  'SPIKE_PORTS',
  'SPIKE_QUEUE',
  'SPIKE_QUEUE_ADMISSION',
  'SPIKE_QUEUE_RATE',
  'SPIKE_QUEUE_SECRET',
  'SPIKE_REAP_MS',
  'SPIKE_REDIS_TIMEOUT_MS',
  'SPIKE_RESET',
  'SPIKE_SALE_NAME',
  'SPIKE_STAT_LOG_KEEP',
  'SPIKE_STAT_LOG_MAX_MB',
  'SPIKE_SYNC_MS',
  'SPIKE_TOTAL',
  'SPIKE_TRUSTED_PROXIES',
  'SPIKE_USER_ATTEMPTS',
  'SPIKE_USER_WINDOW',
  'SPIKE_WAIT_MS',
  'SPIKE_WAIT_REPLICAS',
  'SPIKE_WRITER',
  'SPIKE_WRITER_MAX_LAG',
  'SPIKE_WRITER_NICE',
] as const;

/** SPIKE_ variables that are not settings of spike: read by its tests and its bench's wrk script. */
const NOT_SETTINGS = new Set([
  'SPIKE_SCREENSHOTS',
  'SPIKE_TEST_NETNS',
  'SPIKE_USER_PREFIX',
  'SPIKE_REQUESTS',
  'SPIKE_ANONYMOUS',
  'SPIKE_SALES',
]);

/** The candidate nearest to `name` (edit distance), for "did you mean". */
export function closest(name: string, candidates: readonly string[]): string {
  return [...candidates].sort((a, b) => distance(name, a) - distance(name, b))[0]!;
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** Refuses a SPIKE_ variable spike does not know: a typo must not be ignored silently (SPIKE_TOTL=5 sold 10 000). */
function refuseUnknown(env: Env): void {
  for (const name of Object.keys(env)) {
    // REDIS_SENTINEL* too: a misspelt REDIS_SENTINELS would start a private Redis on every node.
    const ours = name.startsWith('SPIKE_') || name.startsWith('REDIS_SENTINEL');
    if (!ours || env[name] === undefined || NOT_SETTINGS.has(name) || (SETTINGS as readonly string[]).includes(name)) continue;
    const nearest = closest(name, SETTINGS);
    throw new ConfigError(`${name} is not a setting; did you mean ${nearest}?`);
  }
}

/** Ports below 1024 need root and clash with system services: refused unless SPIKE_ALLOW_LOW_PORTS=1 (nginx's listen is not counted). */
function refuseLowPorts(env: Env, ports: readonly number[], adminPort: number): void {
  if (flag(env, 'SPIKE_ALLOW_LOW_PORTS')) return;
  const low = ports.find((p) => p < 1024);
  if (low !== undefined)
    throw new ConfigError(
      `SPIKE_PORTS has port ${low}, below 1024; choose ports from 1024 on (3001,3002,…), or set SPIKE_ALLOW_LOW_PORTS=1`,
    );
  if (adminPort > 0 && adminPort < 1024)
    throw new ConfigError(`SPIKE_ADMIN_PORT=${adminPort} is below 1024; choose a port from 1024 on, or set SPIKE_ALLOW_LOW_PORTS=1`);
}

/** Thrown for an invalid setting; the message names the setting and what it accepts. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

const PORT_MAX = 65535;

/** A setting given empty (`SPIKE_TOTAL=`): a mistake, not "the default" (a blank line in an env file sold 10 000). */
function empty(name: string, accepted: string): never {
  throw new ConfigError(`${name} is set but empty; accepted: ${accepted}, or leave it unset for the default`);
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined) return fallback;
  if (raw.trim() === '') empty(name, `a whole number from ${min} to ${max}`);
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name}=${raw} is not accepted; accepted: a whole number from ${min} to ${max}`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name}=${raw} is out of range; accepted: ${min} to ${max}`);
  return value;
}

function ratio(env: Env, name: string, fallback: number, max: number): number {
  const raw = env[name];
  if (raw === undefined) return fallback;
  if (raw.trim() === '') empty(name, `a number from 0 to ${max}`);
  const value = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw.trim()) || value > max)
    throw new ConfigError(`${name}=${raw} is not accepted; accepted: a number from 0 to ${max}, e.g. 0.2`);
  return value;
}

function ports(env: Env): number[] {
  const raw = env.SPIKE_PORTS;
  if (raw === undefined || raw === '') return [3001, 3002, 3003, 3004];
  const list = raw.split(',').map((p) => p.trim());
  const accepted = `a comma-separated list of 1 to 64 distinct ports from 1 to ${PORT_MAX}, e.g. 3001,3002,3003,3004`;
  if (list.length === 0 || list.length > 64) throw new ConfigError(`SPIKE_PORTS=${raw} is not accepted; accepted: ${accepted}`);
  const parsed = list.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  if (parsed.some((p) => !(p >= 1 && p <= PORT_MAX)) || new Set(parsed).size !== parsed.length) {
    throw new ConfigError(`SPIKE_PORTS=${raw} is not accepted; accepted: ${accepted}`);
  }
  return parsed;
}

function nginxMode(env: Env): NginxMode {
  const raw = (env.SPIKE_NGINX ?? '').trim();
  if (raw === '' || raw === 'auto') return 'auto';
  if (raw === '1') return 'on';
  if (raw === '0') return 'off';
  throw new ConfigError(
    `SPIKE_NGINX=${raw} is not accepted; accepted: 1 (start nginx, fail if it cannot), 0 (never), auto (start it when installed; the default)`,
  );
}

function redisUrl(env: Env): string | undefined {
  const raw = env.REDIS_URL?.trim();
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`REDIS_URL=${raw} is not a URL; accepted: redis://[user:password@]host:port[/db] or rediss://…`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError(`REDIS_URL=${raw} has protocol ${url.protocol}; accepted: redis:// or rediss://`);
  }
  return raw;
}

function flag(env: Env, name: string): boolean {
  const raw = (env[name] ?? '').trim();
  if (raw === '' || raw === '0') return false;
  if (raw === '1') return true;
  throw new ConfigError(`${name}=${raw} is not accepted; accepted: 1 or 0`);
}

function redisCluster(env: Env): readonly string[] | undefined {
  const raw = env.REDIS_CLUSTER?.trim();
  if (!raw) return undefined;
  const nodes = raw.split(',').map((n) => n.trim());
  if (nodes.some((n) => !/^[A-Za-z0-9.-]+:\d{1,5}$/.test(n)))
    throw new ConfigError(`REDIS_CLUSTER=${raw} is not accepted; accepted: host:port,host:port,... (seed nodes of a Redis Cluster)`);
  return Object.freeze(nodes);
}

/** REDIS_SENTINELS and REDIS_SENTINEL_MASTER; one Redis setting at most (two would leave it unsaid which one sells). */
function redisSentinel(env: Env): Config['redisSentinel'] {
  const raw = env.REDIS_SENTINELS?.trim();
  const master = env.REDIS_SENTINEL_MASTER?.trim() || 'spike';
  if (!raw) {
    if (env.REDIS_SENTINEL_MASTER?.trim())
      throw new ConfigError(`REDIS_SENTINEL_MASTER=${master} is set without REDIS_SENTINELS (host:port,... of the sentinels)`);
    return undefined;
  }
  const sentinels = raw.split(',').map((n) => n.trim());
  if (sentinels.some((n) => !/^[A-Za-z0-9.-]+:\d{1,5}$/.test(n)))
    throw new ConfigError(`REDIS_SENTINELS=${raw} is not accepted; accepted: host:port,host:port,... (the sentinels, usually three)`);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(master))
    throw new ConfigError(
      `REDIS_SENTINEL_MASTER=${master} is not accepted; accepted: the master's name in sentinel.conf (A-Z a-z 0-9 _ . -)`,
    );
  const other = ['REDIS_URL', 'REDIS_CLUSTER'].find((name) => env[name]?.trim());
  if (other) throw new ConfigError(`REDIS_SENTINELS and ${other} are both set; set one: the sentinels find the master themselves`);
  return Object.freeze({ sentinels: Object.freeze(sentinels), master });
}

function appendfsync(env: Env): 'everysec' | 'always' {
  const raw = (env.SPIKE_APPENDFSYNC ?? '').trim();
  if (raw === '' || raw === 'always') return 'always';
  if (raw === 'everysec') return 'everysec';
  throw new ConfigError(`SPIKE_APPENDFSYNC=${raw} is not accepted; accepted: always (default) or everysec`);
}

function databaseUrl(env: Env): string | undefined {
  const raw = env.DATABASE_URL?.trim();
  if (!raw) return undefined;
  if (!/^postgres(ql)?:\/\//.test(raw))
    throw new ConfigError(
      `DATABASE_URL=${raw.replace(/\/\/[^@]*@/, '//***@')} is not accepted; ` +
        'accepted: postgres://user:password@host:port/database (unset: SQLite at SPIKE_DB_PATH)',
    );
  return raw;
}

function adminUrl(env: Env): string {
  const raw = (env.SPIKE_ADMIN_URL ?? '').trim();
  if (!raw) return `http://${(env.SPIKE_ADMIN_HOST ?? '').trim() || '127.0.0.1'}:${integer(env, 'SPIKE_ADMIN_PORT', 3100, 0, PORT_MAX)}`;
  if (!/^https?:\/\/[^/\s]+$/.test(raw))
    throw new ConfigError(`SPIKE_ADMIN_URL=${raw} is not accepted; accepted: http(s)://host:port, e.g. http://10.0.0.11:3100`);
  return raw;
}

/**
 * A secret: 16 characters or more of printable ASCII without spaces (a token of 16 spaces started
 * and could never be presented), and not an example file's placeholder (`change-me-…` opened the
 * admin API to anyone who had read the example).
 */
function secret(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  return checkedSecret(name, raw);
}

/** `raw` as a secret named `name` (see secret()), or a ConfigError saying what to give instead. */
export function checkedSecret(name: string, raw: string): string {
  const hint = 'accepted: 16 characters or more, letters, digits and punctuation, no spaces (e.g. openssl rand -hex 32)';
  if (!/^[\x21-\x7e]+$/.test(raw)) throw new ConfigError(`${name} holds spaces or characters a header cannot carry; ${hint}`);
  if (raw.length < 16) throw new ConfigError(`${name} is too short; ${hint}`);
  if (/change-?me|placeholder|your[-_]?(token|secret)|<[^>]*>/i.test(raw))
    throw new ConfigError(`${name} is the example's placeholder (${raw}); ${hint}`);
  return raw;
}

/** SPIKE_SALE_NAME: 1 to 80 characters, no control characters (as a name given through the admin API). */
function saleName(env: Env): string | undefined {
  const raw = env.SPIKE_SALE_NAME;
  if (raw === undefined) return undefined;
  const name = raw.trim();
  if (!/^[^\p{Cc}]{1,80}$/u.test(name))
    throw new ConfigError(`SPIKE_SALE_NAME=${raw} is not accepted; accepted: 1 to 80 characters, no control characters`);
  return name;
}

/** SPIKE_RESET (0, 1 or force) and --reset [--force]. */
function resetSetting(env: Env, argv: readonly string[]): { reset: boolean; resetForce: boolean } {
  const raw = (env.SPIKE_RESET ?? '').trim();
  if (!['', '0', '1', 'force'].includes(raw))
    throw new ConfigError(`SPIKE_RESET=${raw} is not accepted; accepted: 1 or 0, or force (also wipe a sale that holds orders)`);
  const force = raw === 'force' || argv.includes('--force');
  return { reset: force || raw === '1' || argv.includes('--reset'), resetForce: force };
}

/** SPIKE_ADMIN_TOKENS (`name:token,...`) and SPIKE_ADMIN_TOKEN (named `admin`). */
function adminTokens(env: Env): { name: string; token: string }[] {
  const tokens: { name: string; token: string }[] = [];
  const single = secret(env, 'SPIKE_ADMIN_TOKEN');
  if (single) tokens.push({ name: 'admin', token: single });
  const raw = (env.SPIKE_ADMIN_TOKENS ?? '').trim();
  const accepted = 'name:token,name:token,... (names of 1 to 32 of A-Z a-z 0-9 _ . -, tokens of 16 characters or more)';
  for (const part of raw ? raw.split(',') : []) {
    const match = /^([A-Za-z0-9_.-]{1,32}):(.{16,})$/.exec(part.trim());
    if (!match)
      throw new ConfigError(`SPIKE_ADMIN_TOKENS has "${part.trim().replace(/:.*/, ':…')}", which is not accepted; accepted: ${accepted}`);
    if (tokens.some((t) => t.name === match[1] || t.token === match[2]))
      throw new ConfigError(
        `SPIKE_ADMIN_TOKENS names ${match[1]} twice, or gives one token two names; each operator needs a name and a token of their own`,
      );
    tokens.push({ name: match[1]!, token: checkedSecret(`SPIKE_ADMIN_TOKENS (${match[1]})`, match[2]!) });
  }
  return tokens;
}

/** The settings that meet the crowd: limits at the edge and per user, and the waiting room. */
function crowdSettings(env: Env) {
  return {
    nginxLimits: nginxLimits(env),
    addressHolds: integer(env, 'SPIKE_ADDRESS_HOLDS', 4, 0, 1_000_000),
    trustedProxies: networks(env, 'SPIKE_TRUSTED_PROXIES'),
    userAttempts: integer(env, 'SPIKE_USER_ATTEMPTS', 30, 0, 1_000_000),
    userWindowMs: integer(env, 'SPIKE_USER_WINDOW', 10, 1, 3600) * 1000,
    queue: flag(env, 'SPIKE_QUEUE'),
    saleName: saleName(env),
    queueAdmissionMs: integer(env, 'SPIKE_QUEUE_ADMISSION', 120, 1, 86_400) * 1000,
    queueRate: integer(env, 'SPIKE_QUEUE_RATE', 500, 1, 1_000_000),
    queueSecret: secret(env, 'SPIKE_QUEUE_SECRET'),
  };
}

/**
 * Reads and validates every setting. Throws {@link ConfigError} on the first bad one, so the
 * program can stop with a message instead of running half-configured.
 */
export function loadConfig(env: Env = Bun.env, argv: readonly string[] = Bun.argv.slice(2)): Config {
  for (const arg of argv) {
    if (arg !== '--reset' && arg !== '--force')
      throw new ConfigError(`unknown argument ${arg}; accepted: --reset (wipe the default sale and start it again), --force`);
  }
  if (argv.includes('--force') && !argv.includes('--reset'))
    throw new ConfigError('--force goes with --reset (wipe the default sale even though it holds orders)');
  refuseUnknown(env);
  const admin = adminSettings(env);
  const portList = ports(env);
  const total = integer(env, 'SPIKE_TOTAL', 10_000, 0, 1_000_000_000);
  const buffer = ratio(env, 'SPIKE_BUFFER', 0.2, 10);
  const localStock = env.SPIKE_LOCAL_STOCK ? integer(env, 'SPIKE_LOCAL_STOCK', 0, 1, 1_000_000_000) : undefined;
  const host = (env.SPIKE_HOST ?? '').trim() || '127.0.0.1';
  if (isIP(host) === 0 && host !== 'localhost')
    throw new ConfigError(
      `SPIKE_HOST=${host} is not accepted; accepted: an IP address the workers bind, e.g. 127.0.0.1 (default), 0.0.0.0 or ::1`,
    );
  const nginxListen = (env.SPIKE_NGINX_LISTEN ?? '').trim() || '80';
  if (!/^([0-9a-fA-F.:[\]]+:)?\d{1,5}$/.test(nginxListen)) {
    throw new ConfigError(`SPIKE_NGINX_LISTEN=${nginxListen} is not accepted; accepted: a port (80) or address:port (127.0.0.1:8080)`);
  }
  const redisTimeoutMs = integer(env, 'SPIKE_REDIS_TIMEOUT_MS', 1000, 10, 60_000);
  const waitMs = integer(env, 'SPIKE_WAIT_MS', 100, 1, 10_000);
  if (waitMs >= redisTimeoutMs)
    throw new ConfigError(
      `SPIKE_WAIT_MS=${waitMs} is not accepted; accepted: less than SPIKE_REDIS_TIMEOUT_MS (${redisTimeoutMs}), or the wait itself would time out`,
    );
  refuseLowPorts(env, portList, admin.adminPort);
  const nodeId = (env.SPIKE_NODE_ID ?? '').trim() || `${hostname()}-${portList[0]}`;
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(nodeId))
    throw new ConfigError(`SPIKE_NODE_ID=${nodeId} is not accepted; accepted: 1 to 64 characters of A-Z a-z 0-9 _ . : -`);
  const crowd = crowdSettings(env);
  return Object.freeze({
    warnings: Object.freeze(catchAll({ SPIKE_TRUSTED_PROXIES: crowd.trustedProxies, SPIKE_NGINX_EXEMPT: crowd.nginxLimits.exempt })),
    nodeId,
    redisUrl: redisUrl(env),
    redisCluster: redisCluster(env),
    redisSentinel: redisSentinel(env),
    appendfsync: appendfsync(env),
    waitReplicas: integer(env, 'SPIKE_WAIT_REPLICAS', 0, 0, 5),
    waitMs,
    ports: Object.freeze(portList),
    host,
    total,
    totalGiven: Boolean(env.SPIKE_TOTAL?.trim()),
    queueGiven: Boolean(env.SPIKE_QUEUE?.trim()),
    buffer,
    localStock,
    nginx: nginxMode(env),
    nginxListen,
    ...crowd,
    logDir: (env.SPIKE_LOG_DIR ?? '').trim() || './logs',
    statLogMaxBytes: integer(env, 'SPIKE_STAT_LOG_MAX_MB', 64, 1, 1_000_000) * 1024 * 1024,
    statLogKeep: integer(env, 'SPIKE_STAT_LOG_KEEP', 4, 0, 1000),
    dataDir: (env.SPIKE_DATA_DIR ?? '').trim() || './data',
    syncMs: integer(env, 'SPIKE_SYNC_MS', 100, 10, 60_000),
    redisTimeoutMs,
    ...resetSetting(env, argv),
    ...orderSettings(env),
    ...admin,
    logFormat: logFormat(env),
  });
}

/** The orders' life and their database. */
function orderSettings(env: Env) {
  return {
    payWindowMs: integer(env, 'SPIKE_PAY_WINDOW', 300, 0, 86_400) * 1000,
    reapMs: integer(env, 'SPIKE_REAP_MS', 1000, 10, 60_000),
    writer: env.SPIKE_WRITER === undefined || env.SPIKE_WRITER === '' ? true : flag(env, 'SPIKE_WRITER'),
    writerNice: integer(env, 'SPIKE_WRITER_NICE', 10, 0, 19),
    writerMaxLagMs: integer(env, 'SPIKE_WRITER_MAX_LAG', 60, 0, 3600) * 1000,
    dbPath: (env.SPIKE_DB_PATH ?? '').trim() || join((env.SPIKE_DATA_DIR ?? '').trim() || './data', 'orders.sqlite'),
    databaseUrl: databaseUrl(env),
  };
}

/** The admin API, its tokens and the dashboards, the metrics token, signed users. */
function adminSettings(env: Env) {
  return {
    adminToken: secret(env, 'SPIKE_ADMIN_TOKEN'),
    adminTokens: Object.freeze(adminTokens(env)),
    dashboardStreams: integer(env, 'SPIKE_DASHBOARD_STREAMS', 100, 1, 100_000),
    adminPort: integer(env, 'SPIKE_ADMIN_PORT', 3100, 0, PORT_MAX),
    adminHost: (env.SPIKE_ADMIN_HOST ?? '').trim() || '127.0.0.1',
    adminUrl: adminUrl(env),
    jwtSecret: secret(env, 'SPIKE_JWT_SECRET'),
    metricsToken: secret(env, 'SPIKE_METRICS_TOKEN'),
  };
}
