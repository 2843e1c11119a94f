/** The admin API, served by the supervisor on its own port: create sales, read them, add stock, pause, resume and archive. */
import { log } from '../log.ts';
import { Hono, type Context, type Next } from 'hono';
import type { RedisClient as Redis } from '../redis/client.ts';
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { dashboardRoutes, type Stream } from './dashboard.tsx';
import { error, isDatabaseError, isRedisOutage } from '../http/errors.ts';
import { archivedSale, readSale } from '../redis/sale.ts';
import { compareOrderIds } from '../orders/model.ts';
import { SaleStoppedError } from '../orders/store.ts';
import type { OrderDb } from '../orders/db.ts';
import type { SaleRecords } from '../orders/sale-record.ts';
import { archivedView, archiveRoutes } from './archive.ts';
import {
  ACTIONS_KEPT,
  ACTIONS_KEY,
  EVENT_AT_FIELD,
  NAME_FIELD,
  PAID_FIELD,
  PRICE_FIELD,
  queueKeys,
  SALE_PATTERN,
  SALES_KEY,
  saleKeys,
  SOLD_FIELD,
  TOTAL_FIELD,
  VENUE_FIELD,
} from '../redis/keys.ts';
import { setQueue, type QueueSettings } from '../redis/queue.ts';
import type { SaleBook } from '../stock/sale-book.ts';
import { MAX_TICKETS } from '../stock/local-stock.ts';
import { saleState as stateOf } from '../stock/sale-state.ts';

export interface AdminDeps {
  /**
   * Every call must carry one as `Authorization: Bearer <token>`; each has the name of its
   * operator, logged with every action. None set: the admin API refuses everything.
   */
  readonly tokens: readonly { readonly name: string; readonly token: string }[];
  readonly redis: Redis;
  readonly book: SaleBook;
  readonly ports: readonly number[];
  /** Sync the local stock with Redis now (after stock was added, a sale created or resumed). */
  readonly kick: (sale: string) => void;
  readonly restarts: (worker: number) => number;
  /** The Prometheus text of this node's metrics (supervisor/metrics.ts). */
  readonly metrics?: () => Promise<string>;
  /** The dashboard's stream of the node's figures (supervisor/telemetry.ts). */
  readonly stream?: Stream;
  /** The token Prometheus sends for GET /metrics instead of the admin token (SPIKE_METRICS_TOKEN). */
  readonly metricsToken?: string;
  /** Why the supervisor is not ready (Redis, workers, order writer), or undefined when it is. */
  readonly notReady?: () => Promise<string | undefined>;
  /** A new sale's waiting-room settings where `queue` leaves them out (SPIKE_QUEUE_ADMISSION, SPIKE_QUEUE_RATE). */
  readonly queueDefaults?: QueueSettings;
  /** The order database (archiving checks it holds every order); none: nothing is archived. */
  readonly db?: OrderDb;
  /** A sale was archived here: let go of it and tell the other nodes. */
  readonly archived?: (id: string) => void;
  /** Where this node records each sale's total and pause as the operator set them (a recovery puts them back). */
  readonly records?: SaleRecords;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Compares in constant time: equal-length digests, so neither content nor length leaks. */
function sameToken(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

function time(value: unknown, name: string): number | undefined | string {
  if (value === undefined || value === null) return undefined;
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? ms : `${name} must be an ISO 8601 time such as 2026-12-01T10:00:00Z`;
}

/**
 * A sale's state as the admin API shows it: Redis' counts and settings, and this node's workers.
 * Throws SaleStoppedError when Redis is older than what this node saw of the sale (a rollback not
 * restored yet): its counts are not the sale's, and are never shown.
 */
async function saleState(deps: AdminDeps, id: string) {
  const keys = saleKeys(id);
  // Taken before the read, as order reads do (orders/store.ts): a sale made meanwhile is no fault.
  const seen = deps.book.get(id)?.stock.seen() ?? '0-0';
  const [fields, count, pre] = await Promise.all([
    deps.redis.hmget(
      keys.sale,
      PAID_FIELD,
      'paused',
      'starts_at',
      'ends_at',
      NAME_FIELD,
      'queue_joined',
      'queue_serving',
      VENUE_FIELD,
      EVENT_AT_FIELD,
      PRICE_FIELD,
    ),
    readSale(deps.redis, keys),
    deps.redis.zcard(queueKeys(id).prequeue),
  ]);
  if (!count) return null;
  if (compareOrderIds(count.lastId, seen) < 0) throw new SaleStoppedError();
  const paid = Number(fields[0] ?? 0);
  const local = deps.book.get(id)?.stock.snapshot();
  return {
    id,
    name: fields[4] ?? null,
    venue: fields[7] ?? null,
    eventAt: fields[8] ? new Date(Number(fields[8])).toISOString() : null,
    price: fields[9] ?? null,
    total: count.total,
    sold: count.sold,
    paid,
    reserved: count.sold - paid,
    remaining: Math.max(0, count.total - count.sold),
    paused: fields[1] === '1',
    recovering: count.recovering ?? null,
    // One state, derived as everywhere else (stock/sale-state.ts); `final`: none can come back.
    state: stateOf({ ...count, recovering: count.recovering !== undefined }, Date.now()),
    final: count.sold >= count.total && count.sold - paid <= 0,
    startsAt: fields[2] ? new Date(Number(fields[2])).toISOString() : null,
    endsAt: fields[3] ? new Date(Number(fields[3])).toISOString() : null,
    queue: count.queue
      ? {
          admissionSeconds: count.queue.admissionMs / 1000,
          admitPerSecond: count.queue.rate,
          joined: pre + Number(fields[5] ?? 0),
          admitted: Number(fields[6] ?? 0),
        }
      : null,
    node: local && {
      soldOut: local.soldOut,
      workers: local.workers.map((w, i) => ({ port: deps.ports[i], stock: w.stock, sales: w.sales, restarts: deps.restarts(i) })),
    },
  };
}

/** The request's JSON object, or undefined for anything else. */
async function jsonObject(c: Context): Promise<Record<string, unknown> | undefined> {
  try {
    const parsed = await c.req.json();
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The `queue` object of `POST /sales`: undefined (no waiting room), the settings, or the message of a 400. */
function queueSettings(value: unknown, defaults: QueueSettings): QueueSettings | undefined | string {
  if (value === undefined || value === null || value === false) return undefined;
  if (value === true) return defaults;
  if (typeof value !== 'object' || Array.isArray(value))
    return 'queue must be an object such as {"admissionSeconds":120,"admitPerSecond":500}';
  const { admissionSeconds, admitPerSecond, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return `queue takes admissionSeconds and admitPerSecond, not ${Object.keys(rest).join(', ')}`;
  const whole = (v: unknown, max: number) => v === undefined || (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= max);
  if (!whole(admissionSeconds, 86_400)) return 'queue.admissionSeconds must be a whole number from 1 to 86400';
  if (!whole(admitPerSecond, 1_000_000)) return 'queue.admitPerSecond must be a whole number from 1 to 1000000';
  return {
    admissionMs: admissionSeconds === undefined ? defaults.admissionMs : (admissionSeconds as number) * 1000,
    admitPerSecond: (admitPerSecond as number | undefined) ?? defaults.admitPerSecond,
  };
}

/** The event's optional facts of `POST /sales`: venue and price label (text), eventAt (a time); or the message of a 400. */
function facts(input: Record<string, unknown>): { venue?: string; price?: string; eventAt?: number } | string {
  const { venue, price } = input;
  for (const [key, value, max] of [
    ['venue', venue, 120],
    ['price', price, 40],
  ] as const)
    if (value !== undefined && (typeof value !== 'string' || !new RegExp(`^[^\\p{Cc}]{1,${max}}$`, 'u').test(value) || !value.trim()))
      return `${key} must be 1 to ${max} characters, no control characters`;
  const eventAt = time(input.eventAt, 'eventAt');
  if (typeof eventAt === 'string') return eventAt;
  return { venue: (venue as string | undefined)?.trim(), price: (price as string | undefined)?.trim(), eventAt };
}

/** A new sale's settings from `POST /sales`, or the message of a 400. */
function newSale(
  input: Record<string, unknown> | undefined,
  queueDefaults: QueueSettings,
):
  | {
      id: string;
      total: number;
      name?: string;
      startsAt?: number;
      endsAt?: number;
      queue?: QueueSettings;
      venue?: string;
      price?: string;
      eventAt?: number;
    }
  | string {
  if (!input)
    return 'send a JSON object: {"id":"concert","total":500,"name":"…","startsAt":"…","endsAt":"…","venue":"…","eventAt":"…","price":"…"}';
  const { id, total, name } = input;
  if (typeof id !== 'string' || !SALE_PATTERN.test(id)) return 'id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -';
  if (name !== undefined && (typeof name !== 'string' || !/^[^\p{Cc}]{1,80}$/u.test(name) || !name.trim()))
    return 'name must be 1 to 80 characters, no control characters';
  if (!Number.isInteger(total) || (total as number) < 1 || (total as number) > 1_000_000_000)
    return 'total must be a whole number from 1 to 1000000000';
  const startsAt = time(input.startsAt, 'startsAt');
  const endsAt = time(input.endsAt, 'endsAt');
  if (typeof startsAt === 'string') return startsAt;
  if (typeof endsAt === 'string') return endsAt;
  if (startsAt !== undefined && endsAt !== undefined && endsAt <= startsAt) return 'endsAt must be after startsAt';
  const queue = queueSettings(input.queue, queueDefaults);
  if (typeof queue === 'string') return queue;
  const event = facts(input);
  if (typeof event === 'string') return event;
  return { id, total: total as number, name: name as string | undefined, startsAt, endsAt, queue, ...event };
}

/** Every call must carry one of the tokens (its name is then the call's `operator`); with none configured, everything is refused. */
function requireToken(tokens: readonly { name: string; token: string }[]) {
  return async (c: Context, next: Next) => {
    if (tokens.length === 0)
      return error(c, 403, 'admin_disabled', 'the admin API is off: set SPIKE_ADMIN_TOKEN (16 characters or more) to enable it');
    const header = c.req.header('authorization') ?? '';
    const given = /^Bearer\s+(.+)$/i.exec(header)?.[1] ?? '';
    // Every token is compared, so the time taken tells nothing of which one matched.
    const matched = tokens.filter((t) => given !== '' && sameToken(given, t.token));
    if (matched.length === 0) return error(c, 401, 'unauthorized', 'send Authorization: Bearer <SPIKE_ADMIN_TOKEN>');
    c.set('operator' as never, matched[0]!.name as never);
    await next();
  };
}

/** Logs an operator's action with the time and the name of their token, and keeps it for the dashboards. */
function logAction(c: Context, deps: AdminDeps, action: string, sale: string): void {
  const operator = (c.get('operator' as never) as string | undefined) ?? 'unknown';
  // The message says the fields in words: JSON gets them as fields, text only once.
  log.info(`admin: ${operator} ${action} sale ${sale}`, { operator, action, sale }, false);
  // Kept in Redis for every node's dashboard; a list that cannot be written costs a line, not the action.
  deps.redis
    .multi()
    .lpush(ACTIONS_KEY, JSON.stringify({ at: Date.now(), operator, action, sale }))
    .ltrim(ACTIONS_KEY, 0, ACTIONS_KEPT - 1)
    .exec()
    .catch((e: Error) => log.warn(`admin: the action was done but not kept for the dashboards (${e.message})`));
}

/** POST /sales: HSETNX on the total is the gate, so of two admins creating the same sale one gets 409. */
function createRoute(app: Hono, deps: AdminDeps): void {
  app.post('/sales', async (c) => {
    const sale = newSale(await jsonObject(c), deps.queueDefaults ?? { admissionMs: 120_000, admitPerSecond: 500 });
    if (typeof sale === 'string') return error(c, 400, 'bad_request', sale);
    const keys = saleKeys(sale.id);
    if (await archivedSale(deps.redis, sale.id))
      return error(c, 409, 'archived', `sale ${sale.id} was archived; its orders keep the id, so a new sale needs another`);
    if ((await deps.redis.hsetnx(keys.sale, TOTAL_FIELD, sale.total)) === 0)
      return error(c, 409, 'exists', `sale ${sale.id} exists; add stock with POST /sales/${sale.id}/stock`);
    const settings: (string | number)[] = [SOLD_FIELD, 0];
    if (sale.name !== undefined) settings.push(NAME_FIELD, sale.name.trim());
    if (sale.startsAt !== undefined) settings.push('starts_at', sale.startsAt);
    if (sale.endsAt !== undefined) settings.push('ends_at', sale.endsAt);
    if (sale.venue !== undefined) settings.push(VENUE_FIELD, sale.venue);
    if (sale.price !== undefined) settings.push(PRICE_FIELD, sale.price);
    if (sale.eventAt !== undefined) settings.push(EVENT_AT_FIELD, sale.eventAt);
    await deps.redis.hset(keys.sale, ...settings);
    if (sale.queue) await setQueue(deps.redis, queueKeys(sale.id), sale.queue);
    await deps.redis.sadd(SALES_KEY, sale.id);
    deps.book.add(sale.id);
    deps.records?.record(sale.id, { total: sale.total });
    deps.kick(sale.id);
    logAction(c, deps, `created (${sale.total} tickets)`, sale.id);
    return c.json(await saleState(deps, sale.id), 201);
  });
}

/** POST /sales/:id/stock, /pause and /resume. */
function changeRoutes(app: Hono, deps: AdminDeps): void {
  app.post('/sales/:id/stock', async (c) => {
    const id = c.req.param('id');
    const add = (await jsonObject(c))?.add;
    if (!Number.isInteger(add) || (add as number) < 1 || (add as number) > 1_000_000_000)
      return error(c, 400, 'bad_request', 'send {"add": N} with N a whole number from 1 to 1000000000');
    const keys = saleKeys(id);
    // Each node's shared memory counts a sale's tickets in 32-bit slots: the script checks the cap
    // in the same step as the addition, so two admins adding at once cannot pass it.
    const seen = deps.book.get(id)?.stock.seen() ?? '0-0';
    const [code, total] = (await deps.redis.add(keys.sale, String(add), String(MAX_TICKETS), seen)).map(Number) as [number, number];
    if (code === -2) return error(c, 404, 'no_sale', `no sale ${id}`);
    if (code === -3) return error(c, 409, 'recovering', `sale ${id} is restoring orders Redis lost; add stock once it sells again`);
    if (code === -1)
      return error(
        c,
        400,
        'bad_request',
        `a sale holds at most ${MAX_TICKETS} tickets; ${id} has ${total}, so add at most ${MAX_TICKETS - total}`,
      );
    deps.records?.record(id, { total });
    deps.kick(id);
    logAction(c, deps, `added ${add} tickets to`, id);
    return c.json(await saleState(deps, id));
  });
  for (const [action, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    app.post(`/sales/:id/${action}`, async (c) => {
      const id = c.req.param('id');
      // Checked and written in one step (pause-1.lua): a resume racing an archive never writes into a deleted sale.
      if ((await deps.redis.pause(saleKeys(id).sale, paused ? '1' : '0')) === -2) {
        if (await archivedSale(deps.redis, id)) return error(c, 409, 'archived', `sale ${id} is archived; it sells no more`);
        return error(c, 404, 'no_sale', `no sale ${id}`);
      }
      deps.records?.record(id, { paused });
      deps.kick(id);
      logAction(c, deps, paused ? 'paused' : 'resumed', id);
      return c.json(await saleState(deps, id));
    });
  }
}

/**
 * What a failed admin call answers, by its cause: Redis away or the database failing are 503s that
 * say so (retry); anything else is a bug: 500 with an id, and its stack in the log under that id.
 */
function failed(c: Context, err: Error): Response {
  if (err instanceof SaleStoppedError) return error(c, 503, 'recovering', err.message, { 'Retry-After': '1' });
  if (isRedisOutage(err)) {
    log.warn(`[admin] ${c.req.method} ${c.req.path}: Redis did not answer (${err.message})`);
    return error(c, 503, 'unavailable', 'Redis did not answer; nothing was changed, try again', { 'Retry-After': '1' });
  }
  if (isDatabaseError(err)) {
    log.error(`[admin] ${c.req.method} ${c.req.path}: the order database failed: ${err.message}`);
    return error(c, 503, 'database_unavailable', `the order database failed (${err.message}); try again`, { 'Retry-After': '1' });
  }
  const requestId = randomUUID().slice(0, 8);
  log.error(`[admin] request ${requestId} ${c.req.method} ${c.req.path} failed: ${err.stack ?? err.message}`);
  return c.json({ error: 'internal', msg: `spike failed on this call (a bug); the log has it under request ${requestId}`, requestId }, 500);
}

export function createAdminApp(deps: AdminDeps): Hono {
  const app = new Hono();
  // The probes carry no data and no token (a Kubernetes probe sends none): registered before the check.
  app.get('/livez', (c) => c.json({ ok: true }));
  app.get('/readyz', async (c) => {
    const reason = await deps.notReady?.();
    return reason ? c.json({ ok: false, error: 'unavailable', msg: reason }, 503, { 'Retry-After': '1' }) : c.json({ ok: true });
  });
  // Prometheus sends its bearer token: the metrics token, or any admin token.
  const scrapers = deps.metricsToken ? [{ name: 'metrics', token: deps.metricsToken }, ...deps.tokens] : deps.tokens;
  app.get('/metrics', requireToken(scrapers), async (c) => {
    if (!deps.metrics) return error(c, 404, 'not_found', 'no metrics on this admin API');
    return c.body(await deps.metrics(), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
  if (deps.stream) dashboardRoutes(app, deps.stream, requireToken(deps.tokens));
  app.use('*', requireToken(deps.tokens));
  app.get('/sales', async (c) => {
    const ids = (await deps.redis.smembers(SALES_KEY)).sort();
    // A sale whose Redis is behind this node is listed as recovering, without Redis' older counts.
    const behind = (id: string) => (e: unknown) =>
      e instanceof SaleStoppedError ? { id, state: 'recovering', recovering: e.message } : Promise.reject(e);
    return c.json((await Promise.all(ids.map((id) => saleState(deps, id).catch(behind(id))))).filter(Boolean));
  });
  app.get('/sales/:id', async (c) => {
    const id = c.req.param('id');
    const sale = await saleState(deps, id);
    if (sale) return c.json(sale);
    const archived = await archivedSale(deps.redis, id);
    return archived ? c.json(archivedView(archived)) : error(c, 404, 'no_sale', `no sale ${id}`);
  });
  createRoute(app, deps);
  changeRoutes(app, deps);
  archiveRoutes(app, {
    redis: deps.redis,
    db: deps.db,
    archived: (id) => deps.archived?.(id),
    logAction: (c, action, sale) => logAction(c, deps, action, sale),
  });
  app.notFound((c) => error(c, 404, 'not_found', `no admin route ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => failed(c, err));
  return app;
}
