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

/** The `user` of a request: from the query string, or from a JSON or form body on POST. */
export async function readUser(c: Context): Promise<{ user: string } | { bad: string; status: 400 | 415 }> {
  let user = c.req.query('user');
  if (c.req.method === 'POST') {
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    let fromBody: unknown;
    if (type === 'application/json') {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        return { bad: 'body is not valid JSON', status: 400 };
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return { bad: 'JSON body must be an object such as {"user":"alice"}', status: 400 };
      fromBody = (body as Record<string, unknown>).user;
    } else if (type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data') {
      fromBody = (await c.req.parseBody()).user;
    } else if (type !== '' && c.req.raw.body !== null) {
      return { bad: 'send the body as application/json or application/x-www-form-urlencoded', status: 415 };
    }
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
