/** What every route shares: JSON errors, the user id rule, reading a user from a request. */
import type { Context } from 'hono';

/** A user id: 1–64 characters of `[A-Za-z0-9_.:@-]`, so it is safe in logs, keys and URLs. */
export const USER_PATTERN = /^[A-Za-z0-9_.:@-]{1,64}$/;
export const USER_RULE = 'user must be 1 to 64 characters of A-Z a-z 0-9 _ . : @ -';

export const JSON_HEADERS = { 'Content-Type': 'application/json' } as const;

/** The methods each route answers, for 405's `Allow`. */
const ALLOWED: readonly (readonly [RegExp, string])[] = [
  [/^\/buy\/ticket$/, 'GET, POST'],
  [/^\/(stock|healthz)$/, 'GET'],
  [/^\/orders(\/[^/]+)?$/, 'GET'],
  [/^\/orders\/[^/]+\/(pay|cancel)$/, 'POST'],
];

/** The methods `path` answers, or undefined for an unknown path. */
export function allowedMethods(path: string): string | undefined {
  return ALLOWED.find(([pattern]) => pattern.test(path))?.[1];
}

/** Seconds a client should wait after a 503. */
export const RETRY_AFTER = '1';

export function error(c: Context, status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 500 | 503, code: string, msg: string, headers?: Record<string, string>) {
  return c.json({ error: code, msg }, status, headers);
}

/**
 * The one value of a field given possibly several times, or a message when the values differ:
 * `?user=a&user=b` must never quietly pick one of them.
 */
export function single(values: readonly unknown[] | undefined): { value: unknown } | { bad: string } {
  if (!values || values.length === 0) return { value: undefined };
  const first = values[0];
  if (values.some((v) => v !== first)) return { bad: 'user is given more than once with different values' };
  return { value: first };
}

/**
 * The `user` of a query string without the cost of parsing it all: `c.req.query` keeps the first
 * value, so the list is read only when `user=` appears twice (rare; the hot path pays one indexOf).
 */
export function queryUser(c: Context): { user: string | undefined } | { bad: string } {
  const first = c.req.query('user');
  const url = c.req.url;
  const at = url.indexOf('user=');
  if (at < 0 || url.indexOf('user=', at + 5) < 0) return { user: first };
  const all = single(c.req.queries('user'));
  return 'bad' in all ? all : { user: all.value as string | undefined };
}

/** The `user` field of a JSON or form body; undefined when the body has none. */
async function bodyUser(c: Context): Promise<{ value: unknown } | { bad: string; status: 400 | 415 }> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return { bad: 'body is not valid JSON', status: 400 };
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return { bad: 'JSON body must be an object such as {"user":"alice"}', status: 400 };
    return { value: (body as Record<string, unknown>).user };
  }
  if (type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data') {
    let form: Record<string, unknown>;
    try {
      form = await c.req.parseBody({ all: true });
    } catch {
      return { bad: `body is not valid ${type}`, status: 400 };
    }
    const given = form.user;
    const found = single(given === undefined ? undefined : Array.isArray(given) ? given : [given]);
    return 'bad' in found ? { bad: found.bad, status: 400 } : found;
  }
  if (type !== '' && c.req.raw.body !== null) return { bad: 'send the body as application/json or application/x-www-form-urlencoded', status: 415 };
  return { value: undefined };
}

/**
 * The `user` of a request: from the query string, or from a JSON or form body on POST. One rule
 * everywhere: a user given more than once (twice in the query, twice in a form, or in both the
 * query and the body) with different values is a 400.
 */
export async function readUser(c: Context): Promise<{ user: string } | { bad: string; status: 400 | 415 }> {
  const query = queryUser(c);
  if ('bad' in query) return { bad: query.bad, status: 400 };
  let user = query.user;
  if (c.req.method === 'POST') {
    const body = await bodyUser(c);
    if ('bad' in body) return body;
    const fromBody = body.value;
    if (fromBody !== undefined) {
      if (typeof fromBody !== 'string') return { bad: USER_RULE, status: 400 };
      if (user !== undefined && user !== fromBody) return { bad: 'user is given twice, in the query and in the body, with different values', status: 400 };
      user = fromBody;
    }
  }
  if (user === undefined) return { user: '' };
  if (!USER_PATTERN.test(user)) return { bad: USER_RULE, status: 400 };
  return { user };
}

/** 503 for a dependency failure: Redis did not answer. */
export function unavailable(c: Context) {
  return error(c, 503, 'unavailable', 'the ticket store did not answer; try again', { 'Retry-After': RETRY_AFTER });
}

/**
 * Redis answered with an error about the command itself (`ERR …`, `WRONGTYPE …`): Redis is up, so
 * this is no outage but a request or a record the code did not expect. Outages (closed
 * connection, timeout, `LOADING`, `READONLY`, `CLUSTERDOWN`) are everything else.
 */
function isCommandError(cause: unknown): boolean {
  return cause instanceof Error && cause.name === 'ReplyError' && /^(ERR|WRONGTYPE) /.test(cause.message);
}

/**
 * The answer to a failed Redis call: 503 (retry) for an outage; 500 for a command error, which a
 * retry on another worker would only repeat. nginx retries and counts 503s against a worker, so
 * only the worker's own outage may answer 503.
 */
export function storeFailed(c: Context, cause: unknown, where: string) {
  if (!isCommandError(cause)) return unavailable(c);
  console.error(`[${where}] Redis refused a command: ${(cause as Error).message}`);
  return error(c, 500, 'internal', 'the ticket store refused the request');
}
